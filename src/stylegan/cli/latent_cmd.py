"""``stylegan latent``: arithmetic on latent files (the ``.npz`` layout of :mod:`stylegan.latent.io`)."""

from __future__ import annotations

from pathlib import Path

import click

from .common import class_option, echo_done, network_option, truncation_options

_in = click.Path(dir_okay=False, path_type=Path)
output_option = click.option("--output", "-o", required=True, type=_in, help="The .npz file to write.")


def _model(network, required: bool = False):
    """The generator when --network is given (or required); None otherwise."""
    if network is None and not required:
        return None
    from .common import load_G
    return load_G(network, "cpu", "fp32")[0]


def _read(path: Path, G=None):
    from ..latent.io import load_ws
    return load_ws(path, G.num_ws if G is not None else None, G.w_dim if G is not None else None)


def _layers(spec, G, num_ws: int):
    if spec is None:
        return None
    from ..latent.mixing import parse_layers
    return parse_layers(spec, G if G is not None else num_ws)


def _floats(text: str, name: str) -> list[float]:
    from ..errors import UserInputError
    try:
        return [float(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise UserInputError(f"--{name} expects numbers separated by commas, got {text!r}") from None


def _same_shape(arrays: list, paths: list[Path]) -> None:
    from ..errors import UserInputError
    shapes = {a.shape[1:] for a in arrays}
    if len(shapes) > 1:
        detail = ", ".join(f"{p.name}: {a.shape[1:]}" for p, a in zip(paths, arrays))
        raise UserInputError(f"the latents have different shapes ({detail}); pass --network to broadcast "
                             f"single-w files to every layer")


@click.group()
def latent():
    """Latent arithmetic on .npz files: make, inspect, add directions, average, mix, interpolate.

    \b
    Every command reads and writes the one .npz layout shared by all commands (docs/operating.md):
    'ws' [N, num_ws, w_dim] (also stored as 'w', NVIDIA's name), optional 'seeds', 'z', 'labels'.
    Layer specs (--layers) are ws indices and ranges (0-3, 8-) or, with --network, coarse/middle/fine.
    """


@latent.command("from-seeds")
@network_option
@click.option("--seeds", required=True, help="Seeds: '0-9,12'.")
@truncation_options
@class_option()
@output_option
def from_seeds(network, seeds, truncation_psi, truncation_cutoff, class_idx, output):
    """Map seeds to latents (what `generate --save-ws` stores), all in one file."""
    from ..latent.io import save_ws
    from ..latent.sampling import GenerationRequest
    G = _model(network, required=True)
    lat = GenerationRequest(G, truncation_psi, truncation_cutoff, class_idx).seed_latents(seeds)
    path = save_ws(output, lat.ws, seeds=lat.seeds, z=lat.z, psi=truncation_psi, labels=lat.labels)
    echo_done(f"wrote {len(lat)} latent(s) to {path}")


@latent.command("info")
@click.argument("files", nargs=-1, required=True, type=_in)
def info(files):
    """Show what latent or direction files hold."""
    from ..latent.io import load_npz_extra
    for path in files:
        data = load_npz_extra(path)
        click.echo(f"{path}:")
        for key, value in data.items():
            shown = f"{value.dtype} {list(value.shape)}"
            if value.ndim <= 1 and value.size <= 8 and value.dtype.kind in "iufU":
                shown += f" = {value.tolist()}"
            click.echo(f"  {key:<11} {shown}")


@latent.command("add")
@network_option
@click.argument("file", type=_in)
@click.option("--direction", "direction_file", required=True, type=_in,
              help="Directions file ('directions' [K, w_dim] or [K, num_ws, w_dim]; `stylegan latent diff` "
                   "output, `stylegan directions` output).")
@click.option("--index", "direction_index", default="0", show_default=True,
              help="Which direction of the file: its index or its name.")
@click.option("--alpha", default="1", show_default=True,
              help="Strength; a comma list (-3,0,3) writes one latent per value for every input latent.")
@click.option("--layers", default=None, help="Apply only on these layers (default: all).")
@output_option
def add(network, file, direction_file, direction_index, alpha, layers, output):
    """w + alpha * direction, on all or some layers."""
    from ..errors import UserInputError
    from ..latent.arithmetic import add_direction
    from ..latent.io import load_directions, save_ws
    G = _model(network)
    ws = _read(file, G)
    d = load_directions(direction_file, w_dim=ws.shape[2], num_ws=ws.shape[1])
    if direction_index.isdigit():
        k = int(direction_index)
    elif direction_index in d["names"]:
        k = d["names"].index(direction_index)
    else:
        raise UserInputError(f"{direction_file.name} has no direction {direction_index!r} "
                             f"(names: {', '.join(d['names'])})")
    if not 0 <= k < len(d["directions"]):
        raise UserInputError(f"{direction_file.name} holds {len(d['directions'])} direction(s); index {k} is out of range")
    layer_idx = _layers(layers, G, ws.shape[1])
    if layer_idx is None and d.get("layers") is not None:
        layer_idx = [int(i) for i in d["layers"]]
    alphas = _floats(alpha, "alpha")
    out = add_direction(ws, d["directions"][k], alphas, layer_idx)
    labels = [f"{i}:{a:g}" for i in range(len(ws)) for a in alphas]
    path = save_ws(output, out, labels=labels, alpha=alphas)
    echo_done(f"wrote {len(out)} latent(s) to {path}")


@latent.command("average")
@network_option
@click.argument("files", nargs=-1, required=True, type=_in)
@click.option("--weights", default=None, help="One weight per latent (comma list), default equal.")
@output_option
def average(network, files, weights, output):
    """The mean of every latent in FILES (e.g. several projections of one face)."""
    import numpy as np

    from ..latent.arithmetic import average_ws
    from ..latent.io import save_ws
    G = _model(network)
    arrays = [_read(p, G) for p in files]
    _same_shape(arrays, list(files))
    ws = np.concatenate(arrays)
    out = average_ws(ws, _floats(weights, "weights") if weights else None)
    path = save_ws(output, out, labels=["average"])
    echo_done(f"wrote the average of {len(ws)} latent(s) to {path}")


@latent.command("diff")
@network_option
@click.argument("source", type=_in)
@click.argument("target", type=_in)
@click.option("--normalize", is_flag=True, help="Scale to unit length per layer (alpha = distance in W).")
@click.option("--name", default=None, help="Name stored with the direction.")
@output_option
def diff(network, source, target, normalize, name, output):
    """The direction from SOURCE to TARGET (their means), saved as a directions file for `latent add`."""
    from ..latent.arithmetic import difference
    from ..latent.io import save_directions
    G = _model(network)
    a, b = _read(source, G), _read(target, G)
    _same_shape([a, b], [source, target])
    d = difference(a, b, normalize=normalize)
    path = save_directions(output, d[None], method="difference",
                           names=[name or f"{source.stem}->{target.stem}"])
    echo_done(f"wrote the direction {source.stem} -> {target.stem} to {path}")


@latent.command("mix")
@network_option
@click.argument("row_file", type=_in)
@click.argument("col_file", type=_in)
@click.option("--layers", required=True, help="Layers taken from COL_FILE: coarse, middle, fine (need --network) "
                                              "or ws indices/ranges.")
@output_option
def mix(network, row_file, col_file, layers, output):
    """ROW_FILE's latents with COL_FILE's on --layers (every row with every column, row-major)."""
    from ..latent.io import save_ws
    from ..latent.mixing import mix_ws
    G = _model(network)
    rows, cols = _read(row_file, G), _read(col_file, G)
    _same_shape([rows, cols], [row_file, col_file])
    out = mix_ws(rows[:, None], cols[None], _layers(layers, G, rows.shape[1]))
    labels = [f"{r}-{c}" for r in range(len(rows)) for c in range(len(cols))]
    path = save_ws(output, out.reshape(-1, *rows.shape[1:]), labels=labels)
    echo_done(f"wrote {len(labels)} mixed latent(s) to {path}")


@latent.command("lerp")
@network_option
@click.argument("file_a", type=_in)
@click.argument("file_b", type=_in)
@click.option("--t", "t_values", default="0.5", show_default=True, help="Position(s) between A (0) and B (1); "
                                                                      "a comma list writes one latent per value.")
@output_option
def lerp(network, file_a, file_b, t_values, output):
    """Points on the straight line from A to B in W (beyond it for t < 0 or t > 1)."""
    from ..latent.arithmetic import interpolate_ws
    from ..latent.io import save_ws
    G = _model(network)
    a, b = _read(file_a, G), _read(file_b, G)
    _same_shape([a, b], [file_a, file_b])
    ts = _floats(t_values, "t")
    out = interpolate_ws(a, b, ts)
    path = save_ws(output, out, t=ts)
    echo_done(f"wrote {len(out)} latent(s) to {path}")


@latent.command("truncate")
@network_option
@click.argument("file", type=_in)
@click.option("--psi", type=float, required=True, help="Truncation psi (1 = unchanged, 0 = the average w).")
@click.option("--layers", default=None, help="Truncate only these layers (default: all).")
@output_option
def truncate(network, file, psi, layers, output):
    """Pull latents towards the model's average w: w_avg + psi * (w - w_avg)."""
    from ..latent.arithmetic import truncate_ws
    from ..latent.io import save_ws
    from ..latent.sampling import GenerationRequest
    G = _model(network, required=True)
    GenerationRequest(G, truncation_psi=psi)                 # checks psi
    ws = _read(file, G)
    out = truncate_ws(ws, G.mapping.w_avg, psi, _layers(layers, G, G.num_ws))
    path = save_ws(output, out, psi=psi)
    echo_done(f"wrote {len(out)} latent(s) to {path}")
