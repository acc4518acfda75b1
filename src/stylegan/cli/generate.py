"""``stylegan generate``: images by seed (as NVIDIA's gen_images.py writes them) or from saved latents."""

from __future__ import annotations

from pathlib import Path

import click

from .common import (batch_option, class_option, compile_option, device_option, echo_done, ensure_outdir, load_G,
                     network_option, noise_mode_option, outdir_option, parse_pair, precision_options,
                     transform_options, truncation_options)


@click.command()
@network_option
@click.option("--seeds", default=None, help="Seeds: '0-9,12' (ranges inclusive).")
@click.option("--random", "random_count", type=int, default=None, help="N random seeds instead of --seeds.")
@click.option("--ws", "--projected-w", "ws_files", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Render the latents in this .npz file (--save-ws output, a projection, `stylegan latent` "
                   "results) instead of seeds. Repeatable.")
@truncation_options
@class_option()
@noise_mode_option("'random' noise is seeded by each image's seed, so files stay reproducible.")
@transform_options("the image")
@click.option("--grid", "grid_spec", default=None, metavar="RxC",
              help="Write all images as one grid.png of R rows and C columns instead of one file each "
                   "(row by row; cells beyond the last image stay black, and the command says so).")
@click.option("--save-ws", is_flag=True, help="Also write each image's latents: seed0042.npz beside seed0042.png.")
@batch_option()
@device_option
@precision_options
@compile_option
@outdir_option
def generate(network, seeds, random_count, ws_files, truncation_psi, truncation_cutoff, class_idx, noise_mode,
             translate, rotate, grid_spec, save_ws, batch_size, device, precision, compile_synthesis, outdir: Path):
    """Generate one PNG per seed (OUTDIR/seed0042.png) or per saved latent (OUTDIR/<file>.png).

    \b
    Examples:
      stylegan generate --network ffhq.pkl --seeds 0-7 --trunc 0.7 --outdir out
      stylegan generate --network ffhq.pkl --random 16 --grid 4x4 --outdir out
      stylegan generate --network ffhq.pkl --ws out/projected_w.npz --outdir out
    """
    from ..errors import UserInputError
    from ..latent.io import save_ws as write_ws
    from ..latent.sampling import GenerationRequest
    from ..latent.seeds import parse_seeds, random_seeds, saved_label
    from ..render.images import make_grid, parse_grid, save_image

    given = [x is not None for x in (seeds, random_count)] + [bool(ws_files)]
    if sum(given) != 1:
        raise UserInputError("give exactly one of --seeds (e.g. 0-9), --random N or --ws FILE")
    if seeds is not None:
        seed_list = parse_seeds(seeds)
    elif random_count is not None:
        seed_list = random_seeds(random_count)
    else:
        seed_list = None
    if save_ws and ws_files:
        raise UserInputError("--save-ws saves the latents of seeds; with --ws they are already in the files")
    grid = parse_grid(grid_spec) if grid_spec else None
    if grid and seed_list is not None and len(seed_list) > grid[0] * grid[1]:
        raise UserInputError(f"a {grid[0]}x{grid[1]} grid holds {grid[0] * grid[1]} images, "
                             f"got {len(seed_list)} seeds")
    G, _, _ = load_G(network, device, precision, compile_synthesis)
    request = GenerationRequest(G, truncation_psi, truncation_cutoff, class_idx, noise_mode,
                                parse_pair(translate, "translate"), rotate)
    lat = request.seed_latents(seed_list) if seed_list is not None else request.latents(list(ws_files))
    if grid and len(lat) > grid[0] * grid[1]:
        raise UserInputError(f"a {grid[0]}x{grid[1]} grid holds {grid[0] * grid[1]} images, got {len(lat)}")
    ensure_outdir(outdir)
    if random_count is not None:
        echo_done("random seeds: " + ",".join(str(s) for s in seed_list))
    images = request.images(lat.ws, noise_seeds=lat.noise_seeds, batch_size=batch_size, show_progress=True)
    if grid:
        save_image(make_grid(images, *grid), outdir / "grid.png")
        if len(images) < grid[0] * grid[1]:
            empty = grid[0] * grid[1] - len(images)
            echo_done(f"note: {len(images)} image(s) in a {grid[0]}x{grid[1]} grid: the last {empty} cell(s) "
                      f"are left black")
    else:
        for image, name in zip(images, lat.names):
            save_image(image, outdir / f"{name}.png")
    if save_ws:
        for i, (name, seed) in enumerate(zip(lat.names, lat.seeds)):
            extra = {"seeds": [seed], "psi": truncation_psi, "z": lat.z[i:i + 1]}
            if class_idx is not None:
                extra["c"] = saved_label(G.c_dim, class_idx)
            write_ws(outdir / f"{name}.npz", lat.ws[i:i + 1], **extra)
    what = "grid.png" if grid else f"{len(images)} image(s)"
    echo_done(f"wrote {what}{' and latents' if save_ws else ''} to {outdir}")
