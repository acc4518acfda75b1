"""Equalized-learning-rate building blocks, the mapping network and the half-precision policy
(shared by all generations and the discriminators)."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from . import ops
from .config import MappingConfig

HALF_DTYPES = (None, torch.float16, torch.bfloat16)


def check_half_dtype(dtype: torch.dtype | None) -> torch.dtype | None:
    if dtype not in HALF_DTYPES:
        raise ValueError("half dtype must be None, torch.float16 or torch.bfloat16")
    return dtype


def block_dtype(use_fp16: bool, force_fp32: bool, x_device: torch.device,
                half_dtype: torch.dtype | None) -> torch.dtype:
    """Half precision only where the network was built for it, when enabled, and on a GPU (fp16 or bf16)
    or in bf16 on a CPU (``devices.half_dtype`` allows that only where the CPU has native bf16)."""
    on = x_device.type == "cuda" or (x_device.type == "cpu" and half_dtype == torch.bfloat16)
    if use_fp16 and half_dtype is not None and not force_fp32 and on:
        return half_dtype
    return torch.float32


class FullyConnectedLayer(nn.Module):
    """Dense layer with equalized learning rate: ``act(x @ (W * lr/sqrt(in))^T + b * lr)``."""

    def __init__(
        self,
        in_features: int,                  # input width
        out_features: int,                 # output width
        bias: bool = True,                 # add a bias?
        activation: str = "linear",        # activation after the bias
        lr_multiplier: float = 1.0,        # learning-rate multiplier
        weight_init: float = 1.0,          # std of the effective initial weights
        bias_init: float | list | np.ndarray = 0.0,  # initial effective bias (scalar or vector)
    ):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.activation = activation
        self.weight = nn.Parameter(torch.randn([out_features, in_features]) * (weight_init / lr_multiplier))
        if bias:
            init = np.broadcast_to(np.asarray(bias_init, dtype=np.float32), [out_features])
            self.bias = nn.Parameter(torch.from_numpy(init / lr_multiplier))
        else:
            self.bias = None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.to(x.dtype) * self.weight_gain
        b = self.bias
        if b is not None:
            b = b.to(x.dtype)
            if self.bias_gain != 1:
                b = b * self.bias_gain
        if self.activation == "linear" and b is not None:
            return torch.addmm(b.unsqueeze(0), x, w.t())
        return ops.bias_act(x.matmul(w.t()), b, act=self.activation)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, activation={self.activation}"


class Conv2dLayer(nn.Module):
    """Convolution with equalized learning rate, optional FIR up/down-sampling, bias, activation, clamp."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        bias: bool = True,
        activation: str = "linear",
        up: int = 1,                       # upsampling factor
        down: int = 1,                     # downsampling factor
        resample_filter=(1, 3, 3, 1),      # FIR filter for resampling
        conv_clamp: float | None = None,   # clamp the output to +-conv_clamp
        channels_last: bool = False,       # keep weights channels-last
        trainable: bool = True,            # False: weights are buffers (frozen discriminator layers)
    ):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.activation = activation
        self.up = up
        self.down = down
        self.conv_clamp = conv_clamp
        self.register_buffer("resample_filter", ops.setup_filter(resample_filter))
        self.padding = kernel_size // 2
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)
        self.act_gain = ops.activation_gain(activation)
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        weight = torch.randn([out_channels, in_channels, kernel_size, kernel_size]).to(memory_format=memory_format)
        bias_t = torch.zeros([out_channels]) if bias else None
        if trainable:
            self.weight = nn.Parameter(weight)
            self.bias = nn.Parameter(bias_t) if bias_t is not None else None
        else:
            self.register_buffer("weight", weight)
            self.register_buffer("bias", bias_t)

    def forward(self, x: torch.Tensor, gain: float = 1.0, impl: str = "fast") -> torch.Tensor:
        w = self.weight * self.weight_gain
        b = self.bias.to(x.dtype) if self.bias is not None else None
        x = ops.conv2d_resample(x, w.to(x.dtype), f=self.resample_filter, up=self.up, down=self.down,
                                padding=self.padding, flip_weight=(self.up == 1), impl=impl)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return ops.bias_act(x, b, act=self.activation, gain=self.act_gain * gain, clamp=clamp)

    def extra_repr(self) -> str:
        return (f"in_channels={self.in_channels}, out_channels={self.out_channels}, "
                f"activation={self.activation}, up={self.up}, down={self.down}")


class MappingNetwork(nn.Module):
    """z (and label c) -> w, broadcast to ``num_ws`` layers, with truncation toward ``w_avg``."""

    def __init__(
        self,
        z_dim: int,                        # latent z width (0: none)
        c_dim: int,                        # label width (0: unconditional)
        w_dim: int,                        # output w width
        num_ws: int | None,                # number of ws to broadcast to (None: return [N, w_dim])
        config: MappingConfig = MappingConfig(),
        weight_init: float = 1.0,
    ):
        super().__init__()
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.num_ws = num_ws
        self.num_layers = config.num_layers
        self.w_avg_beta = config.w_avg_beta
        embed_features = config.embed_features if config.embed_features is not None else w_dim
        layer_features = config.layer_features if config.layer_features is not None else w_dim
        if c_dim == 0:
            embed_features = 0
        features = [z_dim + embed_features] + [layer_features] * (config.num_layers - 1) + [w_dim]
        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed_features, weight_init=weight_init)
        for i in range(config.num_layers):
            layer = FullyConnectedLayer(features[i], features[i + 1], activation=config.activation,
                                        lr_multiplier=config.lr_multiplier, weight_init=weight_init)
            setattr(self, f"fc{i}", layer)
        if num_ws is not None and config.w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(
        self,
        z: torch.Tensor | None,
        c: torch.Tensor | None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        update_emas: bool = False,
    ) -> torch.Tensor:
        x = None
        if self.z_dim > 0:
            if z is None or z.ndim != 2 or z.shape[1] != self.z_dim:
                raise ValueError(f"z must have shape [N, {self.z_dim}], got {None if z is None else tuple(z.shape)}")
            x = ops.normalize_2nd_moment(z.to(torch.float32))
        if self.c_dim > 0:
            if c is None or c.ndim != 2 or c.shape[1] != self.c_dim:
                raise ValueError(f"c must have shape [N, {self.c_dim}] (one-hot class labels), "
                                 f"got {None if c is None else tuple(c.shape)}")
            y = ops.normalize_2nd_moment(self.embed(c.to(torch.float32)))
            x = torch.cat([x, y], dim=1) if x is not None else y
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        if update_emas and hasattr(self, "w_avg"):
            self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        if self.num_ws is None:
            return x
        x = x.unsqueeze(1).repeat([1, self.num_ws, 1])
        if truncation_psi != 1:
            x = truncate(x, self.w_avg, truncation_psi, truncation_cutoff)
        return x


def truncate(ws: torch.Tensor, w_avg: torch.Tensor, psi: float, cutoff: int | None = None) -> torch.Tensor:
    """Truncation trick: pull ``ws[:, :cutoff]`` toward ``w_avg`` by ``psi`` (all layers if cutoff is None)."""
    ws = ws.clone()
    if cutoff is None:
        return w_avg.lerp(ws, psi)
    ws[:, :cutoff] = w_avg.lerp(ws[:, :cutoff], psi)
    return ws
