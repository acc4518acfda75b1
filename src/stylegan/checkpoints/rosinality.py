"""rosinality/stylegan2-pytorch checkpoints (``.pt``) <-> our StyleGAN2 networks.

Read with :func:`.torch_save.read_torch_save`, our restricted reader of ``torch.save`` files (no code
runs; nesting and sizes are bounded; ``argparse.Namespace`` — the ``args`` entry of training
checkpoints — comes back as a dict). Layout of a checkpoint:
``{'g_ema': state_dict, 'g': ..., 'd': ..., 'latent_avg': [w_dim], 'args': Namespace, 'g_optim':
..., 'd_optim': ...}``; converted FFHQ/car/cat files hold ``g_ema`` and ``latent_avg`` only.

Name mapping (generator; ``k`` counts blocks from 8x8, ``i`` mapping layers):

============================================  ===========================================
rosinality                                    ours (NVIDIA's names)
============================================  ===========================================
``style.{i+1}.weight`` / ``.bias``            ``mapping.fc{i}.weight`` / ``.bias``
``latent_avg``                                ``mapping.w_avg``
``input.input`` ``[1, C, 4, 4]``              ``synthesis.b4.const`` ``[C, 4, 4]``
``conv1.conv.weight`` ``[1, O, I, 3, 3]``     ``synthesis.b4.conv1.weight`` ``[O, I, 3, 3]``
``conv1.conv.modulation.{weight,bias}``       ``synthesis.b4.conv1.affine.{weight,bias}``
``conv1.noise.weight`` ``[1]``                ``synthesis.b4.conv1.noise_strength`` ``[]``
``conv1.activate.bias``                       ``synthesis.b4.conv1.bias``
``to_rgb1.conv.*``, ``to_rgb1.bias``          ``synthesis.b4.torgb.*``, ``.bias`` ``[3]``
``convs.{2k}`` / ``convs.{2k+1}``             ``synthesis.b{8·2^k}.conv0`` / ``.conv1``
``to_rgbs.{k}``                               ``synthesis.b{8·2^k}.torgb``
``noises.noise_{j}`` ``[1, 1, r, r]``         ``…conv*.noise_const`` (j = 0: b4.conv1; 2k+1, 2k+2)
D ``convs.0.{0.weight,1.bias}``               ``b{R}.fromrgb.{weight,bias}``
D ``convs.{k}.conv1``, ``conv2``, ``skip``    ``b{R/2^(k-1)}.conv0``, ``conv1``, ``skip``
D ``final_conv``, ``final_linear.{0,1}``      ``b4.conv``, ``b4.fc``, ``b4.out``
============================================  ===========================================

The math is the same as NVIDIA's (the up-sampling conv is a transposed convolution of the
unflipped kernel followed by the [1,3,3,1] blur, i.e. NVIDIA's ``flip_weight=False`` path), so
weights copy unchanged. The one difference: rosinality demodulates the weight *after* its
``1/sqrt(fan_in)`` scale, which moves the 1e-8 epsilon by that factor (relative effect < 1e-7).
rosinality has no conv clamp and no conditioning; it always uses the ``skip`` generator and
``resnet`` discriminator.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from ..errors import CheckpointError, UserInputError
from ..files import atomic_write
from ..networks import (Discriminator, DiscriminatorConfig, Generator, GeneratorConfig, MappingConfig,
                        StyleGAN2SynthesisConfig)
from .architecture import NetworkBudget, as_float, build_network, channel_base_max
from .torch_save import read_torch_save
from .types import Checkpoint

W_AVG_SAMPLES = 10000
W_AVG_SEED = 0


def read_rosinality(path: str | Path) -> dict:
    """A rosinality checkpoint as inert data (:func:`read_torch_save`); refuse anything else clearly."""
    path = Path(path)
    data = read_torch_save(path)
    if not isinstance(data, dict) or not any(k in data for k in ("g_ema", "g", "d")):
        keys = sorted(map(str, data))[:6] if isinstance(data, dict) else type(data).__name__
        raise CheckpointError(f"{path.name} is a torch checkpoint but not a rosinality StyleGAN2 one "
                              f"(expected 'g_ema', 'g' or 'd'; found {keys})")
    return data


def _args(data: dict) -> dict:
    a = data.get("args")
    return {k: v for k, v in a.items() if isinstance(k, str)} if isinstance(a, dict) else {}


def load_rosinality(path: str | Path, which: tuple[str, ...] = ("G_ema", "G", "D")) -> Checkpoint:
    """Load a rosinality ``.pt`` checkpoint as our networks (CPU, eval mode)."""
    path = Path(path)
    data = read_rosinality(path)
    args = _args(data)
    out = Checkpoint(source_format="rosinality", path=str(path))
    budget = NetworkBudget(path.name, path.stat().st_size)
    latent_avg = data.get("latent_avg")
    lr_mlp = as_float(args.get("lr_mlp", 0.01), f"{path.name}: args.lr_mlp", 1e-8, 1e4)
    for key, src in (("G_ema", "g_ema"), ("G", "g")):
        if key in which and isinstance(data.get(src), dict):
            G = generator_from_rosinality(data[src], latent_avg, lr_mlp=lr_mlp, what=f"{path.name}: {src}",
                                          budget=budget)
            setattr(out, key, G)
    if "D" in which and isinstance(data.get("d"), dict):
        out.D = discriminator_from_rosinality(data["d"], what=f"{path.name}: d", budget=budget)
    if out.G_ema is None and out.G is not None and "G_ema" in which:
        out.G_ema = out.G
    if latent_avg is None and (out.G_ema is not None or out.G is not None):
        out.metadata["w_avg"] = f"estimated: mean of {W_AVG_SAMPLES} mapped z (seed {W_AVG_SEED})"
    kept = {k: args[k] for k in ("size", "channel_multiplier", "n_mlp", "latent", "lr_mlp", "iter", "batch",
                                 "augment_p", "ada_target") if _shown_value(args.get(k))}
    if kept:
        out.metadata["rosinality_args"] = kept
    return out


def _shown_value(v) -> bool:
    """A value ``stylegan info`` can print: a short string, a bool, an int within 64 bits, a finite float."""
    return ((isinstance(v, str) and len(v) <= 200) or isinstance(v, bool) or (isinstance(v, int) and abs(v) < 2**63)
            or (isinstance(v, float) and v == v and abs(v) != float("inf")))


def _get(sd: dict, name: str, what: str, ndim: int | None = None) -> torch.Tensor:
    t = sd.get(name)
    if not isinstance(t, torch.Tensor) or t.is_complex():
        raise CheckpointError(f"{what}: tensor {name!r} is missing; not a rosinality StyleGAN2 state dict")
    if ndim is not None and (t.ndim != ndim or not all(t.shape)):
        raise CheckpointError(f"{what}: tensor {name!r} has shape {tuple(t.shape)}, expected {ndim} non-zero "
                              f"dimensions")
    return t.detach().to(torch.float32)


def _taps(kernel: torch.Tensor | None) -> tuple[float, ...]:
    """1-D filter taps from a stored 2-D blur kernel (an outer product)."""
    default = (1.0, 3.0, 3.0, 1.0)
    if not isinstance(kernel, torch.Tensor) or kernel.ndim != 2 or not 1 <= kernel.shape[1] <= 32:
        return default
    taps = kernel.to(torch.float64).sum(dim=0)
    if not torch.isfinite(taps).all() or abs(float(taps.sum())) < 1e-8:
        raise CheckpointError("a rosinality blur kernel does not sum to a finite, non-zero value")
    taps = taps / taps.sum()
    ref = torch.tensor(default, dtype=torch.float64) / 8
    if taps.shape == ref.shape and torch.allclose(taps, ref, atol=1e-6):
        return default
    return tuple(float(v) for v in taps)


def _layer(t: dict, sd: dict, ours: str, theirs: str, what: str, torgb: bool = False) -> None:
    w = _get(sd, f"{theirs}.conv.weight", what)
    if w.ndim != 5 or w.shape[0] != 1 or not all(w.shape):
        raise CheckpointError(f"{what}: {theirs}.conv.weight has shape {tuple(w.shape)}, expected [1, O, I, k, k]")
    t[f"{ours}.weight"] = w[0]
    t[f"{ours}.affine.weight"] = _get(sd, f"{theirs}.conv.modulation.weight", what)
    t[f"{ours}.affine.bias"] = _get(sd, f"{theirs}.conv.modulation.bias", what)
    if torgb:
        t[f"{ours}.bias"] = _get(sd, f"{theirs}.bias", what).reshape(-1)
    else:
        t[f"{ours}.bias"] = _get(sd, f"{theirs}.activate.bias", what)
        strength = _get(sd, f"{theirs}.noise.weight", what)
        if strength.numel() != 1:
            raise CheckpointError(f"{what}: {theirs}.noise.weight has shape {tuple(strength.shape)}, expected [1]")
        t[f"{ours}.noise_strength"] = strength.reshape([])


def generator_from_rosinality(sd: dict, latent_avg: torch.Tensor | None = None, lr_mlp: float = 0.01,
                              what: str = "generator", budget: NetworkBudget | None = None) -> Generator:
    """Build our StyleGAN2 generator from a rosinality ``Generator.state_dict()``."""
    n_mlp = 0
    while f"style.{n_mlp + 1}.weight" in sd and n_mlp < 64:
        n_mlp += 1
    if n_mlp == 0:
        raise CheckpointError(f"{what}: no mapping layers (style.1.weight); not a rosinality generator")
    n_blocks = _count_blocks(sd, r"to_rgbs\.(\d{1,4})\.bias", 0, what)
    R = 4 * 2**n_blocks
    z_dim = _get(sd, "style.1.weight", what, 2).shape[1]
    w_dim = _get(sd, f"style.{n_mlp}.weight", what, 2).shape[0]
    channels = {4: _get(sd, "conv1.conv.weight", what, 5).shape[1]}
    for k in range(n_blocks):
        channels[8 * 2**k] = _get(sd, f"convs.{2 * k}.conv.weight", what, 5).shape[1]
    try:
        channel_base, channel_max = channel_base_max(channels, what)
    except CheckpointError:
        raise CheckpointError(f"{what}: channel counts {channels} cannot be expressed as min(channel_base // res, "
                              f"channel_max) (channel_multiplier > 2?); this layout is not supported") from None
    img_channels = _get(sd, "to_rgb1.conv.weight", what, 5).shape[1]
    filt = _taps(sd.get("convs.0.conv.blur.kernel") if n_blocks else None)
    cfg = GeneratorConfig(
        "stylegan2", z_dim=z_dim, c_dim=0, w_dim=w_dim, img_resolution=R, img_channels=img_channels,
        mapping=MappingConfig(num_layers=n_mlp, layer_features=None, lr_multiplier=lr_mlp, w_avg_beta=0.995),
        synthesis=StyleGAN2SynthesisConfig(architecture="skip", channel_base=channel_base, channel_max=channel_max,
                                           num_fp16_res=0, conv_clamp=None, resample_filter=filt))
    t: dict[str, torch.Tensor] = {}
    for i in range(n_mlp):
        t[f"mapping.fc{i}.weight"] = _get(sd, f"style.{i + 1}.weight", what)
        t[f"mapping.fc{i}.bias"] = _get(sd, f"style.{i + 1}.bias", what)
    t["synthesis.b4.const"] = _get(sd, "input.input", what, 4)[0]
    _layer(t, sd, "synthesis.b4.conv1", "conv1", what)
    _layer(t, sd, "synthesis.b4.torgb", "to_rgb1", what, torgb=True)
    t["synthesis.b4.conv1.noise_const"] = _get(sd, "noises.noise_0", what, 4)[0, 0]
    for k in range(n_blocks):
        r = 8 * 2**k
        _layer(t, sd, f"synthesis.b{r}.conv0", f"convs.{2 * k}", what)
        _layer(t, sd, f"synthesis.b{r}.conv1", f"convs.{2 * k + 1}", what)
        _layer(t, sd, f"synthesis.b{r}.torgb", f"to_rgbs.{k}", what, torgb=True)
        t[f"synthesis.b{r}.conv0.noise_const"] = _get(sd, f"noises.noise_{2 * k + 1}", what, 4)[0, 0]
        t[f"synthesis.b{r}.conv1.noise_const"] = _get(sd, f"noises.noise_{2 * k + 2}", what, 4)[0, 0]
    if latent_avg is not None:
        if not isinstance(latent_avg, torch.Tensor) or latent_avg.numel() != w_dim or latent_avg.is_complex():
            raise CheckpointError(f"{what}: latent_avg must be a tensor of {w_dim} values")
        t["mapping.w_avg"] = latent_avg.detach().to(torch.float32).reshape(w_dim)
    else:
        t["mapping.w_avg"] = torch.zeros(w_dim)
    G = build_network(Generator, cfg, t, what, budget or NetworkBudget(what, 0), defaults=("resample_filter",))
    if latent_avg is None:
        gen = torch.Generator().manual_seed(W_AVG_SEED)
        rows = max(1, min(W_AVG_SAMPLES, (1 << 22) // z_dim))      # z in chunks of at most 16 MB
        total = torch.zeros(w_dim, dtype=torch.float64)
        with torch.no_grad():
            for start in range(0, W_AVG_SAMPLES, rows):
                z = torch.randn([min(rows, W_AVG_SAMPLES - start), z_dim], generator=gen)
                total += G.mapping(z, None)[:, 0].sum(dim=0, dtype=torch.float64)
            G.mapping.w_avg.copy_(total / W_AVG_SAMPLES)
    return G


def discriminator_from_rosinality(sd: dict, what: str = "discriminator",
                                  budget: NetworkBudget | None = None) -> Discriminator:
    """Build our (resnet) StyleGAN2 discriminator from a rosinality ``Discriminator.state_dict()``."""
    n_blocks = _count_blocks(sd, r"convs\.(\d{1,4})\.conv1\.0\.weight", 1, what)
    if n_blocks == 0:
        raise CheckpointError(f"{what}: no residual blocks (convs.1.conv1); not a rosinality discriminator")
    R = 4 * 2**n_blocks
    fromrgb = _get(sd, "convs.0.0.weight", what, 4)
    channels = {R // 2**(k - 1): _get(sd, f"convs.{k}.conv1.0.weight", what, 4).shape[0]
                for k in range(1, n_blocks + 1)}
    final = _get(sd, "final_conv.0.weight", what, 4)
    channels[4] = final.shape[0]
    try:
        channel_base, channel_max = channel_base_max(channels, what)
    except CheckpointError:
        raise CheckpointError(f"{what}: channel counts {channels} cannot be expressed as min(channel_base // res, "
                              f"channel_max); this layout is not supported") from None
    cfg = DiscriminatorConfig(c_dim=0, img_resolution=R, img_channels=fromrgb.shape[1], architecture="resnet",
                              channel_base=channel_base, channel_max=channel_max, num_fp16_res=0, conv_clamp=None,
                              resample_filter=_taps(sd.get("convs.1.conv2.0.kernel")), mbstd_group_size=4,
                              mbstd_num_channels=final.shape[1] - channels[4])
    t = {f"b{R}.fromrgb.weight": fromrgb, f"b{R}.fromrgb.bias": _get(sd, "convs.0.1.bias", what)}
    for k in range(1, n_blocks + 1):
        r = R // 2**(k - 1)
        t[f"b{r}.conv0.weight"] = _get(sd, f"convs.{k}.conv1.0.weight", what)
        t[f"b{r}.conv0.bias"] = _get(sd, f"convs.{k}.conv1.1.bias", what)
        t[f"b{r}.conv1.weight"] = _get(sd, f"convs.{k}.conv2.1.weight", what)
        t[f"b{r}.conv1.bias"] = _get(sd, f"convs.{k}.conv2.2.bias", what)
        t[f"b{r}.skip.weight"] = _get(sd, f"convs.{k}.skip.1.weight", what)
    t["b4.conv.weight"] = final
    t["b4.conv.bias"] = _get(sd, "final_conv.1.bias", what)
    for ours, theirs in (("fc", "0"), ("out", "1")):
        t[f"b4.{ours}.weight"] = _get(sd, f"final_linear.{theirs}.weight", what)
        t[f"b4.{ours}.bias"] = _get(sd, f"final_linear.{theirs}.bias", what)
    return build_network(Discriminator, cfg, t, what, budget or NetworkBudget(what, 0), defaults=("resample_filter",))


def _count_blocks(sd: dict, pattern: str, first: int, what: str) -> int:
    """How many blocks ``pattern`` numbers (``first``, ``first + 1``, ... without gaps; at most 12)."""
    found = {int(m.group(1)) for m in (re.fullmatch(pattern, k) for k in sd if isinstance(k, str)) if m}
    if found and (found != set(range(first, first + len(found))) or len(found) > 12):
        raise CheckpointError(f"{what}: its blocks are numbered {sorted(found)[:8]}; expected {first}, "
                              f"{first + 1}, ... (at most 12 blocks)")
    return len(found)



def _check_exportable_generator(G: Generator) -> list[str]:
    cfg, syn = G.config, G.config.synthesis
    problems = []
    if cfg.generation != "stylegan2":
        problems.append(f"it is a {cfg.variant} generator (rosinality's is StyleGAN2)")
    else:
        if syn.architecture != "skip":
            problems.append(f"its architecture is {syn.architecture!r} (rosinality's generator is 'skip')")
        if syn.kernel_size != 3 or syn.activation != "lrelu" or not syn.use_noise:
            problems.append("it uses non-default layers (kernel size, activation or no noise)")
    if cfg.c_dim:
        problems.append("it is conditional (rosinality's generator has no labels)")
    if cfg.img_channels != 3:
        problems.append(f"it has {cfg.img_channels} image channels (rosinality's ToRGB has 3)")
    if cfg.z_dim != cfg.w_dim or (cfg.mapping.layer_features not in (None, cfg.w_dim)):
        problems.append("z_dim, w_dim and the mapping width differ (rosinality uses one style_dim)")
    if cfg.mapping.activation != "lrelu":
        problems.append("its mapping activation is not lrelu")
    if problems:
        raise CheckpointError("cannot write a rosinality checkpoint: " + "; ".join(problems))
    notes = []
    if getattr(syn, "conv_clamp", None) is not None:
        notes.append(f"the generator's conv clamp (±{syn.conv_clamp:g}) is dropped: rosinality has none")
    return notes


def generator_to_rosinality(G: Generator) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Our StyleGAN2 generator -> (rosinality state dict, latent_avg)."""
    _check_exportable_generator(G)
    sd = {k: v.detach().cpu().to(torch.float32) for k, v in G.state_dict().items()}
    syn = G.synthesis
    out: dict[str, torch.Tensor] = {}
    for i in range(G.config.mapping.num_layers):
        out[f"style.{i + 1}.weight"] = sd[f"mapping.fc{i}.weight"]
        out[f"style.{i + 1}.bias"] = sd[f"mapping.fc{i}.bias"]
    kernel = syn.b4.resample_filter.detach().cpu().to(torch.float32)

    def layer(ours: str, theirs: str, torgb: bool = False):
        out[f"{theirs}.conv.weight"] = sd[f"{ours}.weight"][None]
        out[f"{theirs}.conv.modulation.weight"] = sd[f"{ours}.affine.weight"]
        out[f"{theirs}.conv.modulation.bias"] = sd[f"{ours}.affine.bias"]
        if torgb:
            out[f"{theirs}.bias"] = sd[f"{ours}.bias"].reshape(1, -1, 1, 1)
        else:
            out[f"{theirs}.noise.weight"] = sd[f"{ours}.noise_strength"].reshape(1)
            out[f"{theirs}.activate.bias"] = sd[f"{ours}.bias"]

    out["input.input"] = sd["synthesis.b4.const"][None]
    layer("synthesis.b4.conv1", "conv1")
    layer("synthesis.b4.torgb", "to_rgb1", torgb=True)
    out["noises.noise_0"] = sd["synthesis.b4.conv1.noise_const"][None, None]
    for k, r in enumerate(syn.block_resolutions[1:]):
        layer(f"synthesis.b{r}.conv0", f"convs.{2 * k}")
        out[f"convs.{2 * k}.conv.blur.kernel"] = kernel * 4
        layer(f"synthesis.b{r}.conv1", f"convs.{2 * k + 1}")
        layer(f"synthesis.b{r}.torgb", f"to_rgbs.{k}", torgb=True)
        out[f"to_rgbs.{k}.upsample.kernel"] = kernel * 4
        out[f"noises.noise_{2 * k + 1}"] = sd[f"synthesis.b{r}.conv0.noise_const"][None, None]
        out[f"noises.noise_{2 * k + 2}"] = sd[f"synthesis.b{r}.conv1.noise_const"][None, None]
    return out, sd["mapping.w_avg"].clone()


def discriminator_to_rosinality(D: Discriminator) -> dict[str, torch.Tensor]:
    cfg = D.config
    if (cfg.generation != "stylegan2" or cfg.architecture != "resnet" or cfg.c_dim or cfg.mbstd_num_channels != 1
            or cfg.mbstd_group_size != 4 or cfg.activation != "lrelu" or cfg.img_channels != 3):
        raise CheckpointError("cannot write a rosinality discriminator: it must be an unconditional 3-channel "
                              "resnet StyleGAN2 discriminator with minibatch-stddev group 4 and 1 channel "
                              "(use --g-only to write the generator alone)")
    sd = {k: v.detach().cpu().to(torch.float32) for k, v in D.state_dict().items()}
    R = cfg.img_resolution
    kernel = getattr(D, f"b{R}").resample_filter.detach().cpu().to(torch.float32)
    out = {"convs.0.0.weight": sd[f"b{R}.fromrgb.weight"], "convs.0.1.bias": sd[f"b{R}.fromrgb.bias"]}
    for k, r in enumerate(D.block_resolutions, start=1):
        out[f"convs.{k}.conv1.0.weight"] = sd[f"b{r}.conv0.weight"]
        out[f"convs.{k}.conv1.1.bias"] = sd[f"b{r}.conv0.bias"]
        out[f"convs.{k}.conv2.0.kernel"] = kernel.clone()
        out[f"convs.{k}.conv2.1.weight"] = sd[f"b{r}.conv1.weight"]
        out[f"convs.{k}.conv2.2.bias"] = sd[f"b{r}.conv1.bias"]
        out[f"convs.{k}.skip.0.kernel"] = kernel.clone()
        out[f"convs.{k}.skip.1.weight"] = sd[f"b{r}.skip.weight"]
    out["final_conv.0.weight"] = sd["b4.conv.weight"]
    out["final_conv.1.bias"] = sd["b4.conv.bias"]
    for ours, theirs in (("fc", "0"), ("out", "1")):
        out[f"final_linear.{theirs}.weight"] = sd[f"b4.{ours}.weight"]
        out[f"final_linear.{theirs}.bias"] = sd[f"b4.{ours}.bias"]
    return out


def save_rosinality(ckpt: Checkpoint, dest: str | Path, include_discriminator: bool = True) -> tuple[Path, list[str]]:
    """Write ``ckpt`` as a rosinality ``.pt`` (``g_ema``, ``g``, ``d``, ``latent_avg``) atomically.

    Returns the path and notes about what rosinality cannot represent (e.g. a dropped conv clamp).
    """
    dest = Path(dest)
    G_ema = ckpt.generator()
    if G_ema.config.img_shape is not None:
        h, w = G_ema.img_shape
        raise UserInputError(f"cannot write a rosinality checkpoint of a non-square ({w}x{h}) model: its "
                             f"constant input is square; keep it in our format (--to native)")
    notes = _check_exportable_generator(G_ema)
    g_ema, latent_avg = generator_to_rosinality(G_ema)
    data: dict = {"g_ema": g_ema, "latent_avg": latent_avg}
    if ckpt.G is not None and ckpt.G is not G_ema:
        data["g"] = generator_to_rosinality(ckpt.G)[0]
    if include_discriminator and ckpt.D is not None:
        data["d"] = discriminator_to_rosinality(ckpt.D)
        if ckpt.D.config.conv_clamp is not None:
            notes.append("the discriminator's conv clamp is dropped: rosinality has none")
    atomic_write(dest, lambda tmp: torch.save(data, tmp))
    return dest, notes
