#!/bin/bash
# The built-in encoder's training command (pretrained/builtin-encoder.safetensors), run from a folder holding
# faces32.zip (the built-in model's training images, see select_emoji.py). No GPU: one CPU thread, niced.
# Re-running it after an interruption continues the run exactly (--resume).
set -euo pipefail
export OMP_NUM_THREADS=1
exec nice -n 10 stylegan -q encoder train --out builtin-encoder.safetensors --kimg 64 --batch 32 --image-batch 8 \
  --data faces32.zip --real-fraction 0.125 --mirror --snap-kimg 2 --threads 1 --seed 0 --resume
