"""``stylegan`` command line: a thin front end. Commands load lazily so ``--help`` is instant."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import signal
import sys
import threading

import click

from .. import __version__
from ..errors import StyleGANError

#: command name -> (module under stylegan.cli, attribute). A missing module hides the command.
COMMANDS: dict[str, tuple[str, str]] = {
    "generate": ("generate", "generate"),
    "mix": ("mix", "mix"),
    "video": ("video", "video"),
    "latent": ("latent_cmd", "latent"),
    "project": ("project", "project"),
    "variations": ("project", "variations"),
    "directions": ("directions", "directions"),
    "edit": ("directions", "edit"),
    "dataset": ("dataset", "dataset"),
    "train": ("train", "train"),
    "metrics": ("metrics", "metrics"),
    "convert": ("convert", "convert"),
    "info": ("convert", "info"),
    "export": ("export", "export"),
    "serve": ("serve", "serve"),
    "encoder": ("encoder", "encoder"),
    "drag": ("drag", "drag"),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(name for name, (mod, _) in COMMANDS.items() if _module_exists(mod))

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        mod, attr = COMMANDS[name]
        if not _module_exists(mod):
            return None
        return _with_threads(getattr(importlib.import_module(f"stylegan.cli.{mod}"), attr))


def _apply_threads(ctx, param, value):
    from ..devices import set_threads
    set_threads(value)
    return value


def _with_threads(cmd: click.Command) -> click.Command:
    """Give every command (and every subcommand of a group) the same ``--threads N`` option, applied before
    the command runs: N, else ``$STYLEGAN_THREADS``, else the CPUs this process may use (devices.set_threads)."""
    if isinstance(cmd, click.Group):
        for sub in cmd.commands.values():
            _with_threads(sub)
    elif not any(p.name == "threads" for p in cmd.params):
        cmd.params.append(click.Option(
            ["--threads"], type=click.IntRange(min=1), default=None, expose_value=False, callback=_apply_threads,
            help="CPU threads (default: $STYLEGAN_THREADS, else the CPUs this process may use; "
                 "on a busy shared machine 1-2 is often fastest)."))
    return cmd


def _module_exists(mod: str) -> bool:
    return importlib.util.find_spec(f"stylegan.cli.{mod}") is not None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="stylegan")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
def cli(quiet: bool) -> None:
    """StyleGAN 1/2/3 in pure PyTorch: generate, mix, animate, project, edit, train, measure.

    Every command that takes --network accepts NVIDIA's .pkl files (PyTorch or TensorFlow),
    our .safetensors files, rosinality .pt checkpoints, URLs and published model names; without
    --network the built-in model is used.
    """
    if quiet:
        from ..progress import set_quiet
        set_quiet(True)


#: Exit codes: every error is one ``error: ...`` line on stderr, and
USAGE_ERROR = 2       # a command line that does not parse (unknown option, bad value), as click and argparse do;
FAILED = 1            # anything else refused or failed (bad file, bad input, disk full);
INTERRUPTED = 130     # Ctrl-C (SIGINT), 128 + 2;
TERMINATED = 143      # SIGTERM, 128 + 15. Interrupted commands leave no partial output behind.


class Terminated(BaseException):
    """SIGTERM, turned into an exception so that every open output is cleaned up on the way out."""


#: seconds an interrupted command may take to unwind before it is ended anyway (its partial outputs removed)
GRACE_S = 20.0
_forced_exit: threading.Timer | None = None


def _on_signal(signum, frame):
    """SIGINT/SIGTERM: unwind with an exception (every ``atomic_output`` removes its file); and because an
    exception raised inside a finaliser or callback is swallowed by Python, a timer ends the process after
    :data:`GRACE_S` whatever happens. A second signal ends it at once."""
    global _forced_exit
    code = INTERRUPTED if signum == signal.SIGINT else TERMINATED
    if _forced_exit is not None:
        _exit_now(code)
    _forced_exit = threading.Timer(GRACE_S, _exit_now, args=(code,))
    _forced_exit.daemon = True
    _forced_exit.start()
    raise KeyboardInterrupt() if signum == signal.SIGINT else Terminated()


def _exit_now(code: int) -> None:
    from ..files import remove_partial_outputs
    remove_partial_outputs()
    sys.stderr.write("interrupted\n" if code == INTERRUPTED else "terminated\n")
    sys.stderr.flush()
    os._exit(code)


def _usage_line(exc: click.UsageError) -> str:
    message = " ".join(exc.format_message().split())
    ctx = exc.ctx
    hint = f" (see {ctx.command_path} --help)" if ctx is not None else ""
    return f"error: {message}{hint}"


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; see the exit codes above. SIGTERM is handled like Ctrl-C: outputs being written are removed."""
    global _forced_exit
    previous = _install_handlers()
    try:
        cli.main(args=argv, prog_name="stylegan", standalone_mode=False)
    except click.UsageError as exc:
        click.echo(_usage_line(exc), err=True)
        sys.exit(USAGE_ERROR)
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        sys.exit(INTERRUPTED)
    except click.ClickException as exc:
        click.echo(f"error: {' '.join(exc.format_message().split())}", err=True)
        sys.exit(exc.exit_code)
    except StyleGANError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(FAILED)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(INTERRUPTED)
    except Terminated:
        click.echo("terminated", err=True)
        sys.exit(TERMINATED)
    except BrokenPipeError:
        sys.exit(FAILED)
    finally:
        from ..files import remove_partial_outputs
        remove_partial_outputs()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if _forced_exit is not None:
            _forced_exit.cancel()
            _forced_exit = None
    sys.exit(0)


def _install_handlers() -> dict:
    """Our SIGINT/SIGTERM handlers, when running in the main thread (tests may call main() from others);
    returns the previous ones. ``stylegan train`` installs its own while it trains (finish the step, save)."""
    previous = {}
    with contextlib.suppress(ValueError):
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, _on_signal)
    return previous


if __name__ == "__main__":  # pragma: no cover
    main()
