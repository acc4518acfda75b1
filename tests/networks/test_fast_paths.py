"""Whole networks: our fast execution equals the official-equivalent reference execution."""

import numpy as np
import pytest
import torch

from support.models import make_tiny_checkpoint, reference_checkpoint, reference_npz


@pytest.mark.parametrize("generation,variant", [("stylegan2", "t"), ("stylegan3", "t"), ("stylegan3", "r")])
@pytest.mark.parametrize("batch", [1, 3])
def test_fast_path_matches_reference_path(generation, variant, batch):
    G = make_tiny_checkpoint(generation, variant=variant).G_ema
    ws = G.mapping(torch.randn([batch, G.z_dim], generator=torch.Generator().manual_seed(0)), None)
    with torch.inference_mode():
        fast = G.synthesis(ws, noise_mode="const")
        ref = G.synthesis(ws, noise_mode="const", impl="reference")
        again = G.synthesis(ws, noise_mode="const")
    assert (fast - ref).abs().max().item() <= 2e-3
    assert torch.equal(fast, again)  # the choice holds for one call only


def test_reference_impl_reproduces_the_official_outputs(reference_dir):
    for name in ("sg2", "sg3r"):
        G = reference_checkpoint(name).G_ema
        d = np.load(reference_npz(name))
        with torch.inference_mode():
            img = G.synthesis(torch.from_numpy(d["ref/ws_psi07"]), noise_mode="const", impl="reference")
        assert (img - torch.from_numpy(d["ref/img_psi07_const"])).abs().max().item() <= 2e-3


def test_channel_chunked_cpu_path_reproduces_the_official_outputs(reference_dir, monkeypatch):
    """The CPU path filters StyleGAN3's channels in chunks (16 at a time when forced here): the
    official networks' outputs come out unchanged."""
    from stylegan.networks import ops
    monkeypatch.setattr(ops, "CPU_CHUNK_BYTES", 1)
    for name in ("sg3t", "sg3r"):
        G = reference_checkpoint(name).G_ema
        d = np.load(reference_npz(name))
        with torch.inference_mode():
            img = G.synthesis(torch.from_numpy(d["ref/ws_psi07"]), noise_mode="const")
        assert (img - torch.from_numpy(d["ref/img_psi07_const"])).abs().max().item() <= 1e-4


def test_compiling_keeps_parameter_names():
    G = make_tiny_checkpoint("stylegan3", variant="r").G_ema
    names = list(G.state_dict())
    G.compile_synthesis()
    assert list(G.state_dict()) == names  # saving and loading are unaffected
