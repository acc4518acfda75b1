"""``stylegan`` command line: a thin front end. Commands load lazily so ``--help`` is instant."""

from __future__ import annotations

import importlib
import importlib.util
import sys

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
        return getattr(importlib.import_module(f"stylegan.cli.{mod}"), attr)


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


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, prog_name="stylegan", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except StyleGANError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(1)
    sys.exit(0)


if __name__ == "__main__":  # pragma: no cover
    main()
