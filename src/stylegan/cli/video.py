"""``stylegan video``: interpolation videos between seeds or saved latents (mp4 / gif), streamed."""

from __future__ import annotations

from pathlib import Path

import click

from .common import (batch_option, canvas_options, class_option, compile_option, device_option, echo_canvas_note,
                     echo_done, load_G, network_option, noise_mode_option, option, parse_pair, precision_options,
                     transform_options, truncation_options)


@click.command()
@network_option
@click.option("--seeds", default=None, metavar="SEEDS", help="Keyframe seeds in order: '0-5', '3,7,1'.")
@click.option("--ws", "ws_files", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Keyframe latents from an .npz file (projections, --save-ws output); repeatable, in order.")
@click.option("--interp", "interpolation", type=click.Choice(["cubic", "lerp", "slerp"]), default="cubic",
              show_default=True, help="cubic: spline in W; lerp: straight lines in W; slerp: great circles in Z "
                                      "(seeds only).")
@click.option("--loop/--no-loop", default=True, show_default=True,
              help="Return to the first keyframe so the video repeats seamlessly.")
@click.option("--easing", type=click.Choice(["linear", "smoothstep", "sine", "cubic"]), default="linear",
              show_default=True, help="Timing inside each transition (all but linear pause at keyframes).")
@click.option("--transition-frames", "--w-frames", "frames_per_transition", type=click.IntRange(min=1),
              default=None, help="Frames per transition (default 120).")
@click.option("--frames", "num_frames", type=click.IntRange(min=1), default=None,
              help="Total frames instead of --transition-frames.")
@click.option("--fps", type=float, default=None, help="Frames per second (default 60 for mp4, 25 for gif).")
@click.option("--grid", "grid_spec", default="1x1", show_default=True, metavar="RxC",
              help="R rows x C columns of independent walks (keyframes dealt as in NVIDIA's gen_video.py).")
@option("--keyframes", "num_keyframes", aliases=("--num-keyframes",), type=click.IntRange(min=1), default=None,
              help="Keyframes per walk (default: number of latents // grid cells; latents are reused cyclically).")
@click.option("--shuffle-seed", type=int, default=None, help="Shuffle the keyframes dealt to the grid cells.")
@truncation_options
@class_option()
@noise_mode_option()
@transform_options("every frame")
@click.option("--translate-anim", default=None, metavar="X,Y",
              help="StyleGAN3: pan by X,Y over the video (out and back in a loop).")
@click.option("--rotate-anim", type=float, default=0.0, metavar="DEG",
              help="StyleGAN3: turn by DEG degrees over the video (360 loops seamlessly).")
@canvas_options
@click.option("--crf", type=click.IntRange(0, 51), default=18, show_default=True,
              help="H.264 quality (lower = better, 18 = visually lossless).")
@click.option("--lossless", is_flag=True,
              help="Bit-exact RGB H.264 (libx264rgb, qp 0): large files for further processing; "
                   "plays in ffmpeg/VLC/mpv, not in browsers.")
@batch_option()
@device_option
@precision_options
@compile_option
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Video file: .mp4 (.mov, .mkv) for H.264 or .gif.")
def video(network, seeds, ws_files, interpolation, loop, easing, frames_per_transition, num_frames, fps, grid_spec,
          num_keyframes, shuffle_seed, truncation_psi, truncation_cutoff, class_idx, noise_mode, translate, rotate,
          translate_anim, rotate_anim, size, extension, crf, lossless, batch_size, device, precision, compile_synthesis, output: Path):
    """Render an interpolation video through keyframe latents.

    A walk through K keyframes with N frames per transition has (K-1)*N + 1 frames and ends on
    the last keyframe; a loop (the default) has K*N frames and plays seamlessly on repeat.

    \b
    Examples:
      stylegan video --network ffhq.pkl --seeds 0-7 --trunc 0.7 -o walk.mp4
      stylegan video --network ffhq.pkl --ws a.npz --ws b.npz --interp lerp --no-loop --easing sine -o ab.mp4
      stylegan video --network ffhq.pkl --seeds 0-31 --grid 2x4 --keyframes 4 -o grid.mp4
      stylegan video --network sg3.pkl --seeds 5 --frames 120 --rotate-anim 360 -o spin.gif
      stylegan video --network sg3.pkl --seeds 0-3 --size 1920x1080 --translate-anim 1,0 -o pan.mp4
    """
    from ..api import video_frames
    from ..errors import UserInputError
    from ..latent.sampling import parse_canvas
    from ..render.images import parse_grid
    from ..render.video import check_video_path

    if frames_per_transition is not None and num_frames is not None:
        raise UserInputError("give --transition-frames or --frames, not both")
    keyframes = ([seeds] if seeds else []) + [Path(p) for p in ws_files]
    if not keyframes:
        raise UserInputError("give keyframes: --seeds (e.g. 0-5) and/or --ws FILE.npz")
    grid = parse_grid(grid_spec)
    options = dict(interpolation=interpolation, loop=loop, easing=easing,
                   frames_per_transition=frames_per_transition, num_frames=num_frames, grid=grid,
                   num_keyframes=num_keyframes, shuffle_seed=shuffle_seed, truncation_psi=truncation_psi,
                   truncation_cutoff=truncation_cutoff, class_idx=class_idx, noise_mode=noise_mode,
                   translate=parse_pair(translate, "translate"), rotate=rotate,
                   translate_anim=parse_pair(translate_anim, "translate-anim"), rotate_anim=rotate_anim,
                   canvas=parse_canvas(size), extension=extension, batch_size=batch_size)
    output = check_video_path(output)
    G, _, _ = load_G(network, device, precision, compile_synthesis)
    plan = video_frames(G, _items(keyframes), **options)
    if plan.walk.num_keyframes == 1 and not rotate_anim and options["translate_anim"] == (0.0, 0.0):
        raise UserInputError("one keyframe per walk makes a still video: give two or more latents (e.g. --seeds "
                             "1-2), or move it with --rotate-anim/--translate-anim (StyleGAN3)")
    echo_canvas_note(plan.request)
    path = plan.save(output, fps=fps, crf=crf, lossless=lossless, show_progress=True)
    w, h = plan.frame_size
    echo_done(f"wrote {path} ({len(plan)} frames, {w}x{h}, {'loop' if loop else 'walk'} through "
              f"{plan.walk.num_keyframes} keyframe(s) per cell)")


def _items(keyframes: list) -> list:
    """'0-3,7' and paths -> one flat list of seed specs and paths, in order."""
    out = []
    for k in keyframes:
        out.extend(k.split(",") if isinstance(k, str) else [k])
    return out
