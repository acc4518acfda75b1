"""``stylegan export``: a generator as ONNX or TorchScript, checked against our network."""

from __future__ import annotations

from pathlib import Path

import click

from .common import network_option, trunc_cutoff_option, trunc_option


@click.command()
@network_option
@click.option("--format", "fmt", type=click.Choice(["onnx", "torchscript"]), default="onnx", show_default=True,
              help="File format.")
@click.option("--out", "dest", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="File to write (e.g. generator.onnx, generator.pt).")
@click.option("--what", type=click.Choice(["generator", "synthesis", "mapping"]), default="generator",
              show_default=True, help="generator: z[,c],psi -> img; mapping: z[,c],psi -> ws; synthesis: ws -> img.")
@trunc_option("Bake this truncation psi into the file (default: psi is an input of the model).", default=None)
@trunc_cutoff_option()
@click.option("--opset", type=click.IntRange(min=13), default=None, help="ONNX opset (default 18).")
@click.option("--batch", type=click.Choice(["dynamic", "fixed"]), default="dynamic", show_default=True,
              help="dynamic: any batch size; fixed: batch 2 only (some runtimes prefer static shapes).")
@click.option("--no-verify", is_flag=True, help="Skip running the exported file against our network.")
def export(network, fmt, dest: Path, what, truncation_psi, truncation_cutoff, opset, batch, no_verify):
    """Export a model's generator to ONNX (checked with onnxruntime) or TorchScript.

    Noise is the model's constant noise, so the exported model is deterministic. Output images
    are floats in about [-1, 1] (NCHW); 8-bit pixels are clip(img * 127.5 + 128, 0, 255).

    \b
    Examples:
      stylegan export --network ffhq.pkl --format onnx --out ffhq.onnx
      stylegan export --network ffhq.pkl --format torchscript --trunc 0.7 --out ffhq.pt
      stylegan export --network ffhq.pkl --what synthesis --out synthesis.onnx
    """
    from ..checkpoints import load_generator
    from ..checkpoints.export import export_generator
    G = load_generator(network, device="cpu")
    result = export_generator(G, dest, format=fmt, what=what, truncation_psi=truncation_psi,
                              truncation_cutoff=truncation_cutoff, opset=opset, dynamic_batch=(batch == "dynamic"),
                              verify=not no_verify)
    check = "" if result.max_abs_diff is None else f"; max |diff| vs ours {result.max_abs_diff:.2g}"
    click.echo(f"wrote {result.path} ({result.format}: {', '.join(result.inputs)} -> {result.output}{check})",
               err=True)
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
