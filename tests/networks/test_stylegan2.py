"""The StyleGAN2 synthesis network: shapes, how it describes itself, explicit noise maps, batching and
the reference implementation."""

import pytest
import torch

from support.models import make_tiny_checkpoint


@pytest.fixture(scope="module")
def G():
    return make_tiny_checkpoint("stylegan2").G_ema           # 32x32, 8 ws, noise strengths 0.1


def _ws(G, n, seed=0):
    return G.mapping(torch.randn([n, G.z_dim], generator=torch.Generator().manual_seed(seed)), None)


def test_shapes_and_the_ws_each_block_takes(G):
    S = G.synthesis
    assert (S.num_ws, S.block_resolutions) == (8, [4, 8, 16, 32])
    with torch.no_grad():
        assert S(_ws(G, 2), noise_mode="const").shape == (2, 3, 32, 32)
    ws = torch.arange(8.0)[None, :, None].repeat(1, 1, G.w_dim)
    # a block's ToRGB shares its w with the next block's first conv: b4 = ws 0-1, b8 = ws 1-3, ...
    assert [b[0, :, 0].tolist() for b in S.block_ws(ws)] == [[0, 1], [1, 2, 3], [3, 4, 5], [5, 6, 7]]


def test_style_layers_resolutions_and_noise_maps_describe_the_network(G):
    S = G.synthesis
    layers = S.style_layers()
    assert [(s.w_index, s.name) for s in layers] == [
        (0, "b4.conv1"), (1, "b8.conv0"), (2, "b8.conv1"), (3, "b16.conv0"), (4, "b16.conv1"),
        (5, "b32.conv0"), (6, "b32.conv1")]
    assert all(s.affine is S.get_submodule(s.name).affine for s in layers)
    torgb = [s for s in S.style_layers(include_torgb=True) if s.is_torgb]
    assert [(s.w_index, s.name) for s in torgb] == [(1, "b4.torgb"), (3, "b8.torgb"), (5, "b16.torgb"),
                                                    (7, "b32.torgb")]
    assert S.layer_resolutions == [4, 4, 8, 8, 16, 16, 32, 32]
    maps = S.noise_maps()
    assert list(maps) == [s.name for s in layers]
    assert {k: tuple(v.shape) for k, v in maps.items()}["b16.conv0"] == (16, 16)
    assert all(v is S.get_submodule(k).noise_const for k, v in maps.items())   # the buffers themselves
    assert S.has_input_transform is False


def test_explicit_noise_maps_replace_the_noise_mode_per_layer_and_per_sample(G):
    S = G.synthesis
    ws = _ws(G, 2)
    maps = S.noise_maps()
    with torch.no_grad():
        const = S(ws, noise_mode="const")
        same = {k: v[None, None] for k, v in maps.items()}
        assert torch.equal(S(ws[:1], noise_mode="none", noise=same), const[:1])
        assert torch.allclose(S(ws, noise_mode="none", noise=same), const, atol=1e-5)    # (a whole batch)
        zeros = {k: torch.zeros([1, 1, *v.shape]) for k, v in maps.items()}
        assert torch.allclose(S(ws, noise_mode="const", noise=zeros), S(ws, noise_mode="none"), atol=1e-5)
        # one map per sample: each sample draws as if it were alone with its own map
        gen = torch.Generator().manual_seed(3)
        own = {k: torch.randn([2, 1, *v.shape], generator=gen) for k, v in maps.items()}
        both = S(ws, noise_mode="const", noise=own)
        for i in range(2):
            alone = S(ws[i:i + 1], noise_mode="const", noise={k: v[i:i + 1] for k, v in own.items()})
            assert torch.allclose(both[i:i + 1], alone, atol=1e-5)
        # maps for some layers only: the others follow the noise mode
        partial = S(ws, noise_mode="none", noise={"b32.conv1": own["b32.conv1"]})
        assert not torch.allclose(partial, S(ws, noise_mode="none"))
        assert torch.equal(S(ws, noise_mode="none", noise={}), S(ws, noise_mode="none"))
    assert all(torch.equal(v, S.noise_maps()[k]) for k, v in maps.items())       # the model's maps are untouched


def test_bad_calls_are_refused(G):
    S = G.synthesis
    ws = _ws(G, 1)
    with pytest.raises(ValueError, match="do not belong"):
        S(ws, noise={"b64.conv0": torch.zeros(64, 64)})
    with pytest.raises(ValueError, match="noise map b8.conv0"):
        S(ws, noise={"b8.conv0": torch.zeros([1, 1, 4, 4])})
    with pytest.raises(ValueError, match="no input transform"):
        S(ws, transform=torch.eye(3))
    with pytest.raises(ValueError, match="impl"):
        S(ws, impl="cuda")


def test_cpu_inference_batch_equals_samples_one_at_a_time(G):
    ws = _ws(G, 3)
    with torch.inference_mode():
        assert torch.equal(G.synthesis(ws, noise_mode="const"),
                           torch.cat([G.synthesis(w, noise_mode="const") for w in ws.split(1)]))


@pytest.mark.parametrize("architecture", ["orig", "skip", "resnet"])
def test_reference_implementation_equals_the_fast_one(architecture):
    import dataclasses

    from stylegan.networks import Generator
    from support.models import tiny_config
    cfg = tiny_config("stylegan2")
    torch.manual_seed(0)
    G = Generator(cfg.replace(synthesis=dataclasses.replace(cfg.synthesis, architecture=architecture))).eval()
    ws = _ws(G, 2)
    noise = {k: torch.randn([2, 1, *v.shape]) for k, v in G.synthesis.noise_maps().items()}
    with torch.no_grad():
        for kw in (dict(noise_mode="const"), dict(noise_mode="none"), dict(noise_mode="const", noise=noise)):
            fast = G.synthesis(ws, **kw)
            ref = G.synthesis(ws, impl="reference", **kw)
            assert (fast - ref).abs().max().item() < 1e-4, kw
