#!/bin/bash
# The built-in StyleGAN3-T model's training command (builtin-sg3), run from a folder holding faces32.zip
# (see select_emoji.py; the same data as the StyleGAN2 built-in model).
# Re-running it after any interruption continues the run exactly (--resume latest); to train past
# --kimg, re-run it with a larger --kimg (the only option, with --tick and --snap, that may change).
# --fp32 on a CPU changes only one thing: no +-256 clamp of the activations (NVIDIA's --fp32 does the
# same); a no-op at these magnitudes (the 7.9-kimg G_ema gives identical images with and without it)
# that cost a quarter of the time of a step.
# Speed only (results are bit-identical): glibc keeps freed memory for reuse instead of returning every
# large tensor to the kernel and faulting it in again (measured on the 2-core machine, G+D forward and
# backward of 32 images: 4.6-5.4 s of CPU, 35-40% of it system time in page faults -> 3.0-3.4 s).
export MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=4294967296
# The run was started detached, with the same options and environment, on one thread:
#   cd DATA_FOLDER && setsid nohup nice -n 10 env OMP_NUM_THREADS=1 MALLOC_...=... python -m stylegan.cli.main \
#     -q train ... --outdir /work/sg3run ... > /work/sg3run.log 2>&1 &
exec stylegan -q train --data faces32.zip --outdir runs --cfg stylegan3-t --mirror --fp32 \
  --cbase 1024 --cmax 32 --z-dim 128 --w-dim 128 --map-depth 2 --batch 32 \
  --glr 0.0025 --dlr 0.0025 --gamma 0.03 --kimg 100 --tick 2 --snap 2 --metrics none --resume latest
