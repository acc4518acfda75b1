"""``stylegan generate``: images by seed, as NVIDIA's gen_images.py writes them."""

from __future__ import annotations

from pathlib import Path

import click

from .common import (device_option, echo_done, ensure_outdir, load_G, network_option, outdir_option,
                     parse_pair, pass_errors, precision_options)


@click.command()
@network_option
@click.option("--seeds", default=None, help="Seeds: '0-9,12' (ranges inclusive).")
@click.option("--random", "random_count", type=int, default=None, help="N random seeds instead of --seeds.")
@click.option("--trunc", "truncation_psi", type=float, default=1.0, show_default=True, help="Truncation psi.")
@click.option("--trunc-cutoff", "truncation_cutoff", type=int, default=None,
              help="Truncate only the first N layers (default: all).")
@click.option("--class", "class_idx", type=int, default=None, help="Class label (conditional models).")
@click.option("--noise-mode", type=click.Choice(["const", "random", "none"]), default="const", show_default=True)
@click.option("--translate", default=None, metavar="X,Y", help="StyleGAN3: translate the image.")
@click.option("--rotate", type=float, default=0.0, help="StyleGAN3: rotate the image (degrees).")
@click.option("--batch", "batch_size", type=click.IntRange(min=1), default=8, show_default=True)
@device_option
@precision_options
@outdir_option
@pass_errors
def generate(network, seeds, random_count, truncation_psi, truncation_cutoff, class_idx, noise_mode, translate,
             rotate, batch_size, device, precision, outdir: Path):
    """Generate one PNG per seed: OUTDIR/seed0000.png, ..."""
    from ..latent.sampling import check_truncation, generate_images
    from ..latent.seeds import class_labels, parse_seeds, random_seeds
    from ..render.images import save_image
    from ..errors import UserInputError

    if (seeds is None) == (random_count is None):
        raise UserInputError("give either --seeds (e.g. 0-9) or --random N")
    seed_list = parse_seeds(seeds) if seeds is not None else random_seeds(random_count)
    tx_ty = parse_pair(translate, "translate")
    G, dev, _ = load_G(network, device, precision)
    check_truncation(G, truncation_psi, truncation_cutoff)
    class_labels(G.c_dim, class_idx, 1)  # validate before any work
    ensure_outdir(outdir)
    result = generate_images(G, seed_list, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                             class_idx=class_idx, noise_mode=noise_mode, translate=tx_ty, rotate=rotate,
                             batch_size=batch_size, show_progress=True)
    for seed, img in zip(result.seeds, result.images):
        save_image(img, outdir / f"seed{seed:04d}.png")
    echo_done(f"wrote {len(result.seeds)} image(s) to {outdir}")
