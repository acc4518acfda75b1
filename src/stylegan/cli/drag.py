"""``stylegan drag``: move points of a generated or projected image to targets (DragGAN-style editing,
:mod:`stylegan.latent.drag`)."""

from __future__ import annotations

import re
from pathlib import Path

import click

from .common import (
    class_option,
    device_option,
    echo_done,
    ensure_outdir,
    load_G,
    network_option,
    noise_mode_option,
    outdir_option,
    trunc_option,
)

_NUMBER = r"\s*([-+]?(?:\d+\.?\d*|\.\d+))\s*"
_PAIR = re.compile(rf"{_NUMBER},{_NUMBER}>{_NUMBER},{_NUMBER}")
MAX_POINTS = 64


def parse_points(spec: str) -> tuple[list[list[float]], list[list[float]]]:
    """``"x1,y1>x2,y2;x3,y3>x4,y4"`` -> (handles, targets) in image pixels."""
    from ..errors import UserInputError
    parts = [p for p in str(spec).split(";") if p.strip()]
    if not parts:
        raise UserInputError("--points is empty; give handle>target pairs like '10,12>14,12;20,8>20,4'")
    if len(parts) > MAX_POINTS:
        raise UserInputError(f"--points gives {len(parts)} pairs; at most {MAX_POINTS}")
    handles, targets = [], []
    for part in parts:
        m = _PAIR.fullmatch(part)
        if m is None:
            raise UserInputError(f"--points: cannot read {part.strip()!r}; each pair is 'X,Y>X,Y' "
                                 f"(handle > target, image pixels), pairs separated by ';'")
        x1, y1, x2, y2 = (float(v) for v in m.groups())
        handles.append([x1, y1])
        targets.append([x2, y2])
    return handles, targets


def read_mask(path: Path, shape: tuple[int, int]):
    """A greyscale PNG (white = may change, black = keep) as float32 [H, W] in [0, 1], exactly the image size."""
    import numpy as np

    from ..errors import UserInputError
    from ..render.images import load_image
    mask = load_image(path, channels=1)[:, :, 0]
    if mask.shape != tuple(shape):
        raise UserInputError(f"--mask {path.name} is {mask.shape[1]}x{mask.shape[0]}; it must be the image size, "
                             f"{shape[1]}x{shape[0]}")
    return mask.astype(np.float32) / 255


def _start(G, seed, projected_w, index, truncation_psi, class_idx, noise_mode):
    """``(ws [1, num_ws, w_dim], noise maps or None, label)`` of ``--seed`` or ``--projected-w``."""
    import torch

    from ..errors import UserInputError
    from ..latent.io import load_npz_extra, load_ws
    from ..latent.projection import noise_from_npz
    from ..latent.sampling import GenerationRequest
    if (seed is None) == (projected_w is None):
        raise UserInputError("give exactly one of --seed S or --projected-w FILE")
    if seed is not None:
        request = GenerationRequest(G, truncation_psi, class_idx=class_idx, noise_mode=noise_mode)
        return torch.from_numpy(request.seed_latents([seed]).ws), None, f"seed {seed}"
    ws = load_ws(projected_w, G.num_ws, G.w_dim)
    if not 0 <= index < len(ws):
        raise UserInputError(f"--index {index} is out of range: {projected_w.name} holds {len(ws)} latent(s)")
    noise = {k: v[index:index + 1] for k, v in noise_from_npz(load_npz_extra(projected_w), G).items()}
    return torch.from_numpy(ws[index:index + 1]), noise or None, projected_w.name


@click.command()
@network_option
@click.option("--seed", type=int, default=None, help="Start from the image of this seed.")
@click.option("--projected-w", "projected_w", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Start from a latent .npz instead (projected_w.npz, --save-ws output, a previous drag).")
@click.option("--index", type=click.IntRange(min=0), default=0, show_default=True,
              help="Which latent of --projected-w.")
@click.option("--points", required=True, metavar="'X,Y>X,Y;...'",
              help="Handle>target pairs in image pixels (0,0 = top-left pixel), separated by ';'.")
@click.option("--mask", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Greyscale PNG of the image size: white where the image may change, black where it is kept.")
@click.option("--steps", type=click.IntRange(min=1, max=100000), default=200, show_default=True,
              help="At most this many optimisation steps (stops earlier when every handle has arrived).")
@click.option("--layers", type=click.IntRange(min=1), default=None,
              help="Optimise the ws of the first N layers (default: those at <= 16x16, at most 1/4 of the image).")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Adam step size (default: 2e-3 at 256x256 and above, larger for small models).")
@click.option("--tolerance", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Stop when every handle is within this many pixels of its target.")
@click.option("--video", is_flag=True, help="Also write drag.mp4: the image at every step.")
@trunc_option("Truncation psi of --seed.")
@class_option()
@noise_mode_option("'random' noise is drawn once from --seed (0 with --projected-w) and held while dragging.")
@device_option
@outdir_option
def drag(network, seed, projected_w, index, points, mask, steps, layers, lr, tolerance, video, truncation_psi,
         class_idx, noise_mode, device, outdir: Path):
    """Drag handle points of an image to target points (Pan et al., "Drag Your GAN", 2023): optimises the
    image's w+ until every handle has arrived. Writes OUTDIR/start.png, OUTDIR/dragged.png and
    OUTDIR/dragged_w.npz (readable by generate --ws, edit, variations, drag --projected-w), and with --video
    OUTDIR/drag.mp4.

    \b
    Examples:
      stylegan drag --seed 3 --points '12,15>16,15' --outdir out
      stylegan drag --network ffhq.pkl --projected-w proj/projected_w.npz --points '300,420>300,380' \\
          --mask mouth.png --video --outdir out
    """
    from ..latent.drag import held_noise
    from ..latent.drag import drag as start_drag
    handles, targets = parse_points(points)
    G, _, _ = load_G(network, device)
    ws, noise, label = _start(G, seed, projected_w, index, truncation_psi, class_idx, noise_mode)
    mask_array = read_mask(mask, G.img_shape) if mask is not None else None
    noise = held_noise(G, noise_mode, noise, seed or 0)
    run = start_drag(G, ws, handles, targets, mask=mask_array, steps=steps, layers=layers, lr=lr,
                     tolerance=tolerance, noise_mode=noise_mode, noise=noise)          # checks every argument
    ensure_outdir(outdir)
    first, last = _follow(run, steps, outdir, video)
    _save(G, noise_mode, first, last, handles, targets, noise, label, outdir)
    where = ", ".join(f"{x:g},{y:g}" for x, y in last.points)
    state = "arrived" if last.done else f"stopped after {last.step} steps, {last.distances.max():.1f} px short"
    echo_done(f"{label}: handles at {where} ({state}); wrote start.png, dragged.png, dragged_w.npz"
              f"{', drag.mp4' if video else ''} to {outdir}")


def _follow(run, steps: int, outdir: Path, video: bool):
    """Iterate the drag with a progress bar, with ``video`` writing every step's frame."""
    from ..progress import progress
    from ..render.images import to_uint8
    from ..render.video import BackgroundVideos
    videos = BackgroundVideos([outdir / "drag.mp4"], fps=15) if video else None
    first = last = None
    try:
        bar = progress(total=steps, desc="dragging", unit="step")
        for last in run:
            first = first or last
            bar.update(1 if last.step else 0)
            bar.set_postfix(px=f"{last.distances.max():.1f}", refresh=False)
            if videos is not None:
                videos.put([to_uint8(last.image)[0]])
        bar.close()
    except BaseException:
        if videos is not None:
            videos.abort()
        raise
    if videos is not None:
        videos.close()
    return first, last


def _save(G, noise_mode: str, first, last, handles, targets, noise, label: str, outdir: Path) -> None:
    """start.png and dragged.png, drawn the way ``generate`` draws (so ``generate --ws dragged_w.npz`` gives
    the same pixels), and dragged_w.npz in the layout of projected_w.npz: ws/w, labels, the noise maps the
    drag held (if explicit), plus the handles, targets and where they ended."""
    import numpy as np

    from ..latent.io import save_ws
    from ..latent.projection import noise_to_npz
    from ..latent.sampling import GenerationRequest
    from ..render.images import save_image
    request = GenerationRequest(G, noise_mode=noise_mode)
    start, dragged = request.images(np.concatenate([first.ws.numpy(), last.ws.numpy()]), noise=noise)
    save_image(start, outdir / "start.png")
    save_image(dragged, outdir / "dragged.png")
    save_ws(outdir / "dragged_w.npz", last.ws, labels=[f"drag of {label}"],
            handles=np.asarray(handles, np.float32), targets=np.asarray(targets, np.float32),
            points=last.points, **noise_to_npz(noise or {}))
