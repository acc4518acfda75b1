"""``stylegan serve``: the latent-space explorer in a browser (for headless and remote GPU machines)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import click

from .common import device_option, network_option, precision_options


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_encoders(values) -> dict[str, str]:
    """``--encoder`` values -> {model name: encoder file}: ``FILE`` (an existing file, or ``builtin``) is for
    the --network model (``default``), ``MODEL=FILE`` for the model the page lists as MODEL."""
    from ..errors import UserInputError
    from ..web.models import DEFAULT_NAME
    out: dict[str, str] = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not name or Path(value).is_file():
            name, path = DEFAULT_NAME, value
        if not path:
            raise UserInputError(f"--encoder {value}: give MODEL=FILE or FILE")
        if name in out:
            raise UserInputError(f"--encoder: two encoders for the model {name!r}")
        out[name] = path
    return out


@click.command()
@network_option
@click.option("--model-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Folder of model files the page may switch among (nothing outside it can be opened).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Keep the default and use an SSH tunnel for remote machines.")
@click.option("--port", type=click.IntRange(0, 65535), default=7860, show_default=True)
@click.option("--allowed-host", "allowed_hosts", multiple=True, metavar="NAME",
              help="Host names the page may be reached by (default: localhost names; '*' for any). Repeatable.")
@click.option("--max-loaded", type=click.IntRange(min=1), default=2, show_default=True,
              help="Models kept in memory at once.")
@click.option("--renders", "render_threads", type=click.IntRange(min=1), default=2, show_default=True,
              help="Renders that may run at the same time (of different models); --threads is the CPU threads, "
                   "as for every command.")
@click.option("--upload-mb", type=click.IntRange(1, 256), default=8, show_default=True,
              help="Largest .npz upload (projected w, directions).")
@click.option("--max-canvas-mp", type=click.FloatRange(0.001, 268.0), default=None, metavar="MP",
              help="Most megapixels the page's canvas (an image size other than the model's) is rendered at "
                   "[default: 3, which admits 1920x1080 on every published model].")
@click.option("--encoder", "encoders", multiple=True, metavar="[MODEL=]FILE",
              help="Encoder for the page's photo upload (from `stylegan encoder train`): FILE for the --network "
                   "model, MODEL=FILE for a model of --model-dir (its name as the page lists it). Repeatable; "
                   "checked against each model at start-up. The built-in model has one without it.")
@device_option
@precision_options
def serve(network, model_dir, host, port, allowed_hosts, max_loaded, render_threads, upload_mb, max_canvas_mp,
          encoders, device, precision):
    """Explore a model in the browser: seeds, truncation, style mixing, directions, StyleGAN3 transforms.

    Listens on 127.0.0.1 only unless --host says otherwise. On a remote GPU machine, forward the port:
    ssh -L 7860:127.0.0.1:7860 gpu-host, then open http://localhost:7860 on your own computer.

    \b
    Examples:
      stylegan serve --network ffhq.pkl
      stylegan serve --model-dir ~/models --port 8080 --device cuda --fp16
      stylegan serve --network ffhq.pkl --encoder ffhq-enc.safetensors
    """
    from ..errors import UserInputError
    try:
        import uvicorn

        from ..web.app import create_app
    except ImportError as exc:
        raise UserInputError(f"the web explorer needs FastAPI and uvicorn ({exc.name} is missing): "
                             f"pip install 'stylegan[web]'") from None
    hosts = list(allowed_hosts) or None
    if not is_loopback(host):
        click.echo(f"warning: listening on {host}: anyone who can reach this address can use the explorer "
                   f"(there is no login); prefer --host 127.0.0.1 with an SSH tunnel", err=True)
        if hosts is None:
            hosts = ["*"]
    canvas = {} if max_canvas_mp is None else {"max_canvas_pixels": round(max_canvas_mp * 1e6)}
    app = create_app(network, model_dir, device=device, precision=precision or "fp32", max_loaded=max_loaded,
                     render_threads=render_threads, allowed_hosts=hosts, max_upload_bytes=upload_mb * 2**20,
                     encoders=parse_encoders(encoders), **canvas)
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"StyleGAN explorer on http://{'localhost' if is_loopback(host) else shown}:{port}  "
               f"(Ctrl+C to stop)", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", limit_concurrency=256, timeout_keep_alive=30,
                server_header=False)
