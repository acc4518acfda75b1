"""TensorFlow-layout StyleGAN networks with known weights, and an independent TF-style forward pass.

The builders return :class:`~support.official_pickle.TFNetwork` trees whose variable names and
shapes are those of the format notes (§4.3, §4.4, §4.6): conv weights ``[kh, kw, in, out]``, dense
``[in, out]``, modulation biases without their ``+1``, noise inputs ``noise{k}`` of ``[1, 1, r, r]``.

The reference forward passes compute what NVIDIA's TensorFlow graphs compute, written from those
formulas directly on the TF-layout arrays, in float64, with plain ``torch.nn.functional`` calls:
equalized-lr gains applied the TF way (inside the weight), StyleGAN2 up-convolutions as TF runs them
(transposed convolution of the spatially flipped kernel, then the FIR filter), StyleGAN1's fused
up/down convolutions (the 2x2 box-summed 4x4 kernel) for resolutions >= ``fused_threshold``.
They never call ``stylegan.networks`` — that is what they check.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from support.official_pickle import TFNetwork

SQRT2 = math.sqrt(2)
FIR = np.outer([1, 3, 3, 1], [1, 3, 3, 1]) / 64.0
BLUR = np.outer([1, 2, 1], [1, 2, 1]) / 16.0


def nf(stage: int, fmap_base: int, fmap_max: int) -> int:
    return min(int(fmap_base / 2.0**stage), fmap_max)


class _Builder:
    def __init__(self, seed: int):
        self.rng = np.random.RandomState(seed)

    def __call__(self, *shape, scale: float = 1.0, offset: float = 0.0) -> np.ndarray:
        return (self.rng.standard_normal(shape) * scale + offset).astype(np.float32)


def flat(net: TFNetwork, prefix: str = "") -> dict[str, np.ndarray]:
    out = {prefix + n: np.asarray(v, dtype=np.float64) for n, v in net.variables}
    for name, comp in net.components.items():
        out.update(flat(comp, f"{prefix}{name}/"))
    return out


# ----------------------------------------------------------------------------------------------
# Builders.

def sg2_generator(seed: int = 0, resolution: int = 16, z_dim: int = 8, w_dim: int = 8, c_dim: int = 0,
                  mapping_layers: int = 2, fmap_base: int = 64, fmap_max: int = 16, architecture: str = "skip",
                  progressive: bool = False, conv_clamp: float | None = None, num_fp16_res: int = 0,
                  version: int = 4, extra_kwargs: dict | None = None) -> TFNetwork:
    """StyleGAN2 (TF) / StyleGAN2-ADA (TF, with ``c_dim`` > 0: LabelEmbed) generator."""
    r = _Builder(seed)
    log2 = int(math.log2(resolution))
    ch = {2**k: nf(k - 1, fmap_base, fmap_max) for k in range(2, log2 + 1)}
    architecture = "orig" if progressive else architecture
    mapping = []
    if c_dim:
        mapping += [("LabelEmbed/weight", r(c_dim, w_dim)), ("LabelEmbed/bias", r(w_dim, scale=0.1))]
    fan_in = z_dim + (w_dim if c_dim else 0)
    for i in range(mapping_layers):
        mapping += [(f"Dense{i}/weight", r(fan_in, w_dim, scale=100.0)), (f"Dense{i}/bias", r(w_dim, scale=10.0))]
        fan_in = w_dim
    syn = [(f"noise{k}", r(1, 1, 2 ** ((k + 5) // 2), 2 ** ((k + 5) // 2))) for k in range(2 * log2 - 3)]

    def layer(scope, cin, cout, k=3, noise=True):
        out = [(f"{scope}/weight", r(k, k, cin, cout)), (f"{scope}/mod_weight", r(w_dim, cin)),
               (f"{scope}/mod_bias", r(cin, scale=0.2)), (f"{scope}/bias", r(cout, scale=0.2))]
        if noise:
            out.append((f"{scope}/noise_strength", np.float32(r.rng.uniform(0.1, 0.5))))
        return out

    syn += [("4x4/Const/const", r(1, ch[4], 4, 4))] + layer("4x4/Conv", ch[4], ch[4])
    for k in range(3, log2 + 1):
        res = 2**k
        syn += layer(f"{res}x{res}/Conv0_up", ch[res // 2], ch[res]) + layer(f"{res}x{res}/Conv1", ch[res], ch[res])
        if architecture == "resnet":
            syn.append((f"{res}x{res}/Skip/weight", r(1, 1, ch[res // 2], ch[res])))
    if progressive:
        syn += sum((layer(f"ToRGB_lod{log2 - k}", ch[2**k], 3, k=1, noise=False) for k in range(2, log2 + 1)), [])
        syn.append(("lod", np.float32(0)))
    else:
        rgb_res = [2**k for k in range(2, log2 + 1)] if architecture == "skip" else [resolution]
        syn += sum((layer(f"{q}x{q}/ToRGB", ch[q], 3, k=1, noise=False) for q in rgb_res), [])
    kwargs = {"num_channels": 3, "resolution": resolution, "label_size": c_dim, "fmap_base": fmap_base,
              "fmap_max": fmap_max, "mapping_layers": mapping_layers, "latent_size": z_dim, "dlatent_size": w_dim,
              "truncation_psi": 0.5}
    if not progressive:
        kwargs["architecture"] = architecture
    if conv_clamp is not None:
        kwargs["conv_clamp"] = conv_clamp
    if num_fp16_res:
        kwargs["num_fp16_res"] = num_fp16_res
    kwargs.update(extra_kwargs or {})
    top = [("dlatent_avg", r(w_dim, scale=0.5))] + ([("lod", np.float32(0))] if progressive else [])
    return TFNetwork("G", static_kwargs=kwargs, variables=top, version=version, components={
        "mapping": TFNetwork("G_mapping", variables=mapping, version=version),
        "synthesis": TFNetwork("G_synthesis", variables=syn, version=version)})


def sg2_discriminator(seed: int = 1, resolution: int = 16, c_dim: int = 0, fmap_base: int = 64, fmap_max: int = 16,
                      architecture: str = "resnet", progressive: bool = False, mbstd_group_size: int = 4,
                      mapping_layers: int = 1, conv_clamp: float | None = None, version: int = 4) -> TFNetwork:
    r = _Builder(seed)
    log2 = int(math.log2(resolution))
    ch = {2**k: nf(k - 1, fmap_base, fmap_max) for k in range(1, log2 + 1)}
    architecture = "orig" if progressive else architecture
    v = []

    def conv(scope, cin, cout, k=3, bias=True):
        return [(f"{scope}/weight", r(k, k, cin, cout))] + ([(f"{scope}/bias", r(cout, scale=0.2))] if bias else [])

    if progressive:
        v += sum((conv(f"FromRGB_lod{log2 - k}", 3, ch[2**k], k=1) for k in range(2, log2 + 1)), [])
        v.append(("lod", np.float32(0)))
    elif architecture == "skip":
        v += sum((conv(f"{2**k}x{2**k}/FromRGB", 3, ch[2**k], k=1) for k in range(2, log2 + 1)), [])
    else:
        v += conv(f"{resolution}x{resolution}/FromRGB", 3, ch[resolution], k=1)
    for k in range(log2, 2, -1):
        res = 2**k
        v += conv(f"{res}x{res}/Conv0", ch[res], ch[res]) + conv(f"{res}x{res}/Conv1_down", ch[res], ch[res // 2])
        if architecture == "resnet":
            v += conv(f"{res}x{res}/Skip", ch[res], ch[res // 2], k=1, bias=False)
    mb = 1 if mbstd_group_size > 1 else 0
    v += conv("4x4/Conv", ch[4] + mb, ch[4])
    v += [("4x4/Dense0/weight", r(ch[4] * 16, ch[2])), ("4x4/Dense0/bias", r(ch[2], scale=0.2))]
    cmap = ch[4]
    if c_dim:
        v += [("LabelEmbed/weight", r(c_dim, cmap)), ("LabelEmbed/bias", r(cmap, scale=0.2))]
        for i in range(mapping_layers):
            v += [(f"Mapping{i}/weight", r(cmap, cmap, scale=10.0)), (f"Mapping{i}/bias", r(cmap, scale=2.0))]
    v += [("Output/weight", r(ch[2], cmap if c_dim else 1)), ("Output/bias", r(cmap if c_dim else 1, scale=0.2))]
    kwargs = {"num_channels": 3, "resolution": resolution, "label_size": c_dim, "fmap_base": fmap_base,
              "fmap_max": fmap_max, "mbstd_group_size": mbstd_group_size}
    if c_dim:
        kwargs.update(mapping_layers=mapping_layers, mapping_lrmul=0.1)
    if not progressive:
        kwargs["architecture"] = architecture
    if conv_clamp is not None:
        kwargs["conv_clamp"] = conv_clamp
    return TFNetwork("D", static_kwargs=kwargs, variables=v, version=version)


def sg1_generator(seed: int = 0, resolution: int = 16, z_dim: int = 8, w_dim: int = 8, mapping_layers: int = 2,
                  fmap_base: int = 32, fmap_max: int = 16, version: int = 3, extra_kwargs: dict | None = None
                  ) -> TFNetwork:
    """StyleGAN1 ``G_style`` (mapping + progressive synthesis, fully grown: lod = 0)."""
    r = _Builder(seed)
    log2 = int(math.log2(resolution))
    ch = {2**k: nf(k - 1, fmap_base, fmap_max) for k in range(2, log2 + 1)}
    mapping, fan_in = [], z_dim
    for i in range(mapping_layers):
        mapping += [(f"Dense{i}/weight", r(fan_in, w_dim, scale=100.0)), (f"Dense{i}/bias", r(w_dim, scale=10.0))]
        fan_in = w_dim
    syn = [("lod", np.float32(0))]
    syn += [(f"noise{i}", r(1, 1, 2 ** (i // 2 + 2), 2 ** (i // 2 + 2))) for i in range(2 * log2 - 2)]

    def epilogue(scope, c):
        return [(f"{scope}/Noise/weight", r(c, scale=0.3)), (f"{scope}/bias", r(c, scale=0.2)),
                (f"{scope}/StyleMod/weight", r(w_dim, 2 * c)), (f"{scope}/StyleMod/bias", r(2 * c, scale=0.2))]

    syn += [("4x4/Const/const", r(1, ch[4], 4, 4, scale=0.5, offset=1.0))] + epilogue("4x4/Const", ch[4])
    syn += [("4x4/Conv/weight", r(3, 3, ch[4], ch[4]))] + epilogue("4x4/Conv", ch[4])
    for k in range(3, log2 + 1):
        res = 2**k
        syn += [(f"{res}x{res}/Conv0_up/weight", r(3, 3, ch[res // 2], ch[res]))] + epilogue(f"{res}x{res}/Conv0_up",
                                                                                           ch[res])
        syn += [(f"{res}x{res}/Conv1/weight", r(3, 3, ch[res], ch[res]))] + epilogue(f"{res}x{res}/Conv1", ch[res])
    for k in range(2, log2 + 1):
        syn += [(f"ToRGB_lod{log2 - k}/weight", r(1, 1, ch[2**k], 3)), (f"ToRGB_lod{log2 - k}/bias", r(3, scale=0.1))]
    kwargs = {"num_channels": 3, "resolution": resolution, "label_size": 0, "fmap_base": fmap_base,
              "fmap_max": fmap_max, "mapping_layers": mapping_layers, "latent_size": z_dim, "dlatent_size": w_dim,
              "truncation_psi": 0.7, "truncation_cutoff": 8, "style_mixing_prob": 0.9, "structure": "linear",
              **(extra_kwargs or {})}
    top = [("lod", np.float32(0)), ("dlatent_avg", r(w_dim, scale=0.5))]
    return TFNetwork("G", static_kwargs=kwargs, variables=top, version=version, components={
        "mapping": TFNetwork("G_mapping", variables=mapping, version=version),
        "synthesis": TFNetwork("G_synthesis", variables=syn, version=version)})


def sg1_discriminator(seed: int = 1, resolution: int = 16, c_dim: int = 0, fmap_base: int = 32, fmap_max: int = 16,
                      mbstd_group_size: int = 4, version: int = 3) -> TFNetwork:
    r = _Builder(seed)
    log2 = int(math.log2(resolution))
    ch = {2**k: nf(k - 1, fmap_base, fmap_max) for k in range(1, log2 + 1)}
    v = [("lod", np.float32(0))]
    for k in range(2, log2 + 1):
        v += [(f"FromRGB_lod{log2 - k}/weight", r(1, 1, 3, ch[2**k])), (f"FromRGB_lod{log2 - k}/bias", r(ch[2**k]))]
    for k in range(log2, 2, -1):
        res = 2**k
        v += [(f"{res}x{res}/Conv0/weight", r(3, 3, ch[res], ch[res])), (f"{res}x{res}/Conv0/bias", r(ch[res]))]
        v += [(f"{res}x{res}/Conv1_down/weight", r(3, 3, ch[res], ch[res // 2])),
              (f"{res}x{res}/Conv1_down/bias", r(ch[res // 2]))]
    mb = 1 if mbstd_group_size > 1 else 0
    v += [("4x4/Conv/weight", r(3, 3, ch[4] + mb, ch[4])), ("4x4/Conv/bias", r(ch[4]))]
    v += [("4x4/Dense0/weight", r(ch[4] * 16, ch[2])), ("4x4/Dense0/bias", r(ch[2]))]
    v += [("4x4/Dense1/weight", r(ch[2], max(c_dim, 1))), ("4x4/Dense1/bias", r(max(c_dim, 1)))]
    kwargs = {"num_channels": 3, "resolution": resolution, "label_size": c_dim, "fmap_base": fmap_base,
              "fmap_max": fmap_max, "mbstd_group_size": mbstd_group_size, "structure": "linear"}
    return TFNetwork("D", static_kwargs=kwargs, variables=v, version=version)


# ----------------------------------------------------------------------------------------------
# TF-style math (float64, NCHW, TF weight layouts).

def _t(a) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, dtype=np.float64))


def _w(w_tf) -> torch.Tensor:
    """[kh, kw, in, out] -> torch conv layout [out, in, kh, kw]."""
    return _t(w_tf).permute(3, 2, 0, 1)


def lrelu(x, gain: float = 1.0):
    return F.leaky_relu(x, 0.2) * gain


def pixel_norm(x):
    return x * (x.square().mean(dim=1, keepdim=True) + 1e-8).rsqrt()


def dense(x, w, b=None, gain=1.0, lrmul=1.0):
    w = _t(w)
    y = x @ (w * (gain / math.sqrt(w.shape[0]) * lrmul))
    return y if b is None else y + _t(b) * lrmul


def conv_same(x, w, gain=1.0):
    w = _t(w)
    return F.conv2d(x, _w(w) * (gain / math.sqrt(w.shape[0] * w.shape[1] * w.shape[2])), padding=w.shape[0] // 2)


def fir(x, k, pad0, pad1, up=1, down=1, gain=1.0):
    """Zero-insert by ``up``, pad, true convolution with ``k``, keep every ``down``-th sample."""
    n, c, h, w = x.shape
    if up > 1:
        z = x.new_zeros(n, c, h * up, w * up)
        z[:, :, ::up, ::up] = x
        x = z
    x = F.pad(x, [pad0, pad1, pad0, pad1])
    k = _t(k).flip([0, 1]) * gain
    x = F.conv2d(x, k[None, None].repeat(c, 1, 1, 1), groups=c)
    return x[:, :, ::down, ::down]


def minibatch_std(x, group):
    n, c, h, w = x.shape
    g = min(group, n)
    y = x.reshape(g, -1, 1, c, h, w)
    y = (y - y.mean(0)).square().mean(0)
    y = (y + 1e-8).sqrt().mean(dim=[2, 3, 4])            # [N/G, 1]
    y = y.reshape(-1, 1, 1, 1).repeat(g, 1, h, w)
    return torch.cat([x, y], dim=1)


def _modconv(x, w_tf, style, demod=True, up=False, gain=1.0):
    """TF ``modulated_conv2d_layer`` for one sample: scale the gained weight, demodulate, convolve."""
    w = _t(w_tf)
    kh, kw, cin, cout = w.shape
    ww = w * (gain / math.sqrt(kh * kw * cin)) * style.reshape(1, 1, cin, 1)
    if demod:
        ww = ww * (ww.square().sum(dim=[0, 1, 2]) + 1e-8).rsqrt()
    if not up:
        return F.conv2d(x, ww.permute(3, 2, 0, 1), padding=kh // 2)
    y = F.conv_transpose2d(x, ww.flip([0, 1]).permute(2, 3, 0, 1), stride=2)
    return fir(y, FIR, 1, 1, gain=4)


def sg2_generator_forward(G: TFNetwork, z: np.ndarray, c: np.ndarray | None = None, psi: float = 1.0) -> np.ndarray:
    v = flat(G)
    kw = G.static_kwargs
    clamp = kw.get("conv_clamp")
    lrmul = kw.get("mapping_lrmul", 0.01)
    x = pixel_norm(_t(z))
    if "mapping/LabelEmbed/weight" in v:
        y = pixel_norm(dense(_t(c), v["mapping/LabelEmbed/weight"], v["mapping/LabelEmbed/bias"]))
        x = torch.cat([x, y], dim=1)
    i = 0
    while f"mapping/Dense{i}/weight" in v:
        x = lrelu(dense(x, v[f"mapping/Dense{i}/weight"], v[f"mapping/Dense{i}/bias"], lrmul=lrmul), SQRT2)
        i += 1
    avg = _t(v["dlatent_avg"])
    w = avg + (x - avg) * psi
    R = kw["resolution"]
    log2 = int(math.log2(R))
    arch = kw.get("architecture", "orig")
    progressive = "synthesis/ToRGB_lod0/weight" in v
    images = []
    for n in range(w.shape[0]):
        wn = w[n]

        def layer(x, scope, noise_idx, up=False):
            s = dense(wn[None], v[f"{scope}/mod_weight"], v[f"{scope}/mod_bias"])[0] + 1
            x = _modconv(x, v[f"{scope}/weight"], s, up=up)
            x = x + _t(v[f"synthesis/noise{noise_idx}"]) * float(v[f"{scope}/noise_strength"])
            x = lrelu(x + _t(v[f"{scope}/bias"]).reshape(1, -1, 1, 1), SQRT2)
            return x.clamp(-clamp, clamp) if clamp is not None else x

        def torgb(x, scope):
            s = dense(wn[None], v[f"{scope}/mod_weight"], v[f"{scope}/mod_bias"])[0] + 1
            t = _modconv(x, v[f"{scope}/weight"], s, demod=False) + _t(v[f"{scope}/bias"]).reshape(1, -1, 1, 1)
            return t.clamp(-clamp, clamp) if clamp is not None else t

        x = _t(v["synthesis/4x4/Const/const"])
        x = layer(x, "synthesis/4x4/Conv", 0)
        img = torgb(x, "synthesis/4x4/ToRGB") if arch == "skip" and not progressive else None
        for k in range(3, log2 + 1):
            s = f"synthesis/{2**k}x{2**k}"
            t = x
            x = layer(x, f"{s}/Conv0_up", 2 * k - 5, up=True)
            x = layer(x, f"{s}/Conv1", 2 * k - 4)
            if arch == "resnet":
                skip = _t(v[f"{s}/Skip/weight"]) / math.sqrt(t.shape[1])           # 1x1 TF up-conv
                t = fir(F.conv_transpose2d(t, skip.permute(2, 3, 0, 1), stride=2), FIR, 2, 2, gain=4)
                x = (x + t) / SQRT2
            if arch == "skip" and not progressive:
                img = fir(img, FIR, 2, 1, up=2, gain=4) + torgb(x, f"{s}/ToRGB")
        if progressive:
            img = torgb(x, "synthesis/ToRGB_lod0")
        elif arch != "skip":
            img = torgb(x, f"synthesis/{R}x{R}/ToRGB")
        images.append(img)
    return torch.cat(images).numpy()


def sg2_discriminator_forward(D: TFNetwork, img: np.ndarray, c: np.ndarray | None = None) -> np.ndarray:
    v = flat(D)
    kw = D.static_kwargs
    clamp = kw.get("conv_clamp")
    R = kw["resolution"]
    log2 = int(math.log2(R))
    arch = kw.get("architecture", "orig")
    progressive = "FromRGB_lod0/weight" in v

    def conv(x, scope, down=False, act=True):
        w = v[f"{scope}/weight"]
        if down:
            k = w.shape[0]
            p = 2 + (k - 1)
            x = fir(x, FIR, (p + 1) // 2, p // 2)
            x = F.conv2d(x, _w(w) / math.sqrt(np.prod(w.shape[:3])), stride=2)
        else:
            x = conv_same(x, w)
        if f"{scope}/bias" in v:
            x = x + _t(v[f"{scope}/bias"]).reshape(1, -1, 1, 1)
        if act:
            x = lrelu(x, SQRT2)
            x = x.clamp(-clamp, clamp) if clamp is not None else x
        return x

    y = _t(img)
    x = conv(y, "FromRGB_lod0" if progressive else f"{R}x{R}/FromRGB")
    for k in range(log2, 2, -1):
        s = f"{2**k}x{2**k}"
        if arch == "skip" and k < log2:
            x = x + conv(y, f"{s}/FromRGB")
        t = x
        x = conv(conv(x, f"{s}/Conv0"), f"{s}/Conv1_down", down=True)
        if arch == "resnet":
            x = (x + conv(t, f"{s}/Skip", down=True, act=False)) / SQRT2
        if arch == "skip":
            y = fir(y, FIR, 1, 1, down=2)
    if arch == "skip":
        x = x + conv(y, "4x4/FromRGB")
    if kw.get("mbstd_group_size", 4) > 1:
        x = minibatch_std(x, kw.get("mbstd_group_size", 4))
    x = conv(x, "4x4/Conv")
    x = lrelu(dense(x.flatten(1), v["4x4/Dense0/weight"], v["4x4/Dense0/bias"]), SQRT2)
    x = dense(x, v["Output/weight"], v["Output/bias"])
    if kw.get("label_size", 0):
        cmap = pixel_norm(dense(_t(c), v["LabelEmbed/weight"], v["LabelEmbed/bias"]))
        i = 0
        while f"Mapping{i}/weight" in v:
            cmap = lrelu(dense(cmap, v[f"Mapping{i}/weight"], v[f"Mapping{i}/bias"], lrmul=kw["mapping_lrmul"]),
                         SQRT2)
            i += 1
        x = (x * cmap).sum(dim=1, keepdim=True) / math.sqrt(cmap.shape[1])
    return x.numpy()


def instance_norm(x):
    x = x - x.mean(dim=[2, 3], keepdim=True)
    return x * (x.square().mean(dim=[2, 3], keepdim=True) + 1e-8).rsqrt()


def _fused_kernel(w_tf, gain, scale=1.0):
    """StyleGAN1's fused resampling kernel: gained 3x3 padded to 5x5, summed over the four 2x2 shifts."""
    w = _t(w_tf) * (gain / math.sqrt(np.prod(w_tf.shape[:3])))
    w = F.pad(w.permute(2, 3, 0, 1), [1, 1, 1, 1]).permute(2, 3, 0, 1)
    return (w[1:, 1:] + w[:-1, 1:] + w[1:, :-1] + w[:-1, :-1]) * scale


def sg1_generator_forward(G: TFNetwork, z: np.ndarray, psi: float = 1.0, cutoff: int | None = None,
                          fused_threshold: int = 128) -> np.ndarray:
    """``Gs.run(z, None, truncation_psi=psi, truncation_cutoff=cutoff, randomize_noise=False)``."""
    v = flat(G)
    kw = G.static_kwargs
    x = pixel_norm(_t(z))
    i = 0
    while f"mapping/Dense{i}/weight" in v:
        x = lrelu(dense(x, v[f"mapping/Dense{i}/weight"], v[f"mapping/Dense{i}/bias"], gain=SQRT2, lrmul=0.01))
        i += 1
    R = kw["resolution"]
    log2 = int(math.log2(R))
    num_layers = 2 * log2 - 2
    w = x[:, None].repeat(1, num_layers, 1)
    avg = _t(v["dlatent_avg"])
    coefs = torch.ones(num_layers, dtype=torch.float64)
    coefs[: num_layers if cutoff is None else cutoff] = psi
    w = avg + (w - avg) * coefs[None, :, None]

    def epilogue(x, scope, idx):
        x = x + _t(v[f"synthesis/noise{idx}"]) * _t(v[f"{scope}/Noise/weight"]).reshape(1, -1, 1, 1)
        x = lrelu(x + _t(v[f"{scope}/bias"]).reshape(1, -1, 1, 1))
        x = instance_norm(x)
        style = dense(w[:, idx], v[f"{scope}/StyleMod/weight"], v[f"{scope}/StyleMod/bias"])
        style = style.reshape(x.shape[0], 2, x.shape[1], 1, 1)
        return x * (style[:, 0] + 1) + style[:, 1]

    def blur(x):
        return F.conv2d(F.pad(x, [1, 1, 1, 1]), _t(BLUR)[None, None].repeat(x.shape[1], 1, 1, 1), groups=x.shape[1])

    x = _t(v["synthesis/4x4/Const/const"]).repeat(z.shape[0], 1, 1, 1)
    x = epilogue(x, "synthesis/4x4/Const", 0)
    x = epilogue(conv_same(x, v["synthesis/4x4/Conv/weight"], SQRT2), "synthesis/4x4/Conv", 1)
    for k in range(3, log2 + 1):
        s = f"synthesis/{2**k}x{2**k}"
        w_up = v[f"{s}/Conv0_up/weight"]
        if 2**k >= fused_threshold:
            kern = _fused_kernel(w_up, SQRT2)                              # [4, 4, in, out]
            x = F.conv_transpose2d(x, kern.permute(2, 3, 0, 1), stride=2, padding=1)
        else:
            x = conv_same(x.repeat_interleave(2, 2).repeat_interleave(2, 3), w_up, SQRT2)
        x = epilogue(blur(x), f"{s}/Conv0_up", 2 * k - 4)
        x = epilogue(conv_same(x, v[f"{s}/Conv1/weight"], SQRT2), f"{s}/Conv1", 2 * k - 3)
    img = conv_same(x, v["synthesis/ToRGB_lod0/weight"]) + _t(v["synthesis/ToRGB_lod0/bias"]).reshape(1, -1, 1, 1)
    return img.numpy()


def sg1_discriminator_forward(D: TFNetwork, img: np.ndarray, c: np.ndarray | None = None,
                              fused_threshold: int = 128) -> np.ndarray:
    v = flat(D)
    kw = D.static_kwargs
    R = kw["resolution"]
    log2 = int(math.log2(R))

    def act_conv(x, scope, gain=SQRT2):
        return lrelu(conv_same(x, v[f"{scope}/weight"], gain) + _t(v[f"{scope}/bias"]).reshape(1, -1, 1, 1))

    x = act_conv(_t(img), "FromRGB_lod0")
    for k in range(log2, 2, -1):
        s = f"{2**k}x{2**k}"
        x = act_conv(x, f"{s}/Conv0")
        x = F.conv2d(F.pad(x, [1, 1, 1, 1]), _t(BLUR)[None, None].repeat(x.shape[1], 1, 1, 1), groups=x.shape[1])
        w = v[f"{s}/Conv1_down/weight"]
        if 2**k >= fused_threshold:
            x = F.conv2d(x, _fused_kernel(w, SQRT2, 0.25).permute(3, 2, 0, 1), stride=2, padding=1)
        else:
            x = F.avg_pool2d(conv_same(x, w, SQRT2), 2)
        x = lrelu(x + _t(v[f"{s}/Conv1_down/bias"]).reshape(1, -1, 1, 1))
    if kw.get("mbstd_group_size", 4) > 1:
        x = minibatch_std(x, kw.get("mbstd_group_size", 4))
    x = act_conv(x, "4x4/Conv")
    x = lrelu(dense(x.flatten(1), v["4x4/Dense0/weight"], v["4x4/Dense0/bias"], gain=SQRT2))
    x = dense(x, v["4x4/Dense1/weight"], v["4x4/Dense1/bias"])
    if kw.get("label_size", 0):
        x = (x * _t(c)).sum(dim=1, keepdim=True)
    return x.numpy()
