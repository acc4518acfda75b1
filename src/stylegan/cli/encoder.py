"""``stylegan encoder train``: an image -> W+ encoder for any model, trained from the model's own samples."""

from __future__ import annotations

from pathlib import Path

import click

from .common import device_option, echo_done, network_option


@click.group()
def encoder() -> None:
    """Encoders: one forward pass from an image to the latent that draws it."""


@encoder.command("train")
@network_option
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The encoder file to write (.safetensors); its training state lives beside it.")
@click.option("--kimg", type=float, default=100, show_default=True, help="Train until this many thousand images.")
@click.option("--batch", type=click.IntRange(min=1), default=16, show_default=True, help="Images per step.")
@click.option("--lr", type=float, default=1e-3, show_default=True, help="Adam learning rate.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds every step's samples.")
@click.option("--data", type=click.Path(path_type=Path), default=None,
              help="Real images (a dataset zip or folder at the model's resolution) mixed into each batch.")
@click.option("--real-fraction", type=float, default=0.5, show_default=True,
              help="Share of each batch taken from --data.")
@click.option("--mirror", is_flag=True, help="--data: add x-flipped copies.")
@click.option("--latent-weight", type=float, default=1.0, show_default=True,
              help="Weight of the latent loss on generated images (their w is known).")
@click.option("--image-weight", type=float, default=1.0, show_default=True,
              help="Weight of the perceptual distance between the target and the image of the prediction.")
@click.option("--image-batch", type=click.IntRange(min=1), default=None,
              help="Images per step that get the image loss (default: all); the rest get only the latent loss, "
                   "which is cheaper.")
@click.option("--delta-weight", type=float, default=0.1, show_default=True,
              help="Weight of the e4e delta regulariser (keeps the result near W, where edits behave).")
@click.option("--delta-kimg", type=float, default=2.0, show_default=True,
              help="Unlock one more per-layer delta every this many kimg.")
@click.option("--snap-kimg", type=float, default=5.0, show_default=True, help="Write the training state every N kimg.")
@click.option("--resume", is_flag=True, help="Continue exactly from the training state beside --out.")
@click.option("--vgg", default=None, metavar="PATH|URL|nvidia",
              help="LPIPS VGG16 weights for the image loss (as `stylegan project --vgg`). Default: the no-download "
                   "loss on the model's own discriminator features.")
@click.option("--lpips-lin", default=None, metavar="PATH|URL", help="LPIPS linear-layer weights (with --vgg).")
@device_option
def train(network, out: Path, kimg, batch, lr, seed, data, real_fraction, mirror, latent_weight, image_weight,
          image_batch, delta_weight, delta_kimg, snap_kimg, resume, vgg, lpips_lin, device):
    """Train an encoder for a model from its own samples (no dataset needed); resumable.

    \b
    Examples:
      stylegan encoder train --out builtin-enc.safetensors --kimg 50
      stylegan encoder train --network ffhq.pkl --out ffhq-enc.safetensors --data ffhq256.zip --device cuda
      stylegan encoder train --network ffhq.pkl --out ffhq-enc.safetensors --resume     # after a stop
    """

    from ..checkpoints import load_network
    from ..data import ImageDataset
    from ..devices import pick_device
    from ..errors import UserInputError
    from ..perception.lpips import load_perceptual
    from ..train.encoder import EncoderTraining, EncoderTrainingOptions, state_path

    if out.suffix != ".safetensors":
        raise UserInputError(f"--out must be a .safetensors file, got {out.name}")
    state = state_path(out)
    if state.exists() and not resume:
        raise UserInputError(f"{state} exists (an unfinished or earlier run): continue it with --resume, "
                             f"or delete it to start afresh")
    opts = EncoderTrainingOptions(kimg=kimg, batch=batch, lr=lr, seed=seed, latent_weight=latent_weight,
                                  image_weight=image_weight, image_batch=image_batch, delta_weight=delta_weight, delta_kimg=delta_kimg,
                                  real_fraction=real_fraction if data is not None else 0.0, snap_kimg=snap_kimg)
    dev = pick_device(device)
    ckpt = load_network(network, which=("G_ema", "G", "D"))
    G = ckpt.generator().to(dev)
    loss = load_perceptual(vgg, lpips_lin, D=None if vgg else ckpt.D, device=dev)
    dataset = ImageDataset(data, mirror=mirror) if data is not None else None
    run = EncoderTraining(G, loss, out, opts, data=dataset, network_name=str(network or "builtin"))
    resumed = run.resume() if resume else False
    click.echo(f"{'resuming at ' + format(run.cur_nimg / 1000, '.3f') + ' kimg' if resumed else 'training'} an "
               f"encoder for {G.img_resolution}x{G.img_resolution} ({G.num_ws} ws of {G.w_dim}); "
               f"{sum(p.numel() for p in run.encoder.parameters()):,} parameters; loss: {loss.name}", err=True)
    result = run.run(show_progress=True)
    check = _held_out_check(G, result.encoder)
    echo_done(f"trained {result.cur_nimg / 1000:.3f} kimg ({result.sec_per_kimg:.1f} s/kimg on {dev}); {check}; "
              f"wrote {out}")


def _held_out_check(G, encoder) -> str:
    """Encoder PSNR on 16 samples no training step drew (a RandomState stream, not the training seeds)."""
    import numpy as np
    import torch

    from ..latent.inversion import encode
    from ..render.images import to_uint8

    device = next(G.parameters()).device
    z = torch.from_numpy(np.random.RandomState(2**31 - 1).randn(16, G.z_dim)).to(device, torch.float32)
    c = torch.eye(G.c_dim, device=device)[torch.arange(16, device=device) % G.c_dim] if G.c_dim else None
    with torch.no_grad():
        targets = to_uint8(G.synthesis(G.mapping(z, c), noise_mode="const"))
    res = encode(G, targets, encoder, c=c)
    return (f"held-out samples: encoder PSNR {res.psnr.mean():.2f} dB "
            f"(mean w start {res.initial_psnr.mean():.2f} dB)")
