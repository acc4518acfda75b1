"""Canvases other than the training square (issue #17): StyleGAN3 renders a wider field of view of the
same continuous image, StyleGAN1/2 continue their 4x4 constant; the default canvas is the old path.

The thresholds were measured on these networks (docs/canvas.md, "How it is tested"):

* StyleGAN3 centre crop vs the normal render: 81-91 dB on the reference T network (the official code's
  random weights, margin 10), 125-131 dB on R; the same render moved by one output pixel scores about
  58 dB on T (the random weights make smooth images, so that is a small change). The bound, 70 dB, sits
  between the two; it is stricter than the equivariance NVIDIA publishes for trained StyleGAN3-T
  (EQ-T ~ 60-65 dB), because the only error here is the content that enters from beyond the margins.
  (Our tiny 32-pixel test networks have 4-sample margins and reach only ~49 dB: not used here.)
* Seams: the gradient energy across a line where two copies of the constant meet is 0.6-1.3 times the
  median over all lines; across the line where two renders are stitched (naive tiling) 5.8-10.6 times.
  The bound is 2.
"""

import numpy as np
import pytest
import torch
from support.models import make_tiny_checkpoint, reference_checkpoint, reference_npz

from stylegan.latent.sampling import transform_matrix
from stylegan.networks import (
    Generator,
    GeneratorConfig,
    MappingConfig,
    StyleGAN1SynthesisConfig,
)
from stylegan.networks.synthesis import CONST_EXTENSIONS
from stylegan.render.images import to_uint8

PSNR_MIN_DB = 70.0
SEAM_MAX = 2.0


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """dB, images in [-1, 1] (peak-to-peak 2), as NVIDIA's EQ-T."""
    mse = ((a - b) ** 2).mean().item()
    return float("inf") if mse == 0 else 10 * np.log10(4 / mse)


def tiny_sg1() -> Generator:
    torch.manual_seed(0)
    cfg = GeneratorConfig("stylegan1", z_dim=8, w_dim=8, img_resolution=32, img_channels=3,
                          mapping=MappingConfig(num_layers=2),
                          synthesis=StyleGAN1SynthesisConfig(channel_base=128, channel_max=16))
    G = Generator(cfg).eval().requires_grad_(False)
    with torch.no_grad():
        G.synthesis.b4.const.normal_()                     # ones when untrained: any extension would be seamless
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.uniform_(0.2, 0.5)
    return G


@pytest.fixture(scope="module")
def nets():
    return {"sg2": reference_checkpoint("sg2").G_ema, "sg3t": reference_checkpoint("sg3t").G_ema,
            "sg3r": reference_checkpoint("sg3r").G_ema, "sg1": tiny_sg1(),
            "tiny-sg2": make_tiny_checkpoint("stylegan2").G_ema}


def _ws(G, n=4, seed=0, psi=0.7):
    z = torch.from_numpy(np.random.RandomState(seed).randn(n, G.z_dim)).float()
    with torch.no_grad():
        return G.mapping(z, None, truncation_psi=psi)


@pytest.mark.parametrize("name", ["sg2", "sg3t", "sg3r", "sg1"])
def test_default_canvas_is_the_old_path_byte_for_byte(nets, name):
    G = nets[name]
    R = G.img_resolution
    ws = _ws(G, 2)
    with torch.no_grad():
        plain = G.synthesis(ws, noise_mode="const")
        assert torch.equal(G.synthesis(ws, noise_mode="const", canvas=(R, R)), plain)
        assert torch.equal(G.synthesis(ws, noise_mode="const", canvas=None), plain)
    assert G.synthesis.canvas_size(None) == (R, R) == G.synthesis.canvas_size((R, R))
    if name != "sg1":                                    # the official reference outputs, as test_reference
        r = np.load(reference_npz(name))
        with torch.no_grad():
            img = G.synthesis(torch.from_numpy(r["ref/ws_psi1"][:1]), noise_mode="const", canvas=(R, R))
        diff = np.abs(to_uint8(img).astype(int) - r["ref/u8_psi1_const"][:1].astype(int))
        assert diff.max() <= 1 and (diff > 0).mean() < 1e-3


@pytest.mark.parametrize("name", ["sg3t", "sg3r"])
def test_stylegan3_centre_of_a_wider_canvas_is_the_normal_render(nets, name):
    G = nets[name]
    R = G.img_resolution
    ws = _ws(G, 1)
    with torch.no_grad():
        plain = G.synthesis(ws)
        for h, w in [(R * 9 // 8, R * 2), (R + 4, R)]:         # 16:9; a side whose input grid is odd
            wide = G.synthesis(ws, canvas=(h, w))
            assert wide.shape == (1, 3, h, w)
            top, left = (h - R) // 2, (w - R) // 2
            assert psnr(wide[..., top:top + R, left:left + R], plain) > PSNR_MIN_DB, (h, w)
        if name == "sg3t":   # the control: the normal render moved by one output pixel fails the bound
            shifted = G.synthesis(ws, transform=transform_matrix(translate=(1 / R, 0.0)))
            assert psnr(shifted, plain) < PSNR_MIN_DB


def test_stylegan3_t_continues_the_scene_where_the_camera_moves(nets):
    """The left half of a 2R-wide canvas shows the field the normal render shows after panning half an
    image: the canvas is the same scene, wider (translation equivariance)."""
    G = nets["sg3t"]
    R = G.img_resolution
    ws = _ws(G, 1)
    with torch.no_grad():
        wide = G.synthesis(ws, canvas=(R, 2 * R))
        panned = G.synthesis(ws, transform=transform_matrix(translate=(0.5, 0.0)))
    assert psnr(wide[..., :R], panned) > PSNR_MIN_DB
    assert psnr(wide[..., R:], panned) < PSNR_MIN_DB - 30    # and the right half is other content


def test_canvas_sizes_round_up_to_the_stride_and_crop(nets):
    for name, G in nets.items():
        S = G.synthesis
        R = G.img_resolution
        stride = S.canvas_stride
        assert stride == (2 if name.startswith("sg3") else R // 4)
        h, w = R * 9 // 8 + 1, 2 * R - 1                    # not multiples of the stride
        assert S.canvas_size((h, w)) == (-(-h // stride) * stride, -(-w // stride) * stride)
        with torch.no_grad():
            assert S(_ws(G, 2), noise_mode="const", canvas=(h, w)).shape == (2, 3, h, w)
            assert S(_ws(G, 1), noise_mode="const", canvas=(R // 2, R)).shape == (1, 3, R // 2, R)
        for bad in [(0, R), (R, -4), (R,), "wide", (1.5, R)]:
            with pytest.raises(ValueError, match="canvas"):
                S(_ws(G, 1), canvas=bad)


def _seam_ratios(img: torch.Tensor, cols: list[int], rows: list[int]) -> list[float]:
    """Gradient energy across each listed line (between column c-1 and c; row r-1 and r) over the
    median across all lines of that direction."""
    ex = ((img[..., 1:] - img[..., :-1]) ** 2).mean(dim=(0, 1, 2))
    ey = ((img[..., 1:, :] - img[..., :-1, :]) ** 2).mean(dim=(0, 1, 3))
    return [(ex[c - 1] / ex.median()).item() for c in cols] + [(ey[r - 1] / ey.median()).item() for r in rows]


def _tile_lines(S, canvas):
    """Where copies of the 4x4 constant meet in the cropped canvas (or, for StyleGAN3, where the
    normal render's borders lie)."""
    h, w = canvas
    R = S.img_resolution
    if not hasattr(S, "const_cells"):
        return [(w - R) // 2, (w + R) // 2], [(h - R) // 2, (h + R) // 2]
    cells, s = S.const_cells(canvas), S.canvas_stride
    (H, W) = S.canvas_size(canvas)
    top, left = (H - h) // 2, (W - w) // 2
    cols = [((cells[1] - 4) // 2 + k) * s - left for k in (0, 4)]
    rows = [((cells[0] - 4) // 2 + k) * s - top for k in (0, 4)]
    return [c for c in cols if 0 < c < w], [r for r in rows if 0 < r < h]


@pytest.mark.parametrize("name", ["sg2", "tiny-sg2", "sg1", "sg3t"])
def test_a_16_9_canvas_has_no_seams_where_naive_tiling_has(nets, name):
    G = nets[name]
    R = G.img_resolution
    canvas = (R * 9 // 8, 2 * R)                             # 16:9 (W x H) at the model's scale
    ws = _ws(G, 2 if name.startswith("sg3") else 8, psi=1.0)
    with torch.no_grad():
        plain = G.synthesis(ws, noise_mode="const")
        naive = torch.cat([plain, plain], dim=3)             # two renders side by side
        assert _seam_ratios(naive, [R], [])[0] > 2 * SEAM_MAX
        extensions = CONST_EXTENSIONS if not name.startswith("sg3") else [None]
        for ext in extensions:
            kw = {} if ext is None else {"extension": ext}
            img = G.synthesis(ws, noise_mode="const", canvas=canvas, **kw)
            assert img.shape == (len(ws), 3, *canvas)
            cols, rows = _tile_lines(G.synthesis, canvas)
            assert cols
            ratios = _seam_ratios(img, cols, rows)
            assert max(ratios) < SEAM_MAX, (ext, ratios)


@pytest.mark.parametrize("name", ["tiny-sg2", "sg1"])
def test_noise_maps_follow_the_canvas(nets, name):
    G = nets[name]
    S = G.synthesis
    R = G.img_resolution
    canvas = (R * 9 // 8, 2 * R)
    H, W = S.canvas_size(canvas)
    maps = S.noise_maps(canvas=canvas)
    assert maps.keys() == S.noise_maps().keys()
    for layer, m in maps.items():
        r = S.noise_maps()[layer].shape[-1]
        assert tuple(m.shape) == (H * r // R, W * r // R)
    ws = _ws(G, 2)
    with torch.no_grad():
        const = S(ws, noise_mode="const", canvas=canvas)
        # (explicit maps run the batch whole, the const mode sample by sample: rounding may differ)
        torch.testing.assert_close(S(ws, noise_mode="const", canvas=canvas, noise=maps), const, atol=1e-5, rtol=0)
        # Square maps of the training size (a projection's) are continued the same way.
        torch.testing.assert_close(S(ws, noise_mode="none", canvas=canvas, noise=S.noise_maps()), const,
                                   atol=1e-5, rtol=0)
        last = max(maps)
        changed = S(ws, noise_mode="const", canvas=canvas, noise={last: torch.randn(maps[last].shape)})
        assert not torch.equal(changed, const)
        assert S(ws, noise_mode="none", canvas=canvas).shape == const.shape
        r1, r2 = S(ws, noise_mode="random", canvas=canvas), S(ws, noise_mode="random", canvas=canvas)
        assert r1.shape == const.shape and not torch.equal(r1, r2)
        with pytest.raises(ValueError, match="noise map"):
            S(ws, canvas=canvas, noise={last: torch.zeros(3, 5)})


def test_the_const_extensions_differ_and_keep_the_constant_centred(nets):
    S = nets["tiny-sg2"].synthesis
    R = S.img_resolution
    ws = _ws(nets["tiny-sg2"], 1)
    with torch.no_grad():
        imgs = {ext: S(ws, noise_mode="none", canvas=(R, 2 * R), extension=ext) for ext in CONST_EXTENSIONS}
    assert all(not torch.equal(imgs[a], imgs[b]) for a in CONST_EXTENSIONS for b in CONST_EXTENSIONS if a < b)
    with pytest.raises(ValueError, match="extension"):
        S(ws, canvas=(R, 2 * R), extension="mirror")


@pytest.mark.slow
def test_a_real_1080p_frame_from_the_built_in_model():
    from stylegan.checkpoints import load_generator
    G = load_generator(None, device="cpu")
    ws = _ws(G, 1)
    with torch.no_grad():
        img = G.synthesis(ws, noise_mode="const", canvas=(1080, 1920))
    assert img.shape == (1, 3, 1080, 1920) and torch.isfinite(img).all()
    cols, rows = _tile_lines(G.synthesis, (1080, 1920))
    assert max(_seam_ratios(img, cols, rows)) < SEAM_MAX
