#!/bin/bash
# The built-in model's training command, run from a folder holding faces32.zip (see select_emoji.py).
# Re-running it after any interruption continues the run exactly (--resume latest).
exec stylegan -q train --data faces32.zip --outdir runs --cfg stylegan2 --mirror \
  --cbase 2048 --cmax 128 --z-dim 128 --w-dim 128 --map-depth 4 --batch 32 \
  --glr 0.0025 --dlr 0.0025 --gamma 0.02 --kimg 1000 --tick 4 --snap 5 --metrics none --resume latest
