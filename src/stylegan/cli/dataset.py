"""``stylegan dataset``: images (folder or zip) -> training dataset (zip or folder)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .common import Resolution


@click.command()
@click.option("--source", required=True, type=click.Path(path_type=Path), help="Folder or zip of images.")
@click.option("--dest", required=True, type=click.Path(path_type=Path), help="Output: NAME.zip or a folder.")
@click.option("--resolution", type=Resolution(), default=None, metavar="N|WxH",
              help="Output size (powers of two): N for N x N, or WxH for a non-square model (up to 4:1, "
                   "e.g. 512x256). Default: the size of the first image.")
@click.option("--width", type=click.IntRange(min=1), default=None, hidden=True, help="NVIDIA's: --resolution.")
@click.option("--height", type=click.IntRange(min=1), default=None, hidden=True, help="NVIDIA's: --resolution.")
@click.option("--transform", type=click.Choice(["center-crop", "center-crop-wide", "pad", "none"]),
              default="center-crop", show_default=True,
              help="How to bring images to the output's aspect (square, or W:H): crop the centre, pad around, "
                   "crop to --aspect and letterbox, or none (images must have it already).")
@click.option("--aspect", type=float, default=2.0, show_default=True,
              help="Width/height kept by center-crop-wide (letterboxed into the output).")
@click.option("--resize-filter", type=click.Choice(["lanczos", "box", "bicubic", "bilinear", "hamming", "nearest"]),
              default="lanczos", show_default=True)
@click.option("--mode", type=click.Choice(["rgb", "gray", "rgba"]), default="rgb", show_default=True,
              help="Channels of the dataset.")
@click.option("--background", default="white", show_default=True,
              help="Colour behind transparent pixels (and of padding): name, #rrggbb or R,G,B.")
@click.option("--labels", type=click.Choice(["auto", "folders", "file", "none"]), default="auto",
              show_default=True, help="Class labels: the source's dataset.json (file), first-level "
                                      "sub-folder names (folders), either (auto), or none.")
@click.option("--max-images", type=int, default=None, help="Use at most this many images.")
@click.option("--workers", type=int, default=None, help="Decoding threads (default: up to 4).")
@click.option("--max-pixels", type=click.IntRange(min=1), default=8192 * 8192, show_default=True,
              help="Skip (and report) images larger than this many pixels (width x height), before decoding them: "
                   "a small file can decode to gigabytes.")
@click.option("--overwrite", is_flag=True, help="Replace an existing destination.")
def dataset(source, dest, resolution, width, height, transform, aspect, resize_filter, mode, background, labels, max_images,
            workers, max_pixels, overwrite):
    """Convert a folder or zip of images into a training dataset (NVIDIA's layout).

    Unreadable or unsuitable files are skipped and listed in DEST-report.json.
    """
    from ..data.dataset_tool import make_dataset
    resolution = _resolution(resolution, width, height)
    report = make_dataset(source, dest, resolution=resolution, transform=transform, resize_filter=resize_filter,
                          mode=mode, background=background, labels=labels, max_images=max_images, aspect=aspect,
                          workers=workers, overwrite=overwrite, max_pixels=max_pixels)
    classes = f", {len(report.class_names)} classes" if report.class_names else ""
    click.echo(f"wrote {report.written} images ({report.size_text}, {report.channels} "
               f"channel(s){classes}) to {report.dest}", err=True)
    if report.skipped:
        report_path = dest.with_name(dest.stem + "-report.json")
        report_path.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
        click.echo(f"skipped {len(report.skipped)} file(s), listed in {report_path}:", err=True)
        for name, reason in report.skipped[:10]:
            click.echo(f"  {name}: {reason}", err=True)
        if len(report.skipped) > 10:
            click.echo(f"  ... and {len(report.skipped) - 10} more", err=True)


def _resolution(resolution, width: int | None, height: int | None):
    """``--resolution`` (N, or (H, W)), or StyleGAN2-ADA's ``--width``/``--height`` (one of them: a square;
    both: that rectangle), which must agree with it where both are given."""
    from ..errors import UserInputError
    if width is None and height is None:
        return resolution
    h, w = height or width, width or height
    flags = (h, w) if h != w else h
    if resolution is not None and resolution != flags:
        shown = (lambda s: f"{s[1]}x{s[0]}" if isinstance(s, tuple) else f"{s}x{s}")
        raise UserInputError(f"--resolution {shown(resolution)} and --width/--height {shown(flags)} disagree: "
                             f"give one size")
    return flags
