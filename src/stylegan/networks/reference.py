"""An official-equivalent execution mode: the same networks and outputs, computed the way
NVIDIA's pure-PyTorch reference path does (zero-stuffed upsampling, full-rate filtering before
subsampling, grouped convolutions for every batch, NCHW tensors, separate bias / activation /
gain / clamp passes).

It exists to test our fast paths against the literal definitions on whole networks and as the
baseline of ``benchmarks/inference.py``. Not thread-safe: it swaps module-level functions.
"""

from __future__ import annotations

import contextlib

from . import ops, stylegan2, stylegan3


@contextlib.contextmanager
def reference_mode(G):
    """Run the official-equivalent reference path: the same outputs, computed the way NVIDIA's
    pure-PyTorch path does (zero-stuffed upsampling and full-rate filtering, grouped convolutions
    for every batch, NCHW tensors, separate bias / activation / gain / clamp passes)."""
    def styled_reference(x, weight, styles, bias, noise=None, up=1, padding=0, resample_filter=None,
                         demodulate=True, flip_weight=True, fused_modconv=True, activation="lrelu", gain=1.0,
                         clamp=None):
        y = stylegan2.modulated_conv2d(x, weight, styles, noise=noise, up=up, padding=padding,
                                       resample_filter=resample_filter, demodulate=demodulate,
                                       flip_weight=flip_weight, fused_modconv=True)
        return ops.bias_act(y, bias, act=activation, gain=gain, clamp=clamp)

    def modconv3_reference(x, weight, styles, padding=0, demodulate=True, input_gain=None, fused_modconv=True,
                           bias=None):
        y = modconv3(x, weight, styles, padding=padding, demodulate=demodulate, input_gain=input_gain,
                     fused_modconv=True)
        return y if bias is None else y + bias.to(y.dtype).reshape(1, -1, 1, 1)

    saved = (ops.upfirdn2d, ops.filtered_lrelu, stylegan2.styled_conv2d, stylegan3.modulated_conv2d,
             G.synthesis.channels_last)
    modconv3 = stylegan3.modulated_conv2d
    ops.upfirdn2d = ops.upfirdn2d_reference
    ops.filtered_lrelu = ops.filtered_lrelu_reference
    stylegan2.styled_conv2d = styled_reference
    stylegan3.modulated_conv2d = modconv3_reference
    G.synthesis.channels_last = False
    try:
        yield
    finally:
        (ops.upfirdn2d, ops.filtered_lrelu, stylegan2.styled_conv2d, stylegan3.modulated_conv2d,
         G.synthesis.channels_last) = saved
