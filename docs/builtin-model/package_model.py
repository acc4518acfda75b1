"""Turn a training snapshot into one of the package's built-in models: G_ema and D (the projector's
no-download loss uses D's features), with the model card's facts in the file's metadata. The
architecture is read from the snapshot: a StyleGAN2 run becomes ``builtin.safetensors`` (trained by
``train.sh``), a StyleGAN3-T run ``builtin-sg3.safetensors`` (trained by ``train-sg3.sh``).

    python docs/builtin-model/package_model.py runs/00000-.../network-snapshot-000NNN.safetensors \
        src/stylegan/pretrained/builtin.safetensors --quality quality.json
    python docs/builtin-model/package_model.py runs/00000-stylegan3-t-.../network-snapshot-000NNN.safetensors \
        src/stylegan/pretrained/builtin-sg3.safetensors --quality quality-sg3.json
"""

import argparse
import json
from pathlib import Path

from stylegan.checkpoints import Checkpoint, load_network, save_network

HERE = Path(__file__).parent
RECIPES = {   # training cfg -> (training script, architecture named in the description)
    "stylegan2": ("train.sh", "StyleGAN2"),
    "stylegan3-t": ("train-sg3.sh", "StyleGAN3-T"),
}


def training_command(script: Path) -> str:
    """The `exec stylegan ...` command of a training script, continuation lines joined."""
    lines = [ln.strip().rstrip("\\").strip() for ln in script.read_text().splitlines()]
    start = next(i for i, ln in enumerate(lines) if ln.startswith("exec "))
    return " ".join(lines[start:]).removeprefix("exec ")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("snapshot")
    ap.add_argument("dest")
    ap.add_argument("--quality", help="JSON written by benchmarks/quality_without_detector.py --json")
    args = ap.parse_args()

    src = load_network(args.snapshot)
    meta = src.metadata
    cfg = (meta.get("training_options") or {}).get("cfg", "stylegan2")
    if cfg not in RECIPES:
        raise SystemExit(f"{args.snapshot}: a {cfg} run; built-in models are made from {', '.join(RECIPES)} runs")
    script, arch = RECIPES[cfg]
    card = {
        "description": f"Built-in stylegan model: emoji faces and portraits, 32x32 RGB, {arch}, "
                       "trained on a 2-core CPU with this package",
        "license": "MIT (the weights, like this package)",
        "data_source": "npm package emoji-datasource-google@16.0.0 (Google Noto Emoji images), "
                       "face-* and person subcategories, all skin tones: 1,115 images, x-flips",
        "data_license": "Apache License 2.0 (Noto Emoji)",
        "training_command": training_command(HERE / script),
        "kimg": meta["kimg"],
        "run": meta.get("run"),
        "training_options": meta.get("training_options"),
    }
    if args.quality:
        report = json.loads(Path(args.quality).read_text())
        models = report.pop("models")
        report["model"] = models[next(k for k in models if Path(k).name == Path(args.snapshot).name)]
        card["quality"] = report
    out = Checkpoint(G_ema=src.G_ema, D=src.D, augment=src.augment, training_set_kwargs=src.training_set_kwargs,
                     metadata=card, source_format="native")
    path = save_network(out, args.dest)
    print(f"{path}: {path.stat().st_size / 2**20:.1f} MiB, {arch}, kimg {card['kimg']}")


if __name__ == "__main__":
    main()
