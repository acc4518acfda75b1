"""``stylegan mix``: the style-mixing grid of the StyleGAN paper, as NVIDIA's style_mixing.py writes it."""

from __future__ import annotations

from pathlib import Path

import click

from .common import (batch_option, canvas_options, class_option, compile_option, device_option, echo_canvas_note,
                     echo_done, ensure_outdir, format_ranges, load_G, network_option, noise_mode_option, outdir_option,
                     precision_options, truncation_options)


@click.command()
@network_option
@click.option("--rows", required=True, metavar="SEEDS|FILE.npz",
              help="Row latents (source A: every layer but --styles): seeds '85,100,75' and/or .npz files.")
@click.option("--cols", required=True, metavar="SEEDS|FILE.npz",
              help="Column latents (source B: the --styles layers): seeds '55,821' and/or .npz files.")
@click.option("--styles", default="coarse", show_default=True, metavar="LAYERS",
              help="Layers taken from the column latent: coarse (4²-8²), middle (16²-32²), fine (64²-full), "
                   "combinations (coarse,fine), all, or ws indices/ranges (0-6, 8-).")
@truncation_options
@class_option()
@noise_mode_option()
@canvas_options
@click.option("--grid-only", is_flag=True, help="Write only grid.png, not the single images.")
@click.option("--save-ws", is_flag=True, help="Also write the mixed latents: ROW-COL.npz beside ROW-COL.png.")
@batch_option()
@device_option
@precision_options
@compile_option
@outdir_option
def mix(network, rows, cols, styles, truncation_psi, truncation_cutoff, class_idx, noise_mode, size, extension,
        grid_only, save_ws, batch_size, device, precision, compile_synthesis, outdir: Path):
    """Mix styles: image ROW-COL takes the --styles layers from COL and every other layer from ROW.

    Writes grid.png (top-left blank, first row = column images, first column = row images),
    ROW-COL.png for every pair and S-S.png for every unmixed latent, as NVIDIA's style_mixing.py.

    \b
    Examples:
      stylegan mix --network ffhq.pkl --rows 85,100,75 --cols 55,821,1789 --styles coarse --outdir mix
      stylegan mix --network ffhq.pkl --rows me.npz --cols 0-5 --styles fine --outdir mix
    """
    from ..latent.io import save_ws as write_ws
    from ..latent.mixing import layer_resolutions, parse_layers, render_style_mix
    from ..latent.sampling import GenerationRequest, parse_canvas
    from ..render.images import save_image

    canvas = parse_canvas(size)
    G, _, _ = load_G(network, device, precision, compile_synthesis)
    request = GenerationRequest(G, truncation_psi, truncation_cutoff, class_idx, noise_mode, canvas=canvas,
                                extension=extension)
    layers = parse_layers(styles, G)
    row, col = request.latents(rows), request.latents(cols)
    ensure_outdir(outdir)
    echo_canvas_note(request)
    res = render_style_mix(request, row.ws, col.ws, layers, row.labels, col.labels, batch_size=batch_size,
                           show_progress=True)
    count = 0
    if not grid_only:
        for name, img in res.items():
            save_image(img, outdir / f"{name}.png")
            count += 1
    if save_ws:
        for r, rl in enumerate(res.row_labels):
            for c, cl in enumerate(res.col_labels):
                write_ws(outdir / f"{rl}-{cl}.npz", res.mixed_ws[r, c][None], labels=[f"{rl}-{cl}"])
    save_image(res.grid, outdir / "grid.png")
    res_of = layer_resolutions(G)
    echo_done(f"styles {styles} = ws {format_ranges(layers)} ({res_of[layers[0]]}²-{res_of[layers[-1]]}²) from the "
              f"columns; wrote {'grid.png' if grid_only else f'grid.png and {count} images'} to {outdir}")

