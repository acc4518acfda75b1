"""Options and helpers shared by the commands: each option is defined here once (the commands
differ at most in its help text and default), so every command spells and checks it the same way."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import click

from ..errors import UserInputError
from ..networks.options import CONST_EXTENSIONS, NOISE_MODES


class AliasOption(click.Option):
    """An option that also answers to other spellings (NVIDIA's: ``--num-steps`` for ``--steps``): they are
    parsed exactly like its own names but not listed in ``--help``. Declare with ``cls=AliasOption,
    aliases=(...)`` or through :func:`option`."""

    def __init__(self, *decls, aliases: tuple[str, ...] = (), **kwargs):
        super().__init__(*decls, **kwargs)
        self.aliases = tuple(aliases)

    def add_to_parser(self, parser, ctx) -> None:
        shown = self.opts
        self.opts = [*shown, *self.aliases]
        try:
            super().add_to_parser(parser, ctx)
        finally:
            self.opts = shown


def option(*decls, aliases: tuple[str, ...] = (), **kwargs):
    """``click.option`` with hidden alias spellings (see :class:`AliasOption`)."""
    return click.option(*decls, cls=AliasOption, aliases=aliases, **kwargs)


def switch_option(*decls, default: bool | None = False, aliases: tuple[str, ...] = (), **kwargs):
    """A switch that also takes a value as NVIDIA's boolean options do: ``--mirror``, ``--mirror=1``,
    ``--mirror 1``, ``--mirror=false`` (values as click's BOOL: 1/0, true/false, yes/no, on/off)."""
    kwargs.setdefault("show_default", default)
    return option(*decls, aliases=aliases, type=click.BOOL, is_flag=False, flag_value=True, default=default,
                  metavar="[BOOL]", **kwargs)


class Resolution(click.ParamType):
    """A dataset image size: ``256`` or NVIDIA's ``256x256`` (an int), or ``WxH`` for a non-square model
    (``(H, W)``, as tensors are)."""
    name = "resolution"

    def convert(self, value, param, ctx):
        if isinstance(value, (int, tuple)):
            return value
        parts = str(value).lower().split("x")
        try:
            sizes = [int(p) for p in parts]
        except ValueError:
            self.fail(f"{value!r} is not a size: use N or WxH, e.g. 256, 256x256 or 512x256", param, ctx)
        if len(sizes) > 2 or min(sizes) < 1:
            self.fail(f"{value!r}: use N or WxH, e.g. 256, 256x256 or 512x256", param, ctx)
        return sizes[0] if len(set(sizes)) == 1 else (sizes[1], sizes[0])


def gpus_option(command: str):
    """NVIDIA's ``--gpus N``: one process per GPU, which here is ``torchrun``'s job (see :func:`check_gpus`)."""
    return click.option("--gpus", type=click.IntRange(min=1), default=None, metavar="N",
                        help=f"GPUs (NVIDIA's option): several GPUs take one process each, started with "
                             f"`torchrun --nproc_per_node N -m stylegan.cli.main {command} ...`; given N > 1 "
                             f"outside torchrun, the command prints that line and stops.")


def check_gpus(ctx: click.Context, gpus: int | None) -> None:
    """Accept ``--gpus N`` when this process is one of N started by torchrun (or N is 1); otherwise refuse with
    the exact torchrun command line that does what was asked."""
    import os
    import shlex
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if gpus is None or gpus == world:
        return
    if world > 1:
        raise UserInputError(f"--gpus {gpus}, but torchrun started {world} processes; drop --gpus or "
                             f"use --nproc_per_node {gpus}")
    args = " ".join(shlex.quote(a) for a in command_line_args(ctx, drop=("gpus",)))
    raise UserInputError(f"--gpus {gpus}: run one process per GPU with torchrun: torchrun --nproc_per_node "
                         f"{gpus} -m stylegan.cli.main {ctx.info_name} {args}".rstrip())


def command_line_args(ctx: click.Context, drop: tuple[str, ...] = ()) -> list[str]:
    """The options given on the command line, re-spelled with their main names (to print a command)."""
    from click.core import ParameterSource
    out: list[str] = []
    for param in ctx.command.params:
        name = param.name
        if name in drop or not isinstance(param, click.Option) or \
                ctx.get_parameter_source(name) != ParameterSource.COMMANDLINE:
            continue
        value, flag = ctx.params[name], param.opts[-1]
        values = value if param.multiple else [value]
        for v in values:
            if param.is_flag and param.is_bool_flag:
                out.append(flag if v else (param.secondary_opts or [flag])[0])
            elif param.is_flag:
                out += [flag] if v == param.flag_value else []
            elif isinstance(v, bool):
                out.append(f"{flag}={int(v)}")
            else:
                out += [flag, str(v)]
    return out

network_option = click.option(
    "--network", "network", metavar="PATH|URL|NAME", default=None,
    help="Model: NVIDIA .pkl, our .safetensors (file or folder), rosinality .pt, URL or published name. "
         "Default: the built-in model.")
device_option = click.option("--device", default="auto", show_default=True,
                             help="auto, cpu, cuda, cuda:N or mps.")
precision_option = click.option("--fp16", "precision", flag_value="fp16", help="Half precision (CUDA).")
bf16_option = click.option("--bf16", "precision", flag_value="bf16",
                           help="bfloat16 (CUDA, or CPUs with native bf16: AVX512-BF16 / AMX).")
compile_option = click.option(
    "--compile", "compile_synthesis", is_flag=True,
    help="torch.compile the synthesis network: a one-time compilation (tens of seconds) that pays off "
         "over many images or frames, mostly on GPUs.")
outdir_option = click.option("--outdir", type=click.Path(file_okay=False, path_type=Path), required=True,
                             help="Where to write the results (created if missing).")


def precision_options(f):
    """``--fp32`` (default), ``--fp16``, ``--bf16`` into ``precision``."""
    return precision_option(bf16_option(click.option("--fp32", "precision", flag_value="fp32", default=True,
                                                     help="Full precision (default).")(f)))


def torchrun_shared(command):
    """Run a command (taking ``device=``) inside torchrun's process group, if any: join it, pass this
    process's device (cuda:LOCAL_RANK, or the CPU with gloo) instead of the name, leave the group after.
    Without torchrun it is the plain command on the chosen device."""
    @functools.wraps(command)
    def run(*args, device="auto", **kwargs):
        from .. import distributed
        _, dev = distributed.init(device)
        try:
            return command(*args, device=dev, **kwargs)
        finally:
            distributed.shutdown()
    return run


def trunc_option(help: str = "Truncation psi (seeds only).", default: float | None = 1.0):
    return click.option("--trunc", "truncation_psi", type=float, default=default,
                        show_default=default is not None, help=help)


def trunc_cutoff_option(help: str = "Truncate only the first N layers (default: all)."):
    return click.option("--trunc-cutoff", "truncation_cutoff", type=int, default=None, help=help)


def truncation_options(f):
    """``--trunc`` and ``--trunc-cutoff``."""
    return trunc_option()(trunc_cutoff_option()(f))


def class_option(help: str = "Class label (conditional models)."):
    return click.option("--class", "class_idx", type=int, default=None, help=help)


def noise_mode_option(help: str | None = None):
    return click.option("--noise-mode", type=click.Choice(NOISE_MODES), default="const", show_default=True,
                        help=help)


def batch_option(default: int = 8, help: str = "Images per forward pass."):
    return click.option("--batch", "batch_size", type=click.IntRange(min=1), default=default, show_default=True,
                        help=help)


def transform_options(what: str = "the image"):
    """StyleGAN3's ``--translate X,Y`` and ``--rotate DEG`` (parse ``translate`` with :func:`parse_pair`)."""
    def decorate(f):
        f = click.option("--rotate", type=float, default=0.0, help=f"StyleGAN3: rotate {what} (degrees).")(f)
        return click.option("--translate", default=None, metavar="X,Y", help=f"StyleGAN3: translate {what}.")(f)
    return decorate


def canvas_options(f):
    """``--size WxH`` (a canvas spec for ``GenerationRequest``) and ``--extend`` (StyleGAN1/2's constant)."""
    f = click.option("--extend", "extension", type=click.Choice(CONST_EXTENSIONS), default=None,
                     help="StyleGAN1/2 with --size: continue the learned constant by copies (tile, the default), "
                          "mirror images (reflect) or resampling (stretch).")(f)
    return click.option("--size", "size", default=None, metavar="WxH",
                        help="Image size instead of the model's own size, e.g. 1920x1080: StyleGAN3 shows a wider "
                             "view of the same scene, StyleGAN1/2 continue their constant (docs/canvas.md).")(f)


def echo_canvas_note(request) -> None:
    """Say once when the canvas is rendered larger and cropped (``GenerationRequest.canvas_note``)."""
    if request.canvas_note:
        echo_done(request.canvas_note)


def parse_pair(value: str | None, name: str) -> tuple[float, float]:
    if value is None:
        return 0.0, 0.0
    try:
        x, y = (float(v) for v in str(value).split(","))
    except ValueError:
        raise UserInputError(f"--{name} expects two numbers 'X,Y', got {value!r}") from None
    return x, y


def ensure_outdir(path: Path) -> Path:
    """Create the output folder, or fail clearly before any work is done."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserInputError(f"cannot create output folder {path}: {exc.strerror or exc}") from None
    probe = path / f".stylegan-write-test-{os.uname().nodename}-{os.getpid()}"   # torchrun: one per process
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise UserInputError(f"output folder {path} is not writable: {exc.strerror or exc}") from None
    return path


def load_G(network, device="auto", precision="fp32", compile_synthesis=False):
    """The generator of ``network`` (:func:`stylegan.checkpoints.load_generator`), compiled if asked;
    returns ``(G, device, half dtype)``."""
    from ..checkpoints import load_generator
    G = load_generator(network, device=device, precision=precision)
    if compile_synthesis:
        try:
            G.compile_synthesis()
        except RuntimeError as exc:
            raise UserInputError(f"--compile: {exc}") from None
    dev, half = next(G.parameters()).device, G.synthesis.half_dtype
    if dev.type == "cpu" and half is not None:
        from ..devices import cpu_bf16_kernel
        echo_done(f"bf16 on the CPU: {cpu_bf16_kernel()} instructions (oneDNN)")
    return G, dev, half


def echo_done(message: str) -> None:
    click.echo(message, err=True)


def format_ranges(idx: list[int]) -> str:
    """[0, 1, 2, 3, 8] -> '0-3,8' (sorted indices, inclusive ranges as the options take them)."""
    out, start = [], idx[0]
    for a, b in zip(idx, idx[1:] + [None]):
        if b != a + 1:
            out.append(f"{start}-{a}" if a != start else str(a))
            start = b
    return ",".join(out)
