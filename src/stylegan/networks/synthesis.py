"""What every synthesis network (StyleGAN1/2/3) shares: the options of a call, the checks at its
boundary, and the way it describes itself, so that code outside ``networks`` never probes internals.

A synthesis network ``S`` answers:

* ``S.num_ws``, ``S.w_dim``, ``S.img_resolution``, ``S.img_shape`` (``(H, W)``: the square, or a
  non-square model's native shape, the longer side ``img_resolution``), ``S.img_channels``;
* ``S.style_layers(include_torgb=False)``: every style-modulated layer as a :class:`StyleLayer`
  (which ws index drives it, its name, its affine);
* ``S.layer_resolutions``: the image resolution each ws index works at (the paper's
  coarse/middle/fine grouping is built on it);
* ``S.noise_maps()``: the constant per-pixel noise map of every layer with a noise input, by name;
* ``S.has_input_transform``: whether ``transform=`` (StyleGAN3's input rotation/translation) applies;
* ``S.canvas_stride`` and ``S.canvas_size(canvas)``: the step of the sizes it can render other than
  its own square, and the (rounded-up) size it renders for an asked ``canvas=(H, W)``.

and is called as ``S(ws, noise_mode=..., noise=..., transform=..., canvas=..., impl=..., force_fp32=...,
fused_modconv=...)``: ``noise`` gives explicit maps (name -> ``[N or 1, 1, H, W]`` or ``[H, W]``)
in place of the mode for those layers; ``transform`` a 3x3 matrix used instead of the stored
``input.transform`` buffer for this call; ``canvas`` an image size ``(H, W)`` other than the
model's own ``S.img_shape`` (the training square, or a non-square model's native shape) (rendered at ``canvas_size(canvas)`` and centre-cropped; see docs/canvas.md);
``impl='reference'`` computes the same function the way NVIDIA's pure-PyTorch reference path does
(see :mod:`stylegan.networks.options`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .options import CONST_EXTENSIONS, IMPLS, NOISE_MODES

DEFAULT_CONST_EXTENSION = CONST_EXTENSIONS[0]

@dataclass(frozen=True)
class StyleLayer:
    """A synthesis layer modulated by one w."""
    w_index: int                           # which ws[:, i] drives it
    name: str                              # module name relative to the synthesis network
    affine: nn.Module                      # w -> styles (its ``weight`` is [styles, w_dim])
    is_torgb: bool = False


def check_ws(ws: torch.Tensor, num_ws: int, w_dim: int) -> None:
    if not isinstance(ws, torch.Tensor) or ws.ndim != 3 or ws.shape[1] != num_ws or ws.shape[2] != w_dim:
        shape = tuple(ws.shape) if isinstance(ws, torch.Tensor) else type(ws).__name__
        raise ValueError(f"ws must have shape [N, {num_ws}, {w_dim}] (one w per layer), got {shape}")


def check_call(noise_mode: str, impl: str) -> None:
    if noise_mode not in NOISE_MODES:
        raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")


def check_noise(noise: dict | None, maps: dict[str, torch.Tensor], batch: int) -> dict:
    """Explicit noise maps against the network's own (``maps``): known names, the same H x W, and a
    batch of 1 or ``batch``."""
    noise = dict(noise or {})
    unknown = sorted(set(noise) - set(maps))
    if unknown:
        raise ValueError(f"noise maps {unknown[:3]} do not belong to this network (its maps: {sorted(maps)[:4]} ...)")
    for name, n in noise.items():
        size = tuple(maps[name].shape[-2:])
        if n.ndim not in (2, 4) or tuple(n.shape[-2:]) != size or (n.ndim == 4 and n.shape[0] not in (1, batch)):
            raise ValueError(f"noise map {name} must be [{batch} or 1, 1, {size[0]}, {size[1]}] or {list(size)}, "
                             f"got {tuple(n.shape)}")
    return noise


def one_at_a_time(ws: torch.Tensor, fused_modconv, impl: str = "fast") -> bool:
    """On CPUs, inference runs sample by sample: each sample's activations stay in cache and the
    per-sample (fused) convolution needs no extra passes; measured ~12% faster per image at batch 8
    than batched execution. Training (gradients), GPUs and the reference path keep whole batches."""
    return (fused_modconv is None and impl == "fast" and ws.shape[0] > 1 and ws.device.type == "cpu"
            and not torch.is_grad_enabled())


def memory_format_for(channels_last: bool | None, device: torch.device, dtype: torch.dtype,
                      impl: str = "fast"):
    """Channels-last (NHWC) where it is faster: always on CPUs (oneDNN's depthwise and 3x3 kernels),
    for half precision on CUDA (tensor cores); ``channels_last`` True/False overrides; the
    reference path is NCHW."""
    if impl == "reference":
        return torch.contiguous_format
    if channels_last is None:
        channels_last = device.type == "cpu" or (device.type == "cuda" and dtype != torch.float32)
    return torch.channels_last if channels_last else torch.contiguous_format


def split_noise(noise: dict, prefix: str) -> dict:
    """The maps of one block: ``{'b8.conv0': t}`` -> ``{'conv0': t}`` for prefix ``'b8.'``."""
    return {k[len(prefix):]: v for k, v in noise.items() if k.startswith(prefix)}


def block_layer_resolutions(num_ws: int, img_resolution: int) -> list[int]:
    """StyleGAN1/2 (one block per resolution): resolution ``2**k`` owns ws ``2k-4`` and ``2k-3``."""
    return [int(min(2 ** (i // 2 + 2), img_resolution)) for i in range(num_ws)]


def block_noise_maps(synthesis: nn.Module) -> dict[str, torch.Tensor]:
    """StyleGAN1/2: the constant noise map [H, W] of every ``b{res}.conv0``/``conv1`` with a noise input."""
    out = {}
    for res in synthesis.block_resolutions:
        for name in ("conv0", "conv1"):
            layer = getattr(getattr(synthesis, f"b{res}"), name, None)
            if layer is not None and layer.use_noise:
                out[f"b{res}.{name}"] = layer.noise_const
    return out


def check_canvas(canvas, shape) -> tuple[int, int] | None:
    """``canvas`` as ``(H, W)`` ints, or None for the model's own size ``shape`` (``(H, W)``, or one int for
    a square; None or equal to it): the default path, byte for byte the same as without ``canvas``."""
    native = (shape, shape) if isinstance(shape, int) else tuple(int(v) for v in shape)
    if canvas is None:
        return None
    try:
        h, w = (int(v) for v in canvas)
    except (TypeError, ValueError):
        raise ValueError(f"canvas must be (height, width), got {canvas!r}") from None
    if h < 1 or w < 1 or (h, w) != tuple(canvas):
        raise ValueError(f"canvas must be two positive integers (height, width), got {canvas!r}")
    return None if (h, w) == native else (h, w)


def round_canvas(canvas: tuple[int, int], stride: int) -> tuple[int, int]:
    """Each side rounded up to a multiple of ``stride``."""
    return tuple(-(-int(v) // stride) * stride for v in canvas)


def centre_crop(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The centred ``size = (H, W)`` window of ``x [..., H', W']`` (the extra row/column of an odd
    excess is cut from the bottom/right)."""
    h, w = size
    top, left = (x.shape[-2] - h) // 2, (x.shape[-1] - w) // 2
    if (top, left) == (0, 0) and tuple(x.shape[-2:]) == (h, w):
        return x
    return x[..., top:top + h, left:left + w]


def extension_index(n_out: int, n_in: int, offset: int, mode: str) -> torch.Tensor:
    """For ``n_out`` positions, which of the ``n_in`` source positions each takes when the source sits at
    ``offset`` and is continued by mirror images (``'reflect'``: d c b a | a b c d | d c b a) or by
    copies (``'tile'``)."""
    i = torch.arange(n_out) - offset
    if mode == "tile":
        return i % n_in
    j = i % (2 * n_in)
    return torch.where(j < n_in, j, 2 * n_in - 1 - j)


def extend_plane(x: torch.Tensor, size: tuple[int, int], offset: tuple[int, int], mode: str) -> torch.Tensor:
    """``x [..., h, w]`` continued to ``size = (H, W)`` with ``x`` at ``offset = (top, left)``:
    reflected, tiled, or (``'stretch'``) resampled bilinearly onto the larger grid."""
    if mode not in CONST_EXTENSIONS:
        raise ValueError(f"canvas extension must be one of {CONST_EXTENSIONS}, got {mode!r}")
    if mode == "stretch":
        flat = x.reshape(-1, 1, *x.shape[-2:]).to(torch.float32)
        out = torch.nn.functional.interpolate(flat, size=tuple(size), mode="bilinear", align_corners=False)
        return out.reshape(*x.shape[:-2], *size).to(x.dtype)
    rows = extension_index(size[0], x.shape[-2], offset[0], mode).to(x.device)
    cols = extension_index(size[1], x.shape[-1], offset[1], mode).to(x.device)
    return x.index_select(-2, rows).index_select(-1, cols)


def block_canvas_noise(synthesis: nn.Module, const_size: tuple[int, int], noise: dict | None = None,
                       mode: str = DEFAULT_CONST_EXTENSION) -> dict[str, torch.Tensor]:
    """StyleGAN1/2 on a canvas whose constant is ``const_size`` cells: each layer's map (``noise``'s
    map of the model's own size where given, else its ``noise_const``) continued the way the constant
    is ('stretch' continues noise by reflection: resampling would smooth it). Other maps in ``noise`` (of
    the canvas size, or wrong ones) are kept as they are, for :func:`check_noise`."""
    noise = dict(noise or {})
    mode = "reflect" if mode == "stretch" else mode
    base = tuple(synthesis.b4.const.shape[-2:])            # the constant's own cells (4x4 for a square model)
    out = {}
    for name, const in block_noise_maps(synthesis).items():
        px = const.shape[-1] // base[1]                     # pixels per cell at this layer
        size = (const_size[0] * px, const_size[1] * px)
        offset = ((const_size[0] - base[0]) // 2 * px, (const_size[1] - base[1]) // 2 * px)
        given = noise.get(name, const)
        native = tuple(given.shape[-2:]) == tuple(const.shape[-2:])
        out[name] = extend_plane(given, size, offset, mode) if native else given
    return out


def canvas_noise(synthesis: nn.Module, const_size: tuple[int, int], noise: dict,
                 mode: str = DEFAULT_CONST_EXTENSION) -> dict[str, torch.Tensor]:
    """Explicit maps for a canvas: the given ones only, maps of the model's own size continued as
    :func:`block_canvas_noise` does (names the network does not know are kept, for the check to refuse)."""
    extended = block_canvas_noise(synthesis, const_size, noise, mode)
    return {k: extended.get(k, v) for k, v in noise.items()}


class ConstantCanvas:
    """What StyleGAN1/2 synthesis networks (``img_resolution``, ``img_shape``, ``block_resolutions``, a
    ``b4.const`` of 4x4 cells, or ``4H/R`` x ``4W/R`` for a non-square model) share about canvases: the
    step, the rendered size, the extended constant's cells, the noise maps."""

    def noise_maps(self, canvas=None, extension: str = DEFAULT_CONST_EXTENSION) -> dict[str, torch.Tensor]:
        """The constant noise map [H, W] of every layer with a noise input, by layer name; with ``canvas``
        the maps that canvas uses (the stored maps continued as the constant is: docs/canvas.md)."""
        canvas = check_canvas(canvas, self.img_shape)
        if canvas is None:
            return block_noise_maps(self)
        return block_canvas_noise(self, self.const_cells(canvas), mode=extension)

    @property
    def canvas_stride(self) -> int:
        """One cell of the constant becomes ``R / 4`` pixels: canvases grow by whole cells."""
        return self.img_resolution // 4

    def canvas_size(self, canvas) -> tuple[int, int]:
        """The size rendered for ``canvas=(H, W)``: each side rounded up to a multiple of :attr:`canvas_stride`."""
        canvas = check_canvas(canvas, self.img_shape)
        return tuple(self.img_shape) if canvas is None else round_canvas(canvas, self.canvas_stride)

    def const_cells(self, canvas) -> tuple[int, int]:
        """Rows and columns of the extended constant for ``canvas``."""
        return tuple(v // self.canvas_stride for v in self.canvas_size(canvas))

    def canvas_inputs(self, canvas, noise: dict | None, noise_mode: str, batch: int,
                      extension: str) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The extended constant and every layer's noise map for ``canvas``: explicit ``noise`` (maps of
        the model's own size continued), else by ``noise_mode`` (the stored maps continued, or fresh
        ``randn`` of the canvas size; none for 'none')."""
        cells = self.const_cells(canvas)
        maps = block_canvas_noise(self, cells, mode=extension)
        given = check_noise(canvas_noise(self, cells, noise, extension), maps, batch) if noise else {}
        device = self.b4.const.device
        for name, const_map in maps.items():
            if name not in given and noise_mode != "none":
                given[name] = const_map if noise_mode == "const" else torch.randn([batch, 1, *const_map.shape],
                                                                                   device=device)
        base = self.b4.const.shape[-2:]
        const = extend_plane(self.b4.const, cells, ((cells[0] - base[0]) // 2, (cells[1] - base[1]) // 2), extension)
        return const, given
