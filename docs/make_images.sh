#!/usr/bin/env bash
# Regenerates every picture in README.md with the real commands, from the built-in model.
# Run from the repository root after `pip install -e .`:  bash docs/make_images.sh
set -euo pipefail
out=docs/images
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"
S="stylegan -q"

$S generate --seeds 0-47 --trunc 0.7 --grid 4x12 --outdir "$tmp/gen"
cp "$tmp/gen/grid.png" "$out/generate-grid.png"

$S mix --rows 3,11,27,40 --cols 5,8,19,33,48 --styles coarse --trunc 0.7 --outdir "$tmp/mix"
cp "$tmp/mix/grid.png" "$out/mix-coarse.png"

$S video --seeds 3,11,27,40 --transition-frames 8 --fps 12 --trunc 0.7 --output "$tmp/walk.gif"
cp "$tmp/walk.gif" "$out/video-walk.gif"

$S generate --seeds 27 --trunc 0.7 --outdir "$tmp/target"
$S project --target "$tmp/target/seed0027.png" --space w+ --steps 150 --outdir "$tmp/proj"
python - "$tmp" "$out" <<'PY'
import sys
from PIL import Image
tmp, out = sys.argv[1:]
a, b = Image.open(f"{tmp}/proj/target.png"), Image.open(f"{tmp}/proj/proj.png")
im = Image.new("RGB", (a.width * 2, a.height)); im.paste(a, (0, 0)); im.paste(b, (a.width, 0))
im.resize((im.width * 4, im.height * 4), Image.NEAREST).save(f"{out}/project-target-vs-proj.png")
PY
$S variations --projected-w "$tmp/proj/projected_w.npz" --seeds 1-6 --outdir "$tmp/var"
cp "$tmp/var/styles.png" "$out/variations-styles.png"

$S directions --method sefa --num 8 --out "$tmp/sefa.npz"
$S edit --seeds 11 --direction "$tmp/sefa.npz" --index 0-3 --strength -4:4:7 --outdir "$tmp/edit"
python - "$tmp/edit" "$out/edit-sefa.png" <<'PY'
import sys, glob
from PIL import Image
strips = [Image.open(p) for p in sorted(glob.glob(f"{sys.argv[1]}/*.png"))][:4]
im = Image.new("RGB", (max(s.width for s in strips), sum(s.height for s in strips)))
y = 0
for s in strips:
    im.paste(s, (0, y)); y += s.height
im.resize((im.width * 3, im.height * 3), Image.NEAREST).save(sys.argv[2])
PY
echo "pictures written to $out"
