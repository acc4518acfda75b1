"""Image distances for projection: LPIPS on VGG16 when the user has the weights, a no-download loss otherwise.

Three losses, one interface (``features(img)`` once per target, ``distance(feats_a, feats_b) -> [N]``):

* :class:`NvidiaVGG16` -- NVIDIA's ``vgg16.pt`` TorchScript file (the LPIPS VGG16 their projector uses).
  It takes images in [0, 255] and returns LPIPS feature vectors whose squared L2 distance is the
  LPIPS distance; images larger than 256 px are area-downsampled to 256 first, as NVIDIA does
  (non-square images: the longer side to 256, the aspect kept).
* :class:`LPIPSVGG16` -- the same metric built here from torchvision-format VGG16 weights (a ``.pth``
  state dict) and, optionally, the LPIPS linear-layer weights (Zhang et al. 2018, Eq. 1); without them
  every channel weighs 1 (LPIPS's "baseline" variant).
* :class:`NoDownloadLoss` -- needs nothing: the model's own discriminator features (unit-normalised
  over channels, as LPIPS does) plus pixel MSE and (1 - SSIM) on an image pyramid.

:func:`load_perceptual` picks one from what the user gave and names it, so the CLI can say which ran.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CheckpointError
from .torchscript import is_torchscript_archive, load_torchscript

#: NVIDIA's LPIPS VGG16 (TorchScript), the file their projector downloads.
NVIDIA_VGG16_URL = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/vgg16.pt"
#: ``--vgg`` shortcuts.
VGG_ALIASES = {"nvidia": NVIDIA_VGG16_URL}
#: Environment variable naming the default ``--vgg`` (path or URL).
VGG_ENV = "STYLEGAN_VGG16"

LPIPS_RESOLUTION = 256


def _area_downsample(img: torch.Tensor, size: int = LPIPS_RESOLUTION) -> torch.Tensor:
    """Area-downsample so that the longer side is ``size`` (both sides by the same factor: a
    non-square image keeps its aspect); images no larger than ``size`` pass unchanged."""
    h, w = img.shape[2:]
    if max(h, w) > size:
        scale = size / max(h, w)
        img = F.interpolate(img, size=(max(1, round(h * scale)), max(1, round(w * scale))), mode="area")
    return img


def _rgb(img: torch.Tensor) -> torch.Tensor:
    """VGG wants three channels: grey images are repeated, alpha is dropped."""
    if img.shape[1] == 1:
        return img.repeat(1, 3, 1, 1)
    return img[:, :3]


def _unit_channels(x: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """Normalise each pixel's feature vector to unit length (LPIPS Eq. 1)."""
    return x / (x.square().sum(dim=1, keepdim=True).sqrt() + eps)


class PerceptualLoss(nn.Module):
    """Distance between images in [-1, 1]: ``distance(features(a), features(b))`` -> [N]."""

    name: str = "perceptual loss"

    def features(self, img: torch.Tensor):
        raise NotImplementedError

    def distance(self, feats_a, feats_b) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.distance(self.features(a), self.features(b))


class NvidiaVGG16(PerceptualLoss):
    """NVIDIA's TorchScript LPIPS network: ``module(x_0_255, resize_images=False, return_lpips=True)`` -> [N, F]."""

    def __init__(self, module: torch.jit.ScriptModule, source: str = "vgg16.pt"):
        super().__init__()
        self.module = module
        self.name = f"LPIPS on VGG16 (NVIDIA TorchScript {source})"

    def features(self, img: torch.Tensor) -> torch.Tensor:
        x = _area_downsample((_rgb(img.to(torch.float32)) + 1) * 127.5)
        return self.module(x, resize_images=False, return_lpips=True)

    def distance(self, feats_a: torch.Tensor, feats_b: torch.Tensor) -> torch.Tensor:
        return (feats_a - feats_b).square().flatten(1).sum(dim=1)


#: torchvision's VGG16 ``features``: conv widths with 'M' for max-pooling (Simonyan & Zisserman, config D).
_VGG16_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
#: Indices in ``features`` after which LPIPS reads activations: relu1_2, relu2_2, relu3_3, relu4_3, relu5_3.
_LPIPS_TAPS = (3, 8, 15, 22, 29)
_LPIPS_CHANNELS = (64, 128, 256, 512, 512)
#: LPIPS's input scaling for [-1, 1] images (the ImageNet statistics in that range).
_LPIPS_SHIFT = (-0.030, -0.088, -0.188)
_LPIPS_SCALE = (0.458, 0.448, 0.450)


def _vgg16_features() -> nn.Sequential:
    layers: list[nn.Module] = []
    in_ch = 3
    for v in _VGG16_CFG:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(in_ch, v, kernel_size=3, padding=1), nn.ReLU(inplace=False)]
            in_ch = v
    return nn.Sequential(*layers)


class LPIPSVGG16(PerceptualLoss):
    """LPIPS (VGG16 variant) from torchvision VGG16 weights plus optional LPIPS linear weights."""

    def __init__(self, vgg_state: dict[str, torch.Tensor], lin_state: dict[str, torch.Tensor] | None = None,
                 source: str = "vgg16.pth"):
        super().__init__()
        self.features_net = _vgg16_features()
        own = {k: v for k, v in _normalise_vgg_keys(vgg_state).items() if k.startswith("features.")}
        expected = {f"features.{k}" for k in self.features_net.state_dict()}
        missing = sorted(expected - own.keys())
        if missing:
            raise CheckpointError(f"{source}: not a torchvision VGG16 state dict (missing {', '.join(missing[:3])}"
                                  f"{' ...' if len(missing) > 3 else ''})")
        try:
            self.features_net.load_state_dict({k[len("features."):]: v for k, v in own.items()
                                               if k in expected})
        except RuntimeError as exc:
            raise CheckpointError(f"{source}: VGG16 weights have the wrong shapes: {exc}") from None
        weights = [torch.ones(c) for c in _LPIPS_CHANNELS]
        if lin_state is not None:
            weights = _lpips_lin_weights(lin_state)
        for i, w in enumerate(weights):
            self.register_buffer(f"lin{i}", w.reshape(1, -1, 1, 1).to(torch.float32))
        self.register_buffer("shift", torch.tensor(_LPIPS_SHIFT).reshape(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(_LPIPS_SCALE).reshape(1, 3, 1, 1))
        self.requires_grad_(False).eval()
        lin = "LPIPS linear layers" if lin_state is not None else "unweighted channels (no LPIPS linear layers)"
        self.name = f"LPIPS on VGG16 (torchvision weights {source}, {lin})"

    def features(self, img: torch.Tensor) -> torch.Tensor:
        """Flattened unit-normalised activations scaled by sqrt(lin weight / pixels): their squared L2
        distance is exactly the LPIPS distance (the same contract as NVIDIA's file)."""
        x = (_area_downsample(_rgb(img.to(torch.float32))) - self.shift) / self.scale
        out = []
        for i, layer in enumerate(self.features_net[:_LPIPS_TAPS[-1] + 1]):
            x = layer(x)
            if i in _LPIPS_TAPS:
                lin = getattr(self, f"lin{_LPIPS_TAPS.index(i)}").clamp(min=0)
                out.append((_unit_channels(x) * (lin / (x.shape[2] * x.shape[3])).sqrt()).flatten(1))
        return torch.cat(out, dim=1)

    def distance(self, feats_a: torch.Tensor, feats_b: torch.Tensor) -> torch.Tensor:
        return (feats_a - feats_b).square().sum(dim=1)


def _normalise_vgg_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Accept torchvision (``features.N.weight``), ``vgg.features.N...`` and the lpips package's
    sliced VGG (``net.sliceK.N.weight``, which keeps torchvision's indices)."""
    out = {}
    for k, v in state.items():
        m = re.match(r"^(?:.*\.)?slice\d\.(\d+)\.(weight|bias)$", k)
        if m:
            out[f"features.{m.group(1)}.{m.group(2)}"] = v
            continue
        m = re.match(r"^(?:.*\.)?(features\.\d+\.(?:weight|bias))$", k)
        out[m.group(1) if m else k] = v
    return out


def _lpips_lin_weights(state: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    """``lin{k}.model.{0|1}.weight`` [1, C, 1, 1] from the lpips package's ``vgg.pth``."""
    found = {}
    for key, v in state.items():
        m = re.match(r"^(?:.*\.)?lin(\d)\.model\.\d\.weight$", key)
        if m:
            found[int(m.group(1))] = v
    if sorted(found) != list(range(5)):
        raise CheckpointError("LPIPS linear weights must hold lin0..lin4 (e.g. 'lin0.model.1.weight'), "
                              f"found {sorted(found) or 'none'}")
    weights = []
    for k, c in enumerate(_LPIPS_CHANNELS):
        w = found[k].reshape(-1)
        if w.numel() != c:
            raise CheckpointError(f"LPIPS linear weight lin{k} has {w.numel()} channels, VGG16 has {c}")
        weights.append(w.to(torch.float32))
    return weights


class NoDownloadLoss(PerceptualLoss):
    """Discriminator features + pixel MSE + (1 - SSIM) on an image pyramid (down to 16 px).

    The discriminator's block outputs are unit-normalised over channels and compared like LPIPS
    layers; the pyramid terms keep colours and fine structure honest. Weighted so that each term is
    O(1) for unrelated images.
    """

    def __init__(self, D: nn.Module | None = None, pixel_weight: float = 1.0, ssim_weight: float = 1.0,
                 feature_weight: float = 1.0, min_size: int = 16):
        super().__init__()
        self.D = D
        self.pixel_weight = pixel_weight
        self.ssim_weight = ssim_weight
        self.feature_weight = feature_weight if D is not None else 0.0
        self.min_size = min_size
        self.register_buffer("window", _gaussian_window(11, 1.5))
        parts = (["discriminator features"] if self.feature_weight else []) + ["multi-scale pixel/SSIM"]
        self.name = f"no-download loss ({' + '.join(parts)})"

    def _pyramid(self, img: torch.Tensor) -> list[torch.Tensor]:
        out = [img]
        while min(out[-1].shape[2:]) >= 2 * self.min_size:      # the shorter side stops it (non-square images)
            out.append(F.avg_pool2d(out[-1], 2))
        return out

    def _d_features(self, img: torch.Tensor) -> list[torch.Tensor]:
        D = self.D
        if D is None or self.feature_weight == 0:
            return []
        d_shape = tuple(getattr(D, "img_shape", (D.img_resolution, D.img_resolution)))
        if tuple(img.shape[2:]) != d_shape or img.shape[1] != D.img_channels:
            return []
        feats = []
        x, y = None, img
        for res in D.block_resolutions:
            out = getattr(D, f"b{res}")(x, y)           # StyleGAN2 blocks return (x, img), StyleGAN1 blocks x
            x, y = out if isinstance(out, tuple) else (out, y)
            feats.append(_unit_channels(x.to(torch.float32)))
        return feats

    def features(self, img: torch.Tensor) -> dict[str, list[torch.Tensor]]:
        img = img.to(torch.float32)
        return {"pyramid": self._pyramid(img), "d": self._d_features(img)}

    def distance(self, feats_a, feats_b) -> torch.Tensor:
        pa, pb = feats_a["pyramid"], feats_b["pyramid"]
        mse = torch.stack([(a - b).square().mean(dim=[1, 2, 3]) for a, b in zip(pa, pb)]).mean(0)
        dssim = torch.stack([1 - _ssim(a, b, self.window) for a, b in zip(pa, pb)]).mean(0)
        total = self.pixel_weight * mse + self.ssim_weight * dssim
        if feats_a["d"] and feats_b["d"]:
            fd = torch.stack([(a - b).square().sum(dim=1).mean(dim=[1, 2])
                              for a, b in zip(feats_a["d"], feats_b["d"])]).mean(0)
            total = total + self.feature_weight * fd
        return total


def _gaussian_window(size: int, sigma: float) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-x.square() / (2 * sigma**2))
    return g / g.sum()


def _blur(x: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian blur with reflected borders, every channel as its own single-channel image."""
    n, c, h, w = x.shape
    k = window.numel()
    pad = min(k // 2, h - 1, w - 1)
    taps = window[k // 2 - pad: k // 2 + pad + 1]
    taps = taps / taps.sum()
    x = F.pad(x.reshape(n * c, 1, h, w), [pad, pad, pad, pad], mode="reflect")
    x = F.conv2d(F.conv2d(x, taps.reshape(1, 1, 1, -1)), taps.reshape(1, 1, -1, 1))
    return x.reshape(n, c, h, w)


def _ssim(a: torch.Tensor, b: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """Mean SSIM per sample (Wang et al. 2004, Eq. 13; Gaussian window 11, sigma 1.5) of images in [-1, 1]."""
    a = (a + 1) / 2
    b = (b + 1) / 2
    c1, c2 = 0.01**2, 0.03**2
    mu_a, mu_b = _blur(a, window), _blur(b, window)
    var_a = _blur(a * a, window) - mu_a.square()
    var_b = _blur(b * b, window) - mu_b.square()
    cov = _blur(a * b, window) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a.square() + mu_b.square() + c1) * (var_a + var_b + c2))
    return s.mean(dim=[1, 2, 3])


def _load_state_dict(path: Path, what: str) -> dict[str, torch.Tensor]:
    from ..checkpoints.torch_save import read_torch_save
    state = read_torch_save(path)           # our restricted torch.save reader (torch.load can crash on hostile files)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path.name} is not a state dict of tensors ({what})")
    return state


def load_vgg16(source: str | os.PathLike, lpips_lin: str | os.PathLike | None = None,
               device: torch.device | str = "cpu") -> PerceptualLoss:
    """LPIPS from a VGG16 file: NVIDIA's ``vgg16.pt`` TorchScript, or torchvision weights (+ LPIPS linear layers).

    ``source`` is a path, a URL (downloaded once into the cache) or ``'nvidia'`` for NVIDIA's URL.
    """
    from ..checkpoints.download import resolve

    s = VGG_ALIASES.get(str(source), str(source))
    path = resolve(s, what="VGG16 weights")
    if path.is_dir():
        raise CheckpointError(f"VGG16 weights must be a file, got the folder {path}")
    if is_torchscript_archive(path):
        if lpips_lin is not None:
            raise CheckpointError("--lpips-lin goes with torchvision VGG16 weights; NVIDIA's vgg16.pt "
                                  "already contains the LPIPS layers")
        module = load_torchscript(path, "VGG16 weights", device)
        loss = NvidiaVGG16(module, source=Path(s).name)
        _check_callable(loss, device, path.name)
        return loss
    lin = _load_state_dict(resolve(str(lpips_lin), what="LPIPS weights"), "LPIPS linear weights") \
        if lpips_lin is not None else None
    return LPIPSVGG16(_load_state_dict(path, "VGG16 weights"), lin, source=Path(s).name).to(device)


def _check_callable(loss: PerceptualLoss, device, name: str) -> None:
    """Fail at load time (not mid-projection) if a TorchScript file has another call signature."""
    try:
        with torch.no_grad():
            f = loss.features(torch.zeros([1, 3, 32, 32], device=device))
    except Exception as exc:  # noqa: BLE001 - any failure means the file is not what we expect
        raise CheckpointError(f"{name} does not behave like NVIDIA's vgg16.pt "
                              f"(module(x, resize_images=False, return_lpips=True) -> [N, F]): "
                              f"{str(exc).splitlines()[0]}") from None
    if not isinstance(f, torch.Tensor) or f.ndim != 2 or f.shape[0] != 1:
        raise CheckpointError(f"{name} returned {getattr(f, 'shape', type(f).__name__)} for one image; "
                              f"expected LPIPS features [1, F]")


def load_perceptual(vgg: str | os.PathLike | None = None, lpips_lin: str | os.PathLike | None = None,
                    D: nn.Module | None = None, device: torch.device | str = "cpu") -> PerceptualLoss:
    """The loss a projection uses: LPIPS when ``vgg`` (or ``$STYLEGAN_VGG16``) names weights,
    otherwise :class:`NoDownloadLoss` on the model's discriminator (if the file has one)."""
    vgg = vgg if vgg is not None else os.environ.get(VGG_ENV) or None
    if vgg is not None:
        return load_vgg16(vgg, lpips_lin, device=device)
    if lpips_lin is not None:
        raise CheckpointError("--lpips-lin needs --vgg (torchvision VGG16 weights)")
    if D is not None:
        D = D.to(device).eval().requires_grad_(False)
    return NoDownloadLoss(D).to(device)
