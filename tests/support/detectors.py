"""Tiny real TorchScript detectors with the call conventions of NVIDIA's metric files, for tests.

``inception``: ``det(uint8 [N, 3, H, W], return_features=True) -> [N, 16]``; without it, class
probabilities [N, 10] (``no_output_bias=True`` drops the last layer's bias).
``vgg16``: ``det(uint8 images, return_features=True) -> [N, 24]`` and
``det(float 0-255 images, resize_images=False, return_lpips=True) -> [N, D]`` (unit-normalised
activations of two layers, scaled so that the squared L2 distance is an LPIPS-like distance).
Weights are fixed random numbers (seeded), so the same file is written every time.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


class TinyInception(nn.Module):
    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(1234)
        self.conv1 = nn.Parameter(torch.randn([8, 3, 3, 3], generator=g) * 0.2)
        self.conv2 = nn.Parameter(torch.randn([16, 8, 3, 3], generator=g) * 0.2)
        self.fc = nn.Parameter(torch.randn([10, 16], generator=g) * 0.5)
        self.fc_bias = nn.Parameter(torch.randn([10], generator=g))

    def forward(self, img: torch.Tensor, return_features: bool = False, use_fp16: bool = False,
                no_output_bias: bool = False) -> torch.Tensor:
        x = img.to(torch.float32) / 127.5 - 1
        x = F.interpolate(x, size=[16, 16], mode="bilinear", align_corners=False)
        x = F.relu(F.conv2d(x, self.conv1, padding=1))
        x = F.relu(F.conv2d(x, self.conv2, stride=2, padding=1))
        feats = x.mean(dim=[2, 3])
        if return_features:
            return feats
        logits = feats @ self.fc.t()
        if not no_output_bias:
            logits = logits + self.fc_bias
        return F.softmax(logits, dim=1)


class TinyVGG(nn.Module):
    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(4321)
        self.conv1 = nn.Parameter(torch.randn([6, 3, 3, 3], generator=g) * 0.3)
        self.conv2 = nn.Parameter(torch.randn([12, 6, 3, 3], generator=g) * 0.3)
        self.fc = nn.Parameter(torch.randn([24, 12 * 4 * 4], generator=g) * 0.1)

    def forward(self, img: torch.Tensor, resize_images: bool = True, return_lpips: bool = False,
                return_features: bool = False) -> torch.Tensor:
        x = img.to(torch.float32)
        if resize_images:
            x = F.interpolate(x, size=[32, 32], mode="area")
        x = x / 127.5 - 1
        a = F.relu(F.conv2d(x, self.conv1, padding=1))
        b = F.relu(F.conv2d(F.avg_pool2d(a, 2), self.conv2, padding=1))
        if return_lpips:
            out = []
            for t in (a, b):
                t = t / (t.square().sum(dim=1, keepdim=True).sqrt() + 1e-10)
                out.append((t / (t.shape[2] * t.shape[3]) ** 0.5).flatten(1))
            return torch.cat(out, dim=1)
        feats = F.relu(F.adaptive_avg_pool2d(b, [4, 4]).flatten(1) @ self.fc.t())
        return feats


def save_detector(kind: str, path: Path) -> Path:
    """Script the tiny ``kind`` ('inception' | 'vgg16') network and save it as TorchScript."""
    module = {"inception": TinyInception, "vgg16": TinyVGG}[kind]().eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(module), str(path))
    return path


def write_images(folder: Path, count: int, resolution: int = 32, seed: int = 0, images=None) -> Path:
    """``count`` PNG images (smooth random colour fields, or the given uint8 [N, H, W, C] ``images``)."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    if images is None:
        rng = np.random.RandomState(seed)
        low = rng.rand(count, 4, 4, 3)
        images = np.stack([np.asarray(Image.fromarray((im * 255).astype(np.uint8)).resize(
            (resolution, resolution), Image.BICUBIC)) for im in low])
    for i, im in enumerate(images):
        Image.fromarray(im).save(folder / f"img{i:05d}.png")
    return folder
