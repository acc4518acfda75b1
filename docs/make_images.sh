#!/usr/bin/env bash
# Regenerates every picture in README.md with the real commands, from the built-in model.
# Run from the repository root after `pip install -e .`:  bash docs/make_images.sh
set -euo pipefail
out=docs/images
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"
S="stylegan -q"
# The built-in model draws 32x32 images: pictures are enlarged (nearest neighbour) to be seen on a page.
up() {  # up SRC DEST FACTOR
python - "$1" "$2" "$3" <<'PY'
import sys
import imageio.v3 as iio
import numpy as np
src, dest, k = sys.argv[1], sys.argv[2], int(sys.argv[3])
if src.endswith(".gif"):
    frames = iio.imread(src, index=None)
    frames = frames.repeat(k, axis=1).repeat(k, axis=2)
    iio.imwrite(dest, frames[..., :3], duration=iio.immeta(src).get("duration", 80), loop=0)
else:
    iio.imwrite(dest, np.asarray(iio.imread(src)).repeat(k, axis=0).repeat(k, axis=1))
PY
}

$S generate --seeds 0-47 --trunc 0.7 --grid 4x12 --outdir "$tmp/gen"
up "$tmp/gen/grid.png" "$out/generate-grid.png" 2

$S mix --rows 3,11,27,40 --cols 5,8,19,33,48 --styles coarse --trunc 0.7 --outdir "$tmp/mix"
up "$tmp/mix/grid.png" "$out/mix-coarse.png" 3

$S video --seeds 0-31 --grid 2x4 --transition-frames 10 --fps 12 --trunc 0.7 --output "$tmp/walk.gif"
up "$tmp/walk.gif" "$out/video-walk.gif" 3

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
up "$tmp/var/styles.png" "$out/variations-styles.png" 3

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
for e in tile reflect stretch; do
  $S generate --seeds 0-3 --trunc 0.7 --size 64x36 --extend $e --grid 1x4 --outdir "$tmp/ext-$e"
done
python - "$tmp" "$out/canvas-extensions.png" <<'PY'
import sys
import numpy as np
from PIL import Image
rows = [np.asarray(Image.open(f"{sys.argv[1]}/ext-{e}/grid.png")) for e in ("tile", "reflect", "stretch")]
gap = np.full((4, rows[0].shape[1], 3), 255, np.uint8)
im = Image.fromarray(np.concatenate([rows[0], gap, rows[1], gap, rows[2]]))
im.resize((im.width * 3, im.height * 3), Image.NEAREST).save(sys.argv[2])
PY
$S generate --seeds 0 --trunc 0.7 --size 1920x1080 --outdir "$tmp/hd"
cp "$tmp/hd/seed0000.png" "$out/canvas-1080p.png"      # PNG: its repeats compress far better than JPEG

$S drag --seed 4 --points "16,23>16,27" --outdir "$tmp/drag"
python - "$tmp/drag" "$out/drag-builtin.png" <<'PY'
import sys
import numpy as np
from PIL import Image, ImageDraw
src, dest, k = sys.argv[1], sys.argv[2], 4
a, b = (Image.open(f"{src}/{n}.png").resize((128, 128), Image.NEAREST) for n in ("start", "dragged"))
with np.load(f"{src}/dragged_w.npz") as f:
    handle, target, reached = f["handles"][0], f["targets"][0], f["points"][0]
im = Image.new("RGB", (264, 128), "white"); im.paste(a, (0, 0)); im.paste(b, (136, 0))
d = ImageDraw.Draw(im)
for (x, y), ox, colour in ((handle, 0, (230, 30, 30)), (target, 0, (30, 90, 230)),
                           (reached, 136, (230, 30, 30)), (target, 136, (30, 90, 230))):
    cx, cy = ox + (x + 0.5) * k, (y + 0.5) * k
    d.ellipse([cx - 4, cy - 4, cx + 4, cy + 4], outline=colour, width=2)
im.save(dest, optimize=True)
PY
echo "pictures written to $out"
