"""The StyleGAN3 synthesis network: shapes, how it describes itself, the input transform taken per call,
batching and the reference implementation."""

import math

import numpy as np
import pytest
import torch

from stylegan.latent.sampling import transform_matrix
from stylegan.networks import Generator, GeneratorConfig, MappingConfig, StyleGAN3SynthesisConfig
from support.models import make_tiny_checkpoint, reference_checkpoint, reference_npz


@pytest.fixture(scope="module", params=["t", "r"])
def G(request):
    return make_tiny_checkpoint("stylegan3", variant=request.param).G_ema    # 32x32, 6 layers + ToRGB


def _ws(G, n, seed=0):
    return G.mapping(torch.randn([n, G.z_dim], generator=torch.Generator().manual_seed(seed)), None)


def test_shapes_and_style_layers(G):
    S = G.synthesis
    assert S.num_ws == 8 and len(S.layer_names) == 7
    with torch.no_grad():
        assert S(_ws(G, 2)).shape == (2, 3, 32, 32)
    layers = S.style_layers()
    assert [s.w_index for s in layers] == list(range(1, 7))            # ws[0] drives the Fourier input
    assert [s.name for s in layers] == S.layer_names[:-1]
    assert all(s.affine is getattr(S, s.name).affine and not s.is_torgb for s in layers)
    last = S.style_layers(include_torgb=True)[-1]
    assert (last.w_index, last.name, last.is_torgb) == (7, S.layer_names[-1], True)
    assert S.noise_maps() == {} and S.has_input_transform is True


def test_layer_resolutions_follow_the_band_limits():
    """At 256x256 the layers group as StyleGAN2's do: coarse 0-3, middle 4-7, fine 8-15 (latent/mixing.py)."""
    cfg = GeneratorConfig("stylegan3", z_dim=8, w_dim=8, img_resolution=256, mapping=MappingConfig(num_layers=1),
                          synthesis=StyleGAN3SynthesisConfig(channel_base=256, channel_max=4))
    res = Generator(cfg).synthesis.layer_resolutions
    assert len(res) == 16 and res == sorted(res) and res[0] == 4 and res[-1] == 256
    assert [i for i, r in enumerate(res) if r <= 8] == [0, 1, 2, 3]
    assert [i for i, r in enumerate(res) if 16 <= r <= 32] == [4, 5, 6, 7]
    S = Generator(cfg).synthesis
    cutoffs = [S.input.bandwidth] + [float(getattr(S, n).out_cutoff) for n in S.layer_names]
    assert all(r >= min(2 * c, 256) - 1e-6 for r, c in zip(res, cutoffs))   # each resolution covers its cutoff


def test_transform_argument_moves_the_image_and_leaves_the_buffer(G):
    S = G.synthesis
    ws = _ws(G, 2)
    m = transform_matrix(translate=(0.25, 0.0), rotate=30)
    with torch.no_grad():
        plain = S(ws)
        moved = S(ws, transform=m)
        assert torch.equal(S(ws, transform=np.eye(3)), plain)
        S.input.transform.copy_(torch.from_numpy(m))                  # NVIDIA's way: the stored buffer
        try:
            stored = S(ws)
        finally:
            S.input.transform.copy_(torch.eye(3))
    assert torch.equal(moved, stored)
    assert (moved - plain).abs().mean() > 0.01
    assert torch.equal(S.input.transform, torch.eye(3))


def test_transform_reproduces_the_official_network(reference_dir):
    G = reference_checkpoint("sg3t").G_ema
    d = np.load(reference_npz("sg3t"))
    with torch.no_grad():
        img = G.synthesis(torch.from_numpy(d["ref/ws_psi07"]), noise_mode="const", transform=d["ref/transform"])
    assert (img - torch.from_numpy(d["ref/img_transform_const"])).abs().max().item() <= 2e-3
    assert torch.equal(G.synthesis.input.transform, torch.eye(3))


def test_no_noise_inputs_and_bad_calls_are_refused(G):
    ws = _ws(G, 1)
    with pytest.raises(ValueError, match="do not belong"):
        G.synthesis(ws, noise={"L0_36_32": torch.zeros(36, 36)})
    with pytest.raises(ValueError, match="noise_mode"):
        G.synthesis(ws, noise_mode="sometimes")
    with torch.no_grad():                                             # noise modes do not matter to StyleGAN3
        assert torch.equal(G.synthesis(ws, noise_mode="random"), G.synthesis(ws, noise_mode="none"))


def test_cpu_inference_batch_equals_samples_one_at_a_time(G):
    ws = _ws(G, 3)
    m = transform_matrix(rotate=10)
    with torch.inference_mode():
        assert torch.equal(G.synthesis(ws, transform=m), torch.cat([G.synthesis(w, transform=m) for w in ws.split(1)]))


def test_reference_implementation_equals_the_fast_one(G):
    ws = _ws(G, 2)
    with torch.no_grad():
        for m in (None, transform_matrix(translate=(0.1, -0.2), rotate=-20)):
            fast = G.synthesis(ws, transform=m)
            ref = G.synthesis(ws, transform=m, impl="reference")
            assert (fast - ref).abs().max().item() < 1e-4
    assert math.isfinite(float(ref.abs().max()))
