"""How a run starts: fresh, continuing a training state exactly, or transfer learning from a model.

Each way of starting derives the options the run trains with from the user's: a new frozen
:class:`TrainingOptions`, never a change to the caller's object.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..errors import CheckpointError, DatasetError, UserInputError
from ..networks import DiscriminatorConfig, GeneratorConfig
from .checkpoint import (
    TrainingState,
    find_latest_state,
    is_training_state,
    list_states,
    load_training_state,
)
from .config import TrainingOptions, discriminator_config, generator_config

#: Options that may change when a run is resumed exactly; all others come from the training state.
RESUME_OVERRIDES = {"kimg", "tick", "snap"}
#: Options that describe the network architecture (given explicitly, they override a transfer source's).
ARCH_OPTIONS = {"cbase", "cmax", "map_depth", "z_dim", "w_dim", "cfg"}
#: The architectures ``stylegan train`` builds.
TRAINABLE_VARIANTS = ("stylegan2", "stylegan3-t", "stylegan3-r")


@dataclass
class Start:
    """Where a run starts from, and the options it trains with."""

    opts: TrainingOptions
    data: str | None
    state: TrainingState | None = None        # exact resume
    source: object | None = None              # transfer learning: a loaded Checkpoint
    source_name: str | None = None
    notices: list[str] = field(default_factory=list)


def resolve_resume(resume: str | None, outdir: Path) -> tuple[str, Path | None]:
    """-> ('fresh', None) | ('state', training-state file) | ('network', None: ``resume`` is a model)."""
    if resume is None or resume in ("", "noresume"):
        return "fresh", None
    if resume == "latest":
        found = find_latest_state(outdir)
        return ("state", found) if found is not None else ("fresh", None)
    path = Path(resume)
    if path.is_dir() and list_states(path):
        latest = find_latest_state(path)
        if latest is None:
            raise CheckpointError(f"{path}: no readable training state")
        return "state", latest
    if path.is_file() and is_training_state(path):
        return "state", path
    return "network", None


def start(opts: TrainingOptions, data, outdir: Path, resume: str | None, explicit: set[str]) -> Start:
    """Read what ``--resume`` names and reconcile the options with it (validated)."""
    mode, state_path = resolve_resume(resume, outdir)
    if mode == "state":
        state = load_training_state(state_path)
        begun = Start(resumed_options(opts, explicit, state), data or state.header["dataset"]["path"], state=state)
    elif mode == "network":
        from ..checkpoints import load_network
        source = load_network(resume)
        begun = Start(transfer_options(opts, explicit, source, str(resume)), data, source=source,
                      source_name=Path(str(resume)).name)
    else:
        begun = Start(opts, data)
        if resume == "latest":
            begun.notices.append(f"no training state found under {outdir}; starting a new run")
    begun.opts.validate()
    if begun.data is None:
        raise UserInputError("--data is required (a dataset zip or folder made by `stylegan dataset`)")
    return begun


def resumed_options(opts: TrainingOptions, explicit: set[str], state: TrainingState) -> TrainingOptions:
    """The run's stored options, with only ``--kimg``/``--tick``/``--snap`` taken from the user; any other
    explicitly given option that differs is refused (it would not be the same run)."""
    stored = TrainingOptions.from_dict(state.options)
    conflicts = [k for k in sorted(explicit - RESUME_OVERRIDES)
                 if k in stored.to_dict() and getattr(opts, k) != getattr(stored, k)]
    if conflicts:
        listed = ", ".join(f"--{k.replace('_', '-')} {getattr(opts, k)} (run: {getattr(stored, k)})" for k in conflicts)
        raise UserInputError(f"resuming {Path(state.path).parent.name} exactly, but these options differ from "
                             f"the run: {listed}. Drop them to continue the run, or start a new run "
                             f"with --resume {state.path} for transfer learning")
    return dataclasses.replace(stored, **{k: getattr(opts, k) for k in RESUME_OVERRIDES & explicit})


def transfer_options(opts: TrainingOptions, explicit: set[str], source, resume: str) -> TrainingOptions:
    """NVIDIA's transfer-learning settings (ADA over 100 kimg, no EMA ramp-up, no D blur) unless given,
    and the source's architecture family unless ``--cfg`` is."""
    src_G = source.G if source.G is not None else source.G_ema
    if src_G is None:
        raise CheckpointError(f"{resume} contains no generator to start from")
    changes: dict = {"resume_from": resume}
    if "cfg" not in explicit:
        variant = src_G.config.variant
        changes["cfg"] = variant if variant in TRAINABLE_VARIANTS else "stylegan2"
    defaults = {"ada_kimg": 100, "ema_rampup": None, "blur_sigma": 0.0}
    changes.update({k: v for k, v in defaults.items() if k not in explicit})
    return dataclasses.replace(opts, **changes)


def state_configs(state: TrainingState) -> tuple[GeneratorConfig, DiscriminatorConfig]:
    """The G and D configs of a training state, validated (a CheckpointError naming the file if not)."""
    try:
        return (GeneratorConfig.from_dict(state.header["g_config"]),
                DiscriminatorConfig.from_dict(state.header["d_config"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{Path(state.path).name}: its network configs are invalid ({exc})") from None


def check_state_fits(state: TrainingState, data, shape: tuple[int, int], channels: int, c_dim: int,
                     num_images: int, notices: list[str]) -> tuple[GeneratorConfig, DiscriminatorConfig]:
    """The dataset given to a resumed run must have the images (``shape`` (H, W)) the run was trained on;
    -> the state's validated configs (:func:`state_configs`)."""
    g, d = state_configs(state)
    trained = g.shape
    if (trained, g.img_channels) != (tuple(shape), channels) or g.c_dim != c_dim:
        raise DatasetError(f"{data} has {shape[1]}x{shape[0]}x{channels} images with {c_dim} label(s), the run "
                           f"being resumed trained on {trained[1]}x{trained[0]}x{g.img_channels} "
                           f"with {g.c_dim}")
    check_d_shape(d, shape, Path(state.path).name)
    if state.header["dataset"].get("num_images") != num_images:
        notices.append(f"the dataset now has {num_images} images, the run started with "
                       f"{state.header['dataset'].get('num_images')}: the data order differs from an "
                       f"uninterrupted run")
    return g, d


def check_d_shape(d_cfg: DiscriminatorConfig, shape: tuple[int, int], source: str) -> None:
    """A CheckpointError unless the discriminator of ``source`` judges images of the dataset's ``shape``."""
    if d_cfg.shape != tuple(shape):
        (h, w), (dh, dw) = shape, d_cfg.shape
        raise CheckpointError(f"{source}: its discriminator judges {dw}x{dh} images, but the dataset (and "
                              f"its generator) has {w}x{h}")


def transfer_configs(source, opts: TrainingOptions, explicit: set[str], shape: tuple[int, int], channels: int,
                     c_dim: int):
    """-> (options with the source's sizes, G config, D config): the source model's architecture unless
    the user asked for explicit sizes; the dataset's images are ``shape`` (H, W)."""
    src_G = source.G if source.G is not None else source.G_ema
    sg = src_G.config
    res = max(shape)
    if explicit & ARCH_OPTIONS:
        g_cfg = generator_config(opts, res, channels, c_dim, img_shape=shape)
    else:
        if (sg.shape, sg.img_channels) != (tuple(shape), channels):
            (h, w), (sh, sw) = shape, sg.shape
            raise UserInputError(f"the model to resume from makes {sw}x{sh}x{sg.img_channels} images but the "
                                 f"dataset has {w}x{h}x{channels}; rebuild the dataset at that size with "
                                 f"`stylegan dataset --resolution {sw}x{sh}`")
        if sg.generation not in ("stylegan2", "stylegan3"):
            raise UserInputError(f"training a {sg.generation} model is not supported; start from a "
                                 f"StyleGAN2 or StyleGAN3 model")
        syn = dataclasses.replace(sg.synthesis, num_fp16_res=0 if opts.fp32 else 4,
                                  conv_clamp=None if opts.fp32 else 256)
        if sg.generation == "stylegan3":
            syn = dataclasses.replace(syn, magnitude_ema_beta=0.5 ** (opts.batch / 20000))
        g_cfg = sg.replace(c_dim=c_dim, synthesis=syn)
        halve = 2 if opts.cfg == "stylegan3-r" else 1
        opts = dataclasses.replace(opts, z_dim=sg.z_dim, w_dim=sg.w_dim, map_depth=sg.mapping.num_layers,
                                   cbase=sg.synthesis.channel_base // halve, cmax=sg.synthesis.channel_max // halve)
    if source.D is not None and not (explicit & ARCH_OPTIONS):
        check_d_shape(source.D.config, shape, opts.resume_from or "the model to resume from")
        d_cfg = source.D.config.replace(c_dim=c_dim, num_fp16_res=0 if opts.fp32 else 4,
                                        conv_clamp=None if opts.fp32 else 256)
    else:
        d_cfg = discriminator_config(opts, res, channels, c_dim, img_shape=shape)
    return opts, g_cfg, d_cfg


def copy_by_name(src: torch.nn.Module | None, dst: torch.nn.Module) -> tuple[int, list[str]]:
    """Copy parameters and buffers with equal names and shapes from ``src`` into ``dst``.

    Returns (number copied, names of ``dst`` left at their fresh values) -- NVIDIA's transfer rule.
    """
    if src is None:
        return 0, sorted(dst.state_dict())
    src_tensors = {**dict(src.named_parameters()), **dict(src.named_buffers())}
    copied, kept = 0, []
    with torch.no_grad():
        for name, t in list(dst.named_parameters()) + list(dst.named_buffers()):
            s = src_tensors.get(name)
            if s is not None and tuple(s.shape) == tuple(t.shape):
                t.copy_(s.to(t.device, t.dtype))
                copied += 1
            else:
                kept.append(name)
    return copied, kept


def transfer_weights(source, G, D, G_ema, source_name: str) -> list[str]:
    """Copy the source's G, D and G_ema into the fresh networks; returns one notice per network."""
    src_G, src_G_ema = source.G, source.G_ema
    notices = []
    for name, src, dst in (("G", src_G if src_G is not None else src_G_ema, G), ("D", source.D, D),
                           ("G_ema", src_G_ema if src_G_ema is not None else src_G, G_ema)):
        copied, kept = copy_by_name(src, dst)
        notices.append(f"transfer: {name}: copied {copied} tensors from {source_name}"
                       + (f", {len(kept)} kept fresh (e.g. {kept[0]})" if kept else ""))
    return notices
