"""Valid seed files for the fuzzer, written by the real writers (or NVIDIA's layouts, tests/support).

Each :class:`Seed` is one small file (tens of KB) of one kind, plus the structured description it was
written from, so that mutations can change one field and write the file again (structure-aware) as
well as flip its bytes (format-blind). Kinds: ``pytorch-pickle``, ``tf-pickle``, ``rosinality``,
``native``, ``npz``, ``images``.
"""

from __future__ import annotations

import functools
import io
import json
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from fuzz import crafted
from support.official_pickle import TFNetwork, augment_pipe_record, dumps_official

KINDS = ("pytorch-pickle", "tf-pickle", "rosinality", "native", "npz", "images")


@dataclass
class Seed:
    kind: str
    name: str
    data: bytes                                     # the file (for images: a zip of the source folder)
    structure: Any = None                           # what the file was written from (records, dicts, arrays)
    options: dict = field(default_factory=dict)     # how to write ``structure`` again


def _tiny_checkpoint(generation: str, c_dim: int = 0):
    from support.models import make_tiny_checkpoint
    return make_tiny_checkpoint(generation, resolution=16, channels=8, z_dim=8, w_dim=8, c_dim=c_dim)


def pytorch_pickles() -> list[Seed]:
    g2, g3 = crafted.tiny_official_generator("stylegan2", 8), crafted.tiny_official_generator("stylegan3", 16)
    full = {"G": g2, "D": None, "G_ema": g2, "augment_pipe": augment_pipe_record(0.25),
            "training_set_kwargs": {"class_name": "training.dataset.ImageFolderDataset", "path": "x.zip",
                                    "resolution": 16, "use_labels": False, "xflip": False},
            "progress": {"cur_nimg": np.int64(1000), "best_fid": np.float64(12.5)}}
    return [Seed("pytorch-pickle", "sg2", dumps_official({"G_ema": g2}), {"G_ema": g2}, {"protocol": 4}),
            Seed("pytorch-pickle", "sg3", dumps_official({"G_ema": g3}), {"G_ema": g3}, {"protocol": 4}),
            Seed("pytorch-pickle", "sg2-ada", dumps_official(full, protocol=3), full, {"protocol": 3})]


def tf_pickles() -> list[Seed]:
    from support.tf_nets import sg1_generator, sg2_discriminator, sg2_generator
    out = []
    for name, G, D in (("sg2", sg2_generator(resolution=8, fmap_base=32, fmap_max=8), None),
                       ("sg2-d", sg2_generator(resolution=8, fmap_base=32, fmap_max=8),
                        sg2_discriminator(resolution=8, fmap_base=32, fmap_max=8)),
                       ("sg1", sg1_generator(resolution=8, fmap_base=32, fmap_max=8), None)):
        nets = (G, D or TFNetwork("D"), G)
        out.append(Seed("tf-pickle", name, dumps_official(nets, protocol=3), nets, {"protocol": 3}))
    return out


def rosinality_files() -> list[Seed]:
    from stylegan.checkpoints.rosinality import discriminator_to_rosinality, generator_to_rosinality
    ckpt = _tiny_checkpoint("stylegan2")
    g, latent_avg = generator_to_rosinality(ckpt.G_ema)
    data = {"g_ema": g, "latent_avg": latent_avg, "d": discriminator_to_rosinality(ckpt.D),
            "args": __import__("argparse").Namespace(size=16, n_mlp=2, latent=8, channel_multiplier=2)}
    out = []
    for name, legacy in (("zip", False), ("legacy", True)):
        buf = io.BytesIO()
        torch.save(data, buf, _use_new_zipfile_serialization=not legacy)
        out.append(Seed("rosinality", name, buf.getvalue(), data, {"legacy": legacy}))
    return out


def native_files() -> list[Seed]:
    from stylegan.checkpoints import save_network
    out = []
    for generation in ("stylegan2", "stylegan3"):
        with tempfile.TemporaryDirectory() as tmp:
            path = save_network(_tiny_checkpoint(generation, c_dim=2 if generation == "stylegan2" else 0),
                                Path(tmp) / "m.safetensors")
            out.append(Seed("native", generation, path.read_bytes()))
    return out


def npz_files() -> list[Seed]:
    rng = np.random.default_rng(0)
    ws = {"ws": rng.standard_normal([2, 8, 8]).astype(np.float32), "seeds": np.array([1, 2]),
          "z": rng.standard_normal([2, 8]).astype(np.float32), "psi": np.float32(0.7),
          "labels": np.array(["a", "b"])}
    ws["w"] = ws["ws"]
    dirs = {"directions": rng.standard_normal([3, 8]).astype(np.float32), "method": np.array("sefa"),
            "values": np.ones(3, np.float32), "names": np.array(["d0", "d1", "d2"]), "layers": np.arange(4)}
    return [Seed("npz", "ws", crafted.npz(ws), ws, {"compress": False}),
            Seed("npz", "ws-deflated", crafted.npz(ws, compress=True), ws, {"compress": True}),
            Seed("npz", "directions", crafted.npz(dirs), dirs, {"compress": False})]


def image_sources() -> list[Seed]:
    """Source folders for ``stylegan dataset`` as zips: PNG, JPEG and RGBA images, plus class labels."""
    rng = np.random.default_rng(1)
    files: dict[str, bytes] = {}
    for i, (mode, fmt) in enumerate((("RGB", "PNG"), ("RGBA", "PNG"), ("RGB", "JPEG"), ("L", "PNG"))):
        arr = rng.integers(0, 255, [16, 16, {"RGB": 3, "RGBA": 4, "L": 1}[mode]], dtype=np.uint8)
        buf = io.BytesIO()
        Image.fromarray(arr.squeeze(-1) if mode == "L" else arr, mode).save(buf, format=fmt)
        files[f"img{i}.{fmt.lower()}"] = buf.getvalue()
    labels = {"labels": [[name, i % 2] for i, name in enumerate(sorted(files))]}
    out = []
    for name, extra in (("plain", {}), ("labelled", {"dataset.json": json.dumps(labels).encode()})):
        members = {**files, **extra}
        out.append(Seed("images", name, _zip(members), members))
    return out


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


@functools.lru_cache(maxsize=1)
def seeds() -> dict[str, list[Seed]]:
    """Every seed, by kind (built once per process: about a second)."""
    torch.manual_seed(0)
    return {"pytorch-pickle": pytorch_pickles(), "tf-pickle": tf_pickles(), "rosinality": rosinality_files(),
            "native": native_files(), "npz": npz_files(), "images": image_sources()}
