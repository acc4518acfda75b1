"""An image -> W+ encoder for one generator: one forward pass from a photo to the latent that draws it.

The design follows published ideas, not published code:

* a feature pyramid over a residual CNN, each w read from the pyramid level whose scale matches the
  synthesis layer it drives (coarse ws from coarse features, fine ws from fine ones) -- the "map2style"
  idea of pSp (Richardson et al. 2021, Sec. 3);
* W+ predicted as offsets from ``w_avg``: one base offset shared by every layer plus a per-layer delta,
  ``ws[i] = w_avg + base + delta_i`` with ``delta_0 = 0`` (e4e, Tov et al. 2021, Sec. 4: "progressive"
  deltas unlocked one layer at a time during training and penalised by ``||delta_i||^2``, so that the
  result stays close to W, where edits behave);
* the output is in units of the model's w spread and starts at zero, so an untrained encoder returns
  the projector's usual start (``w_avg``).

Everything is plain ``torch.nn`` (no custom ops), small enough to train on a CPU for small models; the
config is a frozen dataclass stored beside the weights (:mod:`stylegan.checkpoints.encoder`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class EncoderConfig:
    img_resolution: int                    # resolution of the generator's images
    img_channels: int                      # channels of the generator's images (1 or 3)
    num_ws: int                            # number of ws the generator takes
    w_dim: int                             # width of each w
    head_resolutions: tuple[int, ...]      # per ws: the pyramid level (input pixels) its head reads
    input_resolution: int                  # images are area-resized to this before the backbone
    channel_base: int = 1024               # backbone channels at resolution r: min(channel_base // r, channel_max)
    channel_max: int = 128
    fpn_channels: int = 64                 # width of the feature pyramid and of the heads
    head_channels: int = 32                # channels of the 4x4 map each head flattens
    generator_fingerprint: str = ""        # hash of the mapping network the encoder was made for

    def __post_init__(self):
        for name in ("img_resolution", "img_channels", "num_ws", "w_dim", "input_resolution", "channel_base",
                     "channel_max", "fpn_channels", "head_channels"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 1 << 20:
                raise ValueError(f"{name} must be an integer in 1..{1 << 20}, got {value!r}")
        if not isinstance(self.generator_fingerprint, str):
            raise ValueError("generator_fingerprint must be a string")
        r = self.input_resolution
        if r < 8 or r & (r - 1):
            raise ValueError(f"input_resolution must be a power of two >= 8, got {r}")
        if len(self.head_resolutions) != self.num_ws:
            raise ValueError(f"head_resolutions has {len(self.head_resolutions)} entries for {self.num_ws} ws")
        for h in self.head_resolutions:
            if h < 4 or h > r // 2 or h & (h - 1):
                raise ValueError(f"head resolution {h} must be a power of two in 4..{r // 2}")

    def channels(self, res: int) -> int:
        return min(self.channel_base // res, self.channel_max)

    @classmethod
    def for_generator(cls, G: nn.Module, input_resolution: int | None = None, max_head_resolution: int = 64,
                      **kwargs) -> "EncoderConfig":
        """A config sized for ``G``: input at the model's resolution (at most 256), 32 channels there doubling
        with each halving up to ``max(128, w_dim)``, and ws spread over the pyramid levels
        4 .. ``max_head_resolution`` in the order of the synthesis layers they drive."""
        res = input_resolution or min(G.img_resolution, 256)
        kwargs.setdefault("channel_base", 32 * res)
        kwargs.setdefault("channel_max", max(128, G.w_dim))
        top = max(4, min(max_head_resolution, res // 2))
        heads = tuple(_level_for_layer(i, G.num_ws, top) for i in range(G.num_ws))
        return cls(img_resolution=G.img_resolution, img_channels=G.img_channels, num_ws=G.num_ws, w_dim=G.w_dim,
                   head_resolutions=heads, input_resolution=res, generator_fingerprint=mapping_fingerprint(G),
                   **kwargs)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["head_resolutions"] = list(self.head_resolutions)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "EncoderConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown EncoderConfig fields: {sorted(unknown)}")
        d = dict(d)
        heads = d.get("head_resolutions", ())
        if not isinstance(heads, (list, tuple)) or not all(isinstance(x, int) and not isinstance(x, bool) for x in heads):
            raise ValueError("head_resolutions must be a list of integers")
        d["head_resolutions"] = tuple(heads)
        return cls(**d)


def _level_for_layer(i: int, num_ws: int, top: int) -> int:
    """Layer i of num_ws, spread evenly in log2 from 4 (the first ws) to ``top`` (the last)."""
    steps = int(math.log2(top)) - 2
    frac = i / max(num_ws - 1, 1)
    return 2 ** (2 + round(frac * steps))


def mapping_fingerprint(G: nn.Module) -> str:
    """A short hash of the mapping network's tensors (and w_avg): identifies the W space an encoder was
    trained for. Tuning the synthesis network (pivotal tuning) keeps it."""
    h = hashlib.sha256()
    for name, t in sorted(G.mapping.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


class ResidualDown(nn.Module):
    """Two 3x3 convolutions with a leaky ReLU, average-pooled by 2, plus a 1x1 skip (He et al. 2016)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv0 = nn.Conv2d(in_channels, in_channels, 3, padding=1)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.skip = nn.Conv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv1(F.leaky_relu(self.conv0(x), 0.2))
        y = F.avg_pool2d(F.leaky_relu(y, 0.2), 2)
        return (y + F.avg_pool2d(self.skip(x), 2)) / math.sqrt(2)


class StyleHead(nn.Module):
    """One pyramid level -> a flat vector: strided 3x3 convolutions down to 4x4, then a 1x1 to
    ``head_channels`` (shared by every w that reads this level)."""

    def __init__(self, resolution: int, channels: int, head_channels: int):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(channels, channels, 3, stride=2, padding=1)
                                   for _ in range(int(math.log2(resolution)) - 2))
        self.out = nn.Conv2d(channels, head_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.2)
        return F.leaky_relu(self.out(x), 0.2).flatten(1)


class Encoder(nn.Module):
    """Image [N, C, H, W] in [-1, 1] -> ws [N, num_ws, w_dim] (and the per-layer deltas).

    ``forward(img, num_deltas=None)``: ``num_deltas`` limits how many per-layer deltas are used (the
    e4e progressive schedule; None = all). ``w_avg`` and ``w_scale`` (the model's mean w and w spread)
    are buffers, set from the generator when training starts.
    """

    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.config = config
        cfg = config
        res = cfg.input_resolution
        self.stem = nn.Conv2d(cfg.img_channels, cfg.channels(res), 3, padding=1)
        self.blocks = nn.ModuleDict()
        self.lateral = nn.ModuleDict()
        r = res
        while r > 4:
            self.blocks[str(r // 2)] = ResidualDown(cfg.channels(r), cfg.channels(r // 2))
            r //= 2
        self.levels = sorted(set(cfg.head_resolutions))
        for lv in range(2, int(math.log2(max(self.levels))) + 1):
            self.lateral[str(2 ** lv)] = nn.Conv2d(cfg.channels(2 ** lv), cfg.fpn_channels, 1)
        self.heads = nn.ModuleDict({str(lv): StyleHead(lv, cfg.fpn_channels, cfg.head_channels)
                                    for lv in self.levels})
        flat = cfg.head_channels * 16
        self.to_w = nn.ModuleList(nn.Linear(flat, cfg.w_dim) for _ in range(cfg.num_ws))
        for lin in self.to_w:                  # start at w_avg: the projector's usual starting point
            nn.init.normal_(lin.weight, std=0.01 / math.sqrt(flat))
            nn.init.zeros_(lin.bias)
        self.register_buffer("w_avg", torch.zeros([cfg.w_dim]))
        self.register_buffer("w_scale", torch.ones([]))

    def pyramid(self, img: torch.Tensor) -> dict[int, torch.Tensor]:
        """Top-down feature pyramid (Lin et al. 2017): level -> [N, fpn_channels, level, level]."""
        cfg = self.config
        if img.ndim != 4 or img.shape[1] != cfg.img_channels:
            raise ValueError(f"encoder input must be [N, {cfg.img_channels}, H, W], got {tuple(img.shape)}")
        x = img.to(torch.float32)
        if x.shape[2] != cfg.input_resolution or x.shape[3] != cfg.input_resolution:
            x = F.interpolate(x, size=(cfg.input_resolution,) * 2, mode="area" if x.shape[2] > cfg.input_resolution
                              else "bilinear", **({} if x.shape[2] > cfg.input_resolution else {"align_corners": False}))
        x = F.leaky_relu(self.stem(x), 0.2)
        feats = {cfg.input_resolution: x}
        r = cfg.input_resolution
        while r > 4:
            x = self.blocks[str(r // 2)](x)
            r //= 2
            feats[r] = x
        out: dict[int, torch.Tensor] = {}
        top = None
        for lv in sorted(int(k) for k in self.lateral):
            lat = self.lateral[str(lv)](feats[lv])
            top = lat if top is None else lat + F.interpolate(top, scale_factor=2, mode="nearest")
            out[lv] = top
        return out

    def forward(self, img: torch.Tensor, num_deltas: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(ws [N, num_ws, w_dim], deltas [N, num_ws - 1, w_dim] in units of ``w_scale``)."""
        pyr = self.pyramid(img)
        flat = {lv: self.heads[str(lv)](pyr[lv]) for lv in self.levels}
        raw = torch.stack([self.to_w[i](flat[lv]) for i, lv in enumerate(self.config.head_resolutions)], dim=1)
        base, deltas = raw[:, :1], raw[:, 1:]
        if num_deltas is not None:
            keep = (torch.arange(deltas.shape[1], device=raw.device) < num_deltas).to(raw.dtype)
            deltas = deltas * keep[None, :, None]
        offsets = torch.cat([base, base + deltas], dim=1)
        return self.w_avg + self.w_scale * offsets, deltas

    def extra_repr(self) -> str:
        c = self.config
        return (f"img_resolution={c.img_resolution}, input_resolution={c.input_resolution}, num_ws={c.num_ws}, "
                f"w_dim={c.w_dim}, levels={self.levels}")
