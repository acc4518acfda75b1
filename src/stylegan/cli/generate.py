"""``stylegan generate``: images by seed (as NVIDIA's gen_images.py writes them) or from saved latents."""

from __future__ import annotations

from pathlib import Path

import click

from .common import (batch_option, canvas_options, class_option, compile_option, device_option, echo_canvas_note,
                     echo_done, ensure_outdir, load_G, network_option, noise_mode_option, outdir_option, parse_pair,
                     precision_options, torchrun_shared, transform_options, truncation_options)


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
@canvas_options
@click.option("--grid", "grid_spec", default=None, metavar="RxC",
              help="Write all images as one grid.png of R rows and C columns instead of one file each "
                   "(row by row; cells beyond the last image stay black, and the command says so).")
@click.option("--save-ws", is_flag=True, help="Also write each image's latents: seed0042.npz beside seed0042.png.")
@batch_option()
@device_option
@precision_options
@compile_option
@outdir_option
@torchrun_shared
def generate(network, seeds, random_count, ws_files, truncation_psi, truncation_cutoff, class_idx, noise_mode,
             translate, rotate, size, extension, grid_spec, save_ws, batch_size, device, precision, compile_synthesis,
             outdir: Path):
    """Generate one PNG per seed (OUTDIR/seed0042.png) or per saved latent (OUTDIR/<file>.png).
    Under torchrun the processes share the batches (same files as one process).

    \b
    Examples:
      stylegan generate --network ffhq.pkl --seeds 0-7 --trunc 0.7 --outdir out
      stylegan generate --network ffhq.pkl --random 16 --grid 4x4 --outdir out
      stylegan generate --network ffhq.pkl --ws out/projected_w.npz --outdir out
      stylegan generate --network sg3.pkl --seeds 0-3 --size 1920x1080 --outdir out
    """
    from .. import distributed
    from ..errors import UserInputError
    from ..latent.sampling import GenerationRequest, parse_canvas
    from ..latent.seeds import parse_seeds, random_seeds
    from ..render.images import parse_grid

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
    canvas = parse_canvas(size)
    grid = parse_grid(grid_spec) if grid_spec else None
    if grid and seed_list is not None and len(seed_list) > grid[0] * grid[1]:
        raise UserInputError(f"a {grid[0]}x{grid[1]} grid holds {grid[0] * grid[1]} images, "
                             f"got {len(seed_list)} seeds")
    shard = distributed.current_shard()
    seed_list = distributed.broadcast_object(shard, seed_list)    # --random: process 0's seeds everywhere
    G, _, _ = load_G(network, device, precision, compile_synthesis)
    request = GenerationRequest(G, truncation_psi, truncation_cutoff, class_idx, noise_mode,
                                parse_pair(translate, "translate"), rotate, canvas=canvas, extension=extension)
    lat = request.seed_latents(seed_list) if seed_list is not None else request.latents(list(ws_files))
    if grid and len(lat) > grid[0] * grid[1]:
        raise UserInputError(f"a {grid[0]}x{grid[1]} grid holds {grid[0] * grid[1]} images, got {len(lat)}")
    ensure_outdir(outdir)
    if random_count is not None and shard.is_main:
        echo_done("random seeds: " + ",".join(str(s) for s in seed_list))
    if shard.is_main:
        echo_canvas_note(request)
    _write_outputs(request, lat, shard, batch_size, grid, save_ws, truncation_psi, class_idx, outdir)
    distributed.barrier()
    what = "grid.png" if grid else f"{len(lat)} image(s)"
    if shard.is_main:
        echo_done(f"wrote {what}{' and latents' if save_ws else ''} to {outdir}"
                  + (f" ({shard.world} processes)" if shard.world > 1 else ""))


def _render_batches(request, lat, batch_size: int, shard, everything: bool = False):
    """(first index, uint8 images) of each batch of ``lat`` this process renders: batch ``b`` (the
    one-process batches) on process ``b mod world``. ``everything``: process 0 gets every batch, in order."""
    import numpy as np
    import torch

    from .. import distributed
    from ..progress import progress

    def batch(b: int):
        rows = slice(b * batch_size, (b + 1) * batch_size)
        return request.images(lat.ws[rows], noise_seeds=lat.noise_seeds[rows], batch_size=batch_size)
    num = -(-len(lat) // batch_size)
    if not everything:
        for b in progress(shard.batches(num), desc="generating", unit="batch", disable=not shard.is_main):
            yield b * batch_size, batch(b)
        return
    G = request.G
    parts = distributed.sharded_map(lambda b: torch.from_numpy(batch(b)), num, shard, dtype=torch.uint8)
    height, width = request.image_size
    images = [p.numpy().reshape(-1, height, width, G.img_channels) for p in parts]
    if shard.is_main:
        yield 0, np.concatenate(images)


def _write_outputs(request, lat, shard, batch_size, grid, save_ws, truncation_psi, class_idx, outdir: Path) -> None:
    """Each process writes the images it rendered; process 0 writes the grid and the latents."""
    from ..latent.io import save_ws as write_ws
    from ..latent.seeds import saved_label
    from ..render.images import make_grid, save_image

    for start, images in _render_batches(request, lat, batch_size, shard, everything=bool(grid)):
        if grid:
            save_image(make_grid(images, *grid), outdir / "grid.png")
            if len(images) < grid[0] * grid[1]:
                empty = grid[0] * grid[1] - len(images)
                echo_done(f"note: {len(images)} image(s) in a {grid[0]}x{grid[1]} grid: the last {empty} cell(s) "
                          f"are left black")
        else:
            for image, name in zip(images, lat.names[start:start + len(images)]):
                save_image(image, outdir / f"{name}.png")
    if save_ws and shard.is_main:
        for i, (name, seed) in enumerate(zip(lat.names, lat.seeds)):
            extra = {"seeds": [seed], "psi": truncation_psi, "z": lat.z[i:i + 1]}
            if class_idx is not None:
                extra["c"] = saved_label(request.G.c_dim, class_idx)
            write_ws(outdir / f"{name}.npz", lat.ws[i:i + 1], **extra)
