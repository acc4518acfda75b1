"""The README's Tour runs as written: every command of its ``bash`` blocks, in order, through the real CLI.

Files the README assumes the user has are stand-ins written here by the real writers, in the formats the
README names (documented substitutions, nothing else changes):

- ``ffhq.pkl``: NVIDIA's StyleGAN2 reference network (64², ``tests/reference``) as an NVIDIA-layout pickle;
  ``sg3.pkl`` and the published name ``stylegan3-r-afhqv2-512x512`` (a download): its StyleGAN3-R network;
  ``stylegan2-ffhq-256x256.pkl`` (a download, transfer learning): ``ffhq.pkl``;
- ``karras2019stylegan-ffhq-1024x1024.pkl``: a small TensorFlow StyleGAN1 pickle; ``550000.pt``: a small
  rosinality checkpoint; ``inception-2015-12-05.pt``: a tiny TorchScript file with Inception's signature
  (and one with VGG16's for precision/recall, which would otherwise be downloaded);
- ``me.jpg``, ``emoji.png`` and ``~/photos``: emoji the built-in model never saw (``tests/assets/emoji-unseen``);
  ``group.jpg``: scikit-image's astronaut photo with a second, smaller copy of her face; ``ffhq-enc.safetensors``
  (an encoder trained for ffhq.pkl): the built-in model and its shipped encoder;
  ``smile.csv``: labels keyed by seed; ``mouth.png``: a drag mask at ffhq.pkl's size (the drag points are
  scaled to it); ``faces.zip``: those photos at ffhq.pkl's 64².

Sizes are cut so that the whole tour takes about a minute: ``--resolution 256`` becomes 32, training gets a
tiny network, 16 images and 2x2 image grids (``TRAIN_EXTRA``), projection 5 steps, videos 6 frames
(or 2 per transition), metrics 64 samples (EQ: 16).
Not run: ``stylegan serve`` (a server: tests/web) and ``torchrun`` lines (tests/train/test_distributed.py,
tests/metrics/test_metrics_distributed.py).
"""

from __future__ import annotations

import glob
import re
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from support.cli import run

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT / "tests" / "assets" / "emoji-unseen"
TRAIN_EXTRA = ["--kimg", "0.016", "--tick", "0.008", "--snap", "1", "--batch", "8", "--metrics", "none",
               "--workers", "1", "--grid", "2x2"]
SMALL_NET = ["--cbase", "512", "--cmax", "16", "--z-dim", "32", "--w-dim", "32"]
SUBSTITUTIONS = [
    (r"\bstylegan3-r-afhqv2-512x512\b", "sg3.pkl"),
    (r"\bstylegan2-ffhq-256x256\.pkl\b", "ffhq.pkl"),
    (r"--resolution 256\b", "--resolution 32"),
    (r"--steps 500\b", "--steps 5"),
    (r"--transition-frames 10\b", "--transition-frames 2"),
    (r'--points "310,420>310,390"', '--points "38,52>38,48" --steps 3'),        # ffhq.pkl here is 64x64
    (r"--tune 50\b", "--tune 3 --steps 3"),
    (r"--network ffhq\.pkl --encoder ffhq-enc\.safetensors", "--encoder builtin"),
]
NOT_RUN = ("stylegan serve", "torchrun ")


def tour_commands(readme: str) -> list[str]:
    """Every ``stylegan ...`` line of the Tour's bash blocks (continuations joined, comments dropped)."""
    tour = readme.split("\n## Tour", 1)[1].split("\n## ", 1)[0]
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", tour, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                commands.append(line)
    return commands


def _argv(command: str, home: Path) -> list[str]:
    for pattern, repl in SUBSTITUTIONS:
        command = re.sub(pattern, repl, command)
    words = shlex.split(command, comments=True)
    assert words[0] == "stylegan", command
    out = []
    for word in words[1:]:
        word = word.replace("~", str(home)) if word.startswith("~") else word
        word = re.sub(r"network-snapshot-\d+\.", "network-snapshot-*.", word)    # the run's last snapshot
        matches = sorted(glob.glob(word)) if any(c in word for c in "*?[") else []
        out.extend(matches[-1:] or [word])
    if out[0] == "train":
        out += TRAIN_EXTRA + ([] if "--resume" in out and out[out.index("--resume") + 1].endswith(".pkl") else
                              [] if "--resume" in out else SMALL_NET)
    if out[0] == "metrics":
        out += ["--num-gen", "16" if "eqt50k_int,eqr50k" in out else "64", "--batch", "16",
                "--detector", "vgg16=vgg16.pt"]
    if out[0] == "video" and "--frames" not in out and "--transition-frames" not in out:
        out += ["--frames", "6"]
    return out


def _stand_ins(folder: Path, home: Path, capsys) -> None:
    from fuzz.corpus import rosinality_files
    from support.detectors import save_detector
    from support.models import reference_npz
    from support.official_pickle import dumps_official, write_reference_pickle
    from support.photos import two_face_photo
    from support.tf_nets import sg1_discriminator, sg1_generator

    write_reference_pickle(reference_npz("sg2"), folder / "ffhq.pkl")
    write_reference_pickle(reference_npz("sg3r"), folder / "sg3.pkl")
    G = sg1_generator(resolution=32, fmap_base=64, fmap_max=16)
    D = sg1_discriminator(resolution=32, fmap_base=64, fmap_max=16)
    (folder / "karras2019stylegan-ffhq-1024x1024.pkl").write_bytes(dumps_official((G, D, G), 3))
    (folder / "550000.pt").write_bytes(rosinality_files()[0].data)   # the fuzzer's valid rosinality seed
    save_detector("inception", folder / "inception-2015-12-05.pt")
    save_detector("vgg16", folder / "vgg16.pt")
    photos = home / "photos"
    photos.mkdir(parents=True)
    images = sorted(ASSETS.glob("*.png"))
    for i, path in enumerate(images):
        Image.open(path).convert("RGB").save(photos / f"photo{i}.png")
    Image.open(images[0]).convert("RGB").resize((64, 64)).save(folder / "me.jpg", quality=95)
    Image.open(images[1]).convert("RGB").save(folder / "emoji.png")
    Image.fromarray(two_face_photo()).save(folder / "group.jpg", quality=95)
    mask = np.zeros([64, 64], np.uint8)
    mask[40:60, 24:52] = 255
    Image.fromarray(mask).save(folder / "mouth.png")
    (folder / "smile.csv").write_text("".join(f"{seed},{seed % 2}\n" for seed in range(24)))
    code, err = run(capsys, *["dataset", "--source", str(photos), "--dest", str(folder / "faces.zip"),
                            "--resolution", "64"])
    assert code == 0, err


@pytest.mark.slow
def test_every_tour_command_runs_as_written(tmp_path, monkeypatch, capsys):
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("STYLEGAN_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    _stand_ins(tmp_path, home, capsys)
    commands = tour_commands((ROOT / "README.md").read_text())
    assert len(commands) > 20
    ran = 0
    for command in commands:
        if command.startswith(NOT_RUN):
            continue
        start = time.monotonic()
        code, err = run(capsys, *_argv(command, home))
        assert code == 0, f"{command}\n{err}"
        sys.__stdout__.write(f"{time.monotonic() - start:6.1f} s  {command[:100]}\n")
        ran += 1
    assert ran >= 25
    assert len(list(Path("out").glob("seed*.png"))) >= 11
    assert np.load("closer.npz")["ws"].shape[0] == 3
    assert Path("ffhq.onnx").stat().st_size > 0 and Path("walk.mp4").stat().st_size > 0
