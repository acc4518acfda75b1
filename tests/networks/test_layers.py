"""The fast layer ops compute the same function — values and gradients — as the plain composition."""

import pytest
import torch

from stylegan.networks import ops
from stylegan.networks.stylegan2 import modulated_conv2d, styled_conv2d
from stylegan.networks import stylegan3


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("up,demodulate,act", [(1, True, "lrelu"), (2, True, "lrelu"), (1, False, "linear")])
def test_styled_conv_equals_modulated_conv_plus_bias_act(fused, up, demodulate, act):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn([3, 6, 8, 8], generator=gen, dtype=torch.float64, requires_grad=True)
    weight = torch.randn([5, 6, 3, 3], generator=gen, dtype=torch.float64, requires_grad=True)
    styles = torch.randn([3, 6], generator=gen, dtype=torch.float64, requires_grad=True)
    bias = torch.randn([5], generator=gen, dtype=torch.float64, requires_grad=True)
    noise = torch.randn([8 * up, 8 * up], generator=gen, dtype=torch.float64)
    f = ops.setup_filter([1, 3, 3, 1]).double()
    kw = dict(up=up, padding=1, resample_filter=f, demodulate=demodulate, flip_weight=(up == 1), fused_modconv=fused)
    got = styled_conv2d(x, weight, styles, bias, noise=noise, activation=act, gain=1.7, clamp=2.5, **kw)
    ref = ops.bias_act(modulated_conv2d(x, weight, styles, noise=noise, **kw), bias, act=act, gain=1.7, clamp=2.5)
    assert torch.allclose(got, ref, atol=1e-10)
    g_got = torch.autograd.grad(got.square().sum(), [x, weight, styles, bias])
    g_ref = torch.autograd.grad(ref.square().sum(), [x, weight, styles, bias])
    for a, b in zip(g_got, g_ref):
        assert torch.allclose(a, b, atol=1e-8)


def test_styled_conv_in_inference_mode_matches_autograd_mode():
    gen = torch.Generator().manual_seed(1)
    args = (torch.randn([2, 4, 8, 8], generator=gen), torch.randn([4, 4, 3, 3], generator=gen),
            torch.randn([2, 4], generator=gen), torch.randn([4], generator=gen))
    a = styled_conv2d(*args, noise=torch.randn([8, 8], generator=gen), padding=1, clamp=1.0)
    with torch.inference_mode():  # the in-place epilogue must give the same result
        gen2 = torch.Generator().manual_seed(1)
        args2 = tuple(torch.randn(t.shape, generator=gen2) for t in args)
        b = styled_conv2d(*args2, noise=torch.randn([8, 8], generator=gen2), padding=1, clamp=1.0)
    assert torch.allclose(a, b, atol=1e-6)


@pytest.mark.parametrize("fused", [True, False])
def test_stylegan3_bias_folding_matches_definition(fused):
    gen = torch.Generator().manual_seed(2)
    x = torch.randn([2, 4, 10, 10], generator=gen, dtype=torch.float64)
    w = torch.randn([5, 4, 3, 3], generator=gen, dtype=torch.float64)
    s = torch.randn([2, 4], generator=gen, dtype=torch.float64)
    b = torch.randn([5], generator=gen, dtype=torch.float64)
    gain = torch.tensor(0.7, dtype=torch.float64)
    got = stylegan3.modulated_conv2d(x, w, s, padding=2, input_gain=gain, fused_modconv=fused, bias=b)
    ref = stylegan3.modulated_conv2d(x, w, s, padding=2, input_gain=gain, fused_modconv=True) + b.reshape(1, -1, 1, 1)
    assert torch.allclose(got, ref, atol=1e-10)
