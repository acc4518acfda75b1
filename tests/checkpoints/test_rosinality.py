"""rosinality/stylegan2-pytorch ``.pt`` checkpoints <-> our networks.

State dicts are built here with rosinality's parameter names and known random weights, saved with
``torch.save`` and loaded through ``load_network``; outputs are compared with an independent
computation written from rosinality's layer semantics (EqualLinear, ModulatedConv2d with the scale
inside the demodulation, transposed conv + blur, ToRGB skip upsampling, ResBlock discriminator).
"""

from __future__ import annotations

import argparse
import math
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from stylegan.checkpoints import load_network
from stylegan.checkpoints.rosinality import save_rosinality
from stylegan.errors import CheckpointError
from support.tf_nets import fir, minibatch_std

SQRT2 = math.sqrt(2)
CH = {4: 16, 8: 16, 16: 8}
STYLE = 8
KERNEL = torch.outer(torch.tensor([1.0, 3, 3, 1]), torch.tensor([1.0, 3, 3, 1])) / 64


def rosinality_generator(seed: int, n_mlp: int = 2) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)

    def r(*shape, scale=1.0, offset=0.0):
        return torch.randn(shape, generator=g) * scale + offset

    sd = {}
    for i in range(1, n_mlp + 1):
        sd[f"style.{i}.weight"] = r(STYLE, STYLE, scale=100.0)        # EqualLinear(lr_mul=0.01) stores w / lr
        sd[f"style.{i}.bias"] = r(STYLE, scale=10.0)

    def styled(name, cin, cout, up=False):
        sd[f"{name}.conv.weight"] = r(1, cout, cin, 3, 3)
        sd[f"{name}.conv.modulation.weight"] = r(cin, STYLE)
        sd[f"{name}.conv.modulation.bias"] = r(cin, scale=0.2, offset=1.0)
        sd[f"{name}.noise.weight"] = r(1, scale=0.3)
        sd[f"{name}.activate.bias"] = r(cout, scale=0.2)
        if up:
            sd[f"{name}.conv.blur.kernel"] = KERNEL * 4

    def to_rgb(name, cin, up=True):
        sd[f"{name}.conv.weight"] = r(1, 3, cin, 1, 1)
        sd[f"{name}.conv.modulation.weight"] = r(cin, STYLE)
        sd[f"{name}.conv.modulation.bias"] = r(cin, scale=0.2, offset=1.0)
        sd[f"{name}.bias"] = r(1, 3, 1, 1, scale=0.1)
        if up:
            sd[f"{name}.upsample.kernel"] = KERNEL * 4

    sd["input.input"] = r(1, CH[4], 4, 4)
    styled("conv1", CH[4], CH[4])
    to_rgb("to_rgb1", CH[4], up=False)
    for k, res in enumerate([8, 16]):
        styled(f"convs.{2 * k}", CH[res // 2], CH[res], up=True)
        styled(f"convs.{2 * k + 1}", CH[res], CH[res])
        to_rgb(f"to_rgbs.{k}", CH[res])
    for j in range(5):
        res = 2 ** ((j + 5) // 2)
        sd[f"noises.noise_{j}"] = r(1, 1, res, res)
    return sd


def rosinality_discriminator(seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)

    def r(*shape, scale=1.0):
        return torch.randn(shape, generator=g) * scale

    sd = {"convs.0.0.weight": r(CH[16], 3, 1, 1), "convs.0.1.bias": r(CH[16], scale=0.2)}
    for k, res in enumerate([16, 8], start=1):
        sd[f"convs.{k}.conv1.0.weight"] = r(CH[res], CH[res], 3, 3)
        sd[f"convs.{k}.conv1.1.bias"] = r(CH[res], scale=0.2)
        sd[f"convs.{k}.conv2.0.kernel"] = KERNEL.clone()
        sd[f"convs.{k}.conv2.1.weight"] = r(CH[res // 2], CH[res], 3, 3)
        sd[f"convs.{k}.conv2.2.bias"] = r(CH[res // 2], scale=0.2)
        sd[f"convs.{k}.skip.0.kernel"] = KERNEL.clone()
        sd[f"convs.{k}.skip.1.weight"] = r(CH[res // 2], CH[res], 1, 1)
    sd["final_conv.0.weight"] = r(CH[4], CH[4] + 1, 3, 3)
    sd["final_conv.1.bias"] = r(CH[4], scale=0.2)
    sd["final_linear.0.weight"] = r(CH[4], CH[4] * 16)
    sd["final_linear.0.bias"] = r(CH[4], scale=0.2)
    sd["final_linear.1.weight"] = r(1, CH[4])
    sd["final_linear.1.bias"] = r(1, scale=0.2)
    return sd


def _d(sd):
    return {k: v.double() for k, v in sd.items()}


def flrelu(x, bias):
    return F.leaky_relu(x + bias.reshape(1, -1, *[1] * (x.ndim - 2)), 0.2) * SQRT2


def reference_generator(sd, z, latent_avg=None, psi=1.0, lr_mlp=0.01):
    """rosinality ``Generator(..., randomize_noise=False)`` on float64 copies of the weights."""
    sd = _d(sd)
    x = z.double()
    x = x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + 1e-8)
    i = 1
    while f"style.{i}.weight" in sd:
        w = sd[f"style.{i}.weight"]
        x = flrelu(x @ (w * (lr_mlp / math.sqrt(w.shape[1]))).t(), sd[f"style.{i}.bias"] * lr_mlp)
        i += 1
    if psi != 1:
        x = latent_avg.double() + psi * (x - latent_avg.double())
    out = []
    for n in range(x.shape[0]):
        w = x[n: n + 1]

        def modconv(h, name, demod=True, up=False):
            weight = sd[f"{name}.conv.weight"][0]
            mw = sd[f"{name}.conv.modulation.weight"]
            s = w @ (mw / math.sqrt(mw.shape[1])).t() + sd[f"{name}.conv.modulation.bias"]
            weight = weight / math.sqrt(weight[0].numel()) * s.reshape(1, -1, 1, 1)
            if demod:
                weight = weight * (weight.square().sum(dim=[1, 2, 3], keepdim=True) + 1e-8).rsqrt()
            if up:
                h = F.conv_transpose2d(h, weight.transpose(0, 1), stride=2)
                return fir(h, KERNEL.double(), 1, 1, gain=4)
            return F.conv2d(h, weight, padding=weight.shape[-1] // 2)

        def styled(h, name, noise, up=False):
            h = modconv(h, name, up=up) + sd[f"{name}.noise.weight"] * sd[f"noises.noise_{noise}"]
            return flrelu(h, sd[f"{name}.activate.bias"])

        h = styled(sd["input.input"], "conv1", 0)
        skip = modconv(h, "to_rgb1", demod=False) + sd["to_rgb1.bias"]
        for k in range(2):
            h = styled(h, f"convs.{2 * k}", 2 * k + 1, up=True)
            h = styled(h, f"convs.{2 * k + 1}", 2 * k + 2)
            skip = modconv(h, f"to_rgbs.{k}", demod=False) + sd[f"to_rgbs.{k}.bias"] + fir(skip, KERNEL, 2, 1, up=2,
                                                                                             gain=4)
        out.append(skip)
    return torch.cat(out).numpy()


def reference_discriminator(sd, img):
    sd = _d(sd)

    def conv(x, w, stride=1, padding=0):
        return F.conv2d(x, w / math.sqrt(w[0].numel()), stride=stride, padding=padding)

    x = flrelu(conv(img.double(), sd["convs.0.0.weight"]), sd["convs.0.1.bias"])
    for k in (1, 2):
        p = f"convs.{k}"
        out = flrelu(conv(x, sd[f"{p}.conv1.0.weight"], padding=1), sd[f"{p}.conv1.1.bias"])
        out = flrelu(conv(fir(out, KERNEL, 2, 2), sd[f"{p}.conv2.1.weight"], stride=2), sd[f"{p}.conv2.2.bias"])
        skip = conv(fir(x, KERNEL, 1, 1), sd[f"{p}.skip.1.weight"], stride=2)
        x = (out + skip) / SQRT2
    x = minibatch_std(x, 4)
    x = flrelu(conv(x, sd["final_conv.0.weight"], padding=1), sd["final_conv.1.bias"])
    w0, w1 = sd["final_linear.0.weight"], sd["final_linear.1.weight"]
    x = flrelu(x.flatten(1) @ (w0 / math.sqrt(w0.shape[1])).t(), sd["final_linear.0.bias"])
    return (x @ (w1 / math.sqrt(w1.shape[1])).t() + sd["final_linear.1.bias"]).numpy()


@pytest.fixture(scope="module")
def checkpoint_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("ros") / "040000.pt"
    torch.save({"g_ema": rosinality_generator(0), "g": rosinality_generator(1), "d": rosinality_discriminator(2),
                "latent_avg": torch.randn(STYLE, generator=torch.Generator().manual_seed(3)),
                "args": argparse.Namespace(size=16, n_mlp=2, latent=STYLE, channel_multiplier=2, iter=40000),
                "g_optim": {"state": {}, "param_groups": [{"lr": 0.002}]}}, path)
    return path


def _run(G, z, **kw):
    with torch.no_grad():
        return G(z, noise_mode="const", **kw).numpy()


def test_rosinality_checkpoint_matches_rosinality_math(checkpoint_file):
    ckpt = load_network(checkpoint_file)
    raw = torch.load(checkpoint_file, weights_only=False)
    assert ckpt.source_format == "rosinality"
    assert ckpt.G_ema.config.synthesis.architecture == "skip" and ckpt.D.config.architecture == "resnet"
    assert ckpt.metadata["rosinality_args"]["iter"] == 40000
    z = torch.randn(3, STYLE, generator=torch.Generator().manual_seed(7))
    np.testing.assert_allclose(_run(ckpt.G_ema, z), reference_generator(raw["g_ema"], z), atol=1e-5)
    np.testing.assert_allclose(_run(ckpt.G, z), reference_generator(raw["g"], z), atol=1e-5)
    np.testing.assert_allclose(_run(ckpt.G_ema, z, truncation_psi=0.6),
                               reference_generator(raw["g_ema"], z, raw["latent_avg"], psi=0.6), atol=1e-5)
    img = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(8))
    with torch.no_grad():
        np.testing.assert_allclose(ckpt.D(img).numpy(), reference_discriminator(raw["d"], img), atol=1e-5)


def test_legacy_torch_save_format_loads_too(tmp_path):
    path = tmp_path / "old.pt"
    torch.save({"g_ema": rosinality_generator(0), "latent_avg": torch.zeros(STYLE)}, path,
               _use_new_zipfile_serialization=False)
    G = load_network(path).G_ema
    z = torch.randn(2, STYLE)
    np.testing.assert_allclose(_run(G, z), reference_generator(rosinality_generator(0), z), atol=1e-5)


def test_missing_latent_avg_is_estimated(tmp_path):
    path = tmp_path / "g.pt"
    torch.save({"g_ema": rosinality_generator(0)}, path)
    ckpt = load_network(path)
    assert "estimated" in ckpt.metadata["w_avg"]
    G = ckpt.G_ema
    z = torch.randn(512, STYLE, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        sample_mean = G.mapping(z, None)[:, 0].mean(0)
    assert torch.allclose(G.mapping.w_avg, sample_mean, atol=0.15 * sample_mean.abs().max().item())
    a, b = _run(G, z[:1], truncation_psi=0), _run(G, z[1:2], truncation_psi=0)
    np.testing.assert_allclose(a, b, atol=1e-6)                     # psi = 0: every z gives the average image


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("echo PWNED > /dev/null",))


def test_checkpoint_with_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"g_ema": rosinality_generator(0), "hook": _RunsCode()}, path)
    with pytest.raises(CheckpointError, match="not load"):
        load_network(path)


def test_torch_file_that_is_not_a_stylegan(tmp_path):
    path = tmp_path / "resnet.pt"
    torch.save({"model": {"fc.weight": torch.ones(2, 2)}}, path)
    with pytest.raises(CheckpointError, match="not a rosinality StyleGAN2"):
        load_network(path)


def test_export_to_rosinality_round_trips_every_tensor(checkpoint_file, tmp_path):
    ckpt = load_network(checkpoint_file)
    written, notes = save_rosinality(ckpt, tmp_path / "back.pt")
    assert notes == []                                              # nothing rosinality cannot represent
    back = torch.load(written, weights_only=True)
    orig = torch.load(checkpoint_file, weights_only=False)
    for key in ("g_ema", "g", "d"):
        assert set(back[key]) == set(orig[key]), key
        for name, t in orig[key].items():
            torch.testing.assert_close(back[key][name], t, rtol=0, atol=0, msg=f"{key}.{name}")
    torch.testing.assert_close(back["latent_avg"], orig["latent_avg"])


def test_export_refuses_what_rosinality_cannot_hold(tmp_path):
    from support.models import make_tiny_checkpoint
    ckpt = make_tiny_checkpoint("stylegan3")
    with pytest.raises(CheckpointError, match="stylegan3-t generator"):
        save_rosinality(ckpt, tmp_path / "x.pt")
    assert not (tmp_path / "x.pt").exists()
