"""What the fuzzer runs in its child processes: the real loaders, then a use of what they loaded.

A file that loads must also work: a generator renders one image, a discriminator scores it, latents
and directions come back with the shapes the readers promise, a dataset's images decode. Each function
returns a small JSON summary; every refusal is the StyleGANError the loader raised.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch


def load_model(path: str) -> dict:
    """``load_network`` (every network), one image from each generator and a score from the discriminator."""
    from stylegan.checkpoints import load_network
    ckpt = load_network(path)
    out = {"format": ckpt.source_format, "nets": []}
    with torch.no_grad():
        for key in ("G_ema", "G", "D"):
            net = getattr(ckpt, key)
            if net is None:
                continue
            cfg = net.config
            c = torch.zeros([1, cfg.c_dim])
            if cfg.c_dim:
                c[0, 0] = 1
            if key == "D":
                img = torch.zeros([1, cfg.img_channels, cfg.img_resolution, cfg.img_resolution])
                net.config.mbstd_group_size  # noqa: B018 - the config must be readable
                score = net(img.repeat(max(cfg.mbstd_group_size or 1, 1), 1, 1, 1),
                            c.repeat(max(cfg.mbstd_group_size or 1, 1), 1) if cfg.c_dim else None)
                assert score.shape[1] == 1, score.shape
            else:
                img = net(torch.zeros([1, cfg.z_dim]), c if cfg.c_dim else None, noise_mode="const")
                assert tuple(img.shape) == (1, cfg.img_channels, cfg.img_resolution, cfg.img_resolution), img.shape
            out["nets"].append([key, cfg.to_dict().get("generation", "D")])
    return out


def load_latents(path: str) -> dict:
    """The latent readers (``load_ws``, ``load_npz_extra``, ``load_directions``) and the explorer's upload check."""
    from stylegan.errors import UserInputError
    from stylegan.latent.io import load_directions, load_npz_extra, load_ws
    from stylegan.web.explorer import npz_upload
    data = Path(path).read_bytes()
    tmp, _ = npz_upload(data, "case.npz", "latents")
    tmp.cleanup()
    extra = load_npz_extra(path)
    out = {"arrays": sorted(extra)}
    for reader, key in ((lambda: load_ws(path, num_ws=8, w_dim=8), "ws"),
                        (lambda: load_directions(path, w_dim=8, num_ws=8)["directions"], "directions")):
        try:
            arr = reader()
        except UserInputError as exc:             # a file may hold latents or directions, not both
            out[key] = str(exc)[:80]
            continue
        assert isinstance(arr, np.ndarray) and arr.dtype == np.float32 and np.isfinite(arr).all()
        out[key] = list(arr.shape)
    return out


def make_dataset(path: str) -> dict:
    """``stylegan dataset`` on a zip of images, then the training reader on what it wrote (labels included)."""
    from stylegan.data.dataset import ImageDataset
    from stylegan.data.dataset_tool import make_dataset as tool
    with tempfile.TemporaryDirectory() as tmp:
        dest = Path(tmp) / "out.zip"
        report = tool(path, dest, resolution=8, workers=1)
        ds = ImageDataset(dest, use_labels=report.class_names is not None or _has_labels(dest))
        images = ds.get_images(range(len(ds)))
        return {"written": report.written, "skipped": len(report.skipped), "shape": list(images.shape),
                "labels": ds.label_dim}


def read_dataset(path: str) -> dict:
    """The training reader on a dataset zip as given (its images, and its labels when it names a dataset.json)."""
    import zipfile
    from stylegan.data.dataset import ImageDataset
    from stylegan.files import ZIP_ERRORS
    try:
        with zipfile.ZipFile(path) as zf:
            labelled = "dataset.json" in zf.namelist()
    except ZIP_ERRORS:
        labelled = False                       # the reader reports the broken archive itself
    ds = ImageDataset(path, use_labels=labelled)
    images = ds.get_images(range(len(ds)))
    return {"shape": list(images.shape), "labels": ds.label_dim}


def _has_labels(path: Path) -> bool:
    import json
    import zipfile
    with zipfile.ZipFile(path) as zf:
        if "dataset.json" not in zf.namelist():
            return False
        return json.loads(zf.read("dataset.json")).get("labels") is not None

