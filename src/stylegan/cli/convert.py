"""``stylegan convert`` and ``stylegan info``: model files in, our safetensors format out."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("source", metavar="IN")
@click.argument("dest", metavar="OUT", type=click.Path(path_type=Path))
@click.option("--to", "target", type=click.Choice(["native", "rosinality"]), default="native", show_default=True,
              help="native: our .safetensors file or folder; rosinality: a stylegan2-pytorch .pt checkpoint.")
@click.option("--g-only", is_flag=True, help="Keep only G_ema (smallest file, enough for generation).")
def convert(source, dest: Path, target: str, g_only: bool):
    """Convert IN (NVIDIA .pkl of any generation, rosinality .pt, ours) to OUT.

    \b
    Examples:
      stylegan convert karras2019stylegan-ffhq-1024x1024.pkl ffhq-sg1.safetensors
      stylegan convert stylegan2-ffhq-config-f.pkl ffhq.pt --to rosinality
      stylegan convert 550000.pt ffhq.safetensors --g-only
    """
    from ..checkpoints import load_network, save_network
    which = ("G_ema",) if g_only else ("G_ema", "G", "D")
    ckpt = load_network(source, which=which)
    if g_only:
        ckpt.G = ckpt.D = None
    if target == "rosinality":
        from ..checkpoints.rosinality import save_rosinality
        written, notes = save_rosinality(ckpt, dest, include_discriminator=not g_only)
        for note in notes:
            click.echo(f"note: {note}", err=True)
    else:
        ckpt.metadata.setdefault("converted_from", {"file": Path(str(source)).name, "format": ckpt.source_format})
        written = save_network(ckpt, dest)
    click.echo(f"wrote {written}", err=True)


def _count(net) -> int:
    return sum(p.numel() for p in net.parameters())


def describe(ckpt) -> list[str]:
    """Human-readable summary lines of a loaded checkpoint."""
    lines = [f"format:        {ckpt.source_format}"]
    G = ckpt.G_ema if ckpt.G_ema is not None else ckpt.G
    if G is not None:
        cfg = G.config
        syn = cfg.synthesis
        lines += [
            f"architecture:  {cfg.variant}" + (f" ({syn.architecture})" if hasattr(syn, "architecture") else ""),
            f"resolution:    {G.img_shape[1]}x{G.img_shape[0]}, {G.img_channels} channel(s)"
            + (" (non-square: width x height)" if G.img_shape[0] != G.img_shape[1] else ""),
            f"z_dim:         {G.z_dim}",
            f"w_dim:         {G.w_dim}",
            f"c_dim:         {G.c_dim}" + (" (unconditional)" if G.c_dim == 0 else " (conditional)"),
            f"num_ws:        {G.num_ws}",
            f"mapping:       {cfg.mapping.num_layers} layers, lr multiplier {cfg.mapping.lr_multiplier:g}",
            f"fp16:          top {syn.num_fp16_res} resolution(s) built for fp16"
            + (f", conv clamp {syn.conv_clamp:g}" if getattr(syn, "conv_clamp", None) is not None else ""),
        ]
    for key in ("G_ema", "G", "D"):
        net = getattr(ckpt, key)
        if net is not None:
            lines.append(f"{key + ' params:':<15}{_count(net):,}")
    if ckpt.augment is not None:
        lines.append(f"ADA p:         {ckpt.augment.get('p', 0):.4f}")
    if ckpt.training_set_kwargs:
        tsk = ckpt.training_set_kwargs
        lines.append(f"trained on:    {tsk.get('path', '?')} (resolution {tsk.get('resolution', '?')}, "
                     f"labels {bool(tsk.get('use_labels'))}, xflip {bool(tsk.get('xflip'))})")
    tf = ckpt.metadata.get("tensorflow") or {}
    if tf.get("truncation_psi") is not None:
        cutoff = tf.get("truncation_cutoff")
        lines.append(f"TF default:    truncation psi {tf['truncation_psi']:g}"
                     + (f" on the first {cutoff} layers" if cutoff else "")
                     + " (pass --trunc/--trunc-cutoff to reproduce)")
    for key in ("kimg", "description", "license", "data_source", "data_license"):
        if key in ckpt.metadata:
            lines.append(f"{key + ':':<15}{ckpt.metadata[key]}")
    return lines


@click.command()
@click.argument("source", metavar="PATH", required=False)
def info(source):
    """Print a model's architecture, resolution, dimensions and parameter counts."""
    from ..checkpoints import load_network
    ckpt = load_network(source)
    click.echo("\n".join(describe(ckpt)))
