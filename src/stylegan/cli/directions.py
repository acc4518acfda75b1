"""``stylegan directions`` (find latent directions) and ``stylegan edit`` (move latents along them)."""

from __future__ import annotations

from pathlib import Path

import click

from .common import (batch_option, canvas_options, class_option, device_option, echo_canvas_note, echo_done,
                     ensure_outdir, format_ranges, load_G, network_option, outdir_option, precision_options,
                     torchrun_shared, trunc_option)


@click.command()
@network_option
@click.option("--method", type=click.Choice(["sefa", "pca", "boundary"]), required=True,
              help="sefa: closed-form factorisation of the style weights; pca: principal components of sampled "
                   "ws (GANSpace); boundary: a linear classifier on labelled ws (InterFaceGAN).")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Directions file to write (.npz).")
@click.option("--layers", default=None, metavar="LAYERS",
              help="ws indices (ranges inclusive: 0-7 is 0 to 7) or groups (coarse, ...), default all. Stored as "
                   "the layers 'edit' moves by default (any method); sefa factorises the style weights of these "
                   "layers' convolutions.")
@click.option("--num", type=click.IntRange(min=1), default=None, help="sefa/pca: directions to keep (default 20).")
@click.option("--samples", "num_samples", type=click.IntRange(min=2), default=None,
              help="pca: ws to sample (20000); boundary with --classifier: images to score (2000).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds the sampled z.")
@class_option()
@click.option("--ws", "ws_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="boundary: latents .npz of the labelled images ('stylegan latent from-seeds', projections); "
                   "not needed when the labels are keyed by seed.")
@click.option("--labels", "labels_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="boundary: 'key,value' CSV or JSON; keys are seeds, image names or rows; values 0/1 or scores.")
@click.option("--classifier", default=None, metavar="PATH|URL",
              help="boundary: TorchScript classifier scoring images in [-1, 1] (instead of --ws/--labels).")
@click.option("--output", "classifier_output", type=int, default=0, show_default=True,
              help="boundary: which classifier output is the attribute score.")
@click.option("--classifier-resolution", type=int, default=None,
              help="boundary: resize images to this square for the classifier (a non-square model's are "
                   "centre-cropped to a square first).")
@click.option("--fraction", type=float, default=0.3, show_default=True,
              help="boundary with scores: top and bottom fraction used as positives and negatives.")
@click.option("--orthogonal-to", "orthogonal_to", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="boundary: keep these directions fixed (project them out).")
@click.option("--name", default=None, help="boundary: the direction's name (default: the labels file's name).")
@device_option
@torchrun_shared
def directions(network, method, out_path, layers, num, num_samples, seed, class_idx, ws_file, labels_file,
               classifier, classifier_output, classifier_resolution, fraction, orthogonal_to, name, device):
    """Find latent directions and save them (.npz) for 'stylegan edit'.

    \b
    Examples:
      stylegan directions --network ffhq.pkl --method sefa --layers 0-7 --out sefa.npz
      stylegan directions --network ffhq.pkl --method pca --num 20 --out pca.npz
      stylegan directions --network ffhq.pkl --method boundary --labels smile.csv --out smile.npz
      stylegan directions --network ffhq.pkl --method boundary --classifier smile.pt --out smile.npz

    Under torchrun the processes share the sampling of pca and --classifier (same file as one process).
    """
    from .. import distributed

    G, dev, _ = load_G(network, device, "fp32")
    result, note = _find(G, dev, method, layers, num, num_samples, seed, class_idx, ws_file, labels_file,
                         classifier, classifier_output, classifier_resolution, fraction, orthogonal_to, name)
    if not distributed.current_shard().is_main:
        return
    if note:
        click.echo(note, err=True)
    path = result.save(out_path)
    if result.values is not None and method != "boundary":
        top = ", ".join(f"{v:.3g}" for v in result.values[:5])
        click.echo(f"{method}: {len(result)} directions; {'eigenvalues' if method == 'sefa' else 'variances'} "
                   f"{top}{' ...' if len(result) > 5 else ''}", err=True)
    echo_done(f"wrote {path}")


def _find(G, dev, method, layers, num, num_samples, seed, class_idx, ws_file, labels_file, classifier,
          classifier_output, classifier_resolution, fraction, orthogonal_to, name):
    """The directions of ``method`` and a line to print (or None)."""
    import numpy as np

    from ..errors import UserInputError
    from ..latent import directions as dirs
    from ..latent.io import load_npz_extra, load_ws
    from ..latent.mixing import parse_layers
    from ..latent.sampling import GenerationRequest

    note = None
    layer_list = parse_layers(layers, G) if layers is not None else None
    if method != "boundary" and any(x is not None for x in (ws_file, labels_file, classifier, orthogonal_to)):
        raise UserInputError("--ws, --labels, --classifier and --orthogonal-to go with --method boundary")
    if method == "sefa":
        result = dirs.sefa(G, layer_list, num or min(20, G.w_dim))
        if layer_list is not None and result.layers != layer_list:
            only_rgb = sorted(set(layer_list) - set(result.layers))
            which = (f"w {only_rgb[0]} drives only a toRGB layer and is" if len(only_rgb) == 1 else
                     f"ws {format_ranges(only_rgb)} drive only toRGB layers and are")
            click.echo(f"sefa: {which} not factorised; stored layers {format_ranges(layer_list)} for edit, "
                       f"as given", err=True)
            result.layers = layer_list
    elif method == "pca":
        result = dirs.pca(G, num or min(20, G.w_dim), num_samples or 20000, seed, class_idx)
        result.layers = layer_list
    else:
        if classifier is not None:
            if ws_file is not None or labels_file is not None:
                raise UserInputError("give either --classifier or --ws with --labels, not both")
            model = dirs.load_classifier(classifier, dev)
            ws, scores = dirs.classifier_scores(G, model, num_samples or 2000, seed, classifier_output, class_idx,
                                                resolution=classifier_resolution, show_progress=True)
            ws = ws.numpy()
            label_name = name or Path(str(classifier)).stem
        else:
            if labels_file is None:
                raise UserInputError("--method boundary needs --labels FILE (with --ws FILE unless the keys are "
                                     "seeds), or --classifier MODEL")
            labels_read = dirs.read_labels(labels_file)
            if ws_file is not None:
                ws = load_ws(ws_file, G.num_ws, G.w_dim)
                extra = load_npz_extra(ws_file)
                rows, scores = dirs.match_labels(labels_read, extra.get("seeds"), extra.get("labels"), count=len(ws))
                ws = ws[rows]
            else:
                seed_list, scores = dirs.labelled_seeds(labels_read)
                ws = GenerationRequest(G, class_idx=class_idx).seed_latents(seed_list).ws
            label_name = name or labels_file.stem
        if np.isin(scores, (0, 1)).all():
            labels = scores
        else:
            keep, labels = dirs.scores_to_labels(scores, fraction)
            ws = ws[keep]
        result = dirs.fit_boundary(ws, labels, seed=seed, name=label_name)
        if orthogonal_to is not None:
            fixed = dirs.Directions.load(orthogonal_to, G).vectors
            result.vectors = dirs.orthogonalize(result.vectors[0], fixed)[None]
        result.layers = layer_list
        note = f"{label_name}: {len(ws)} labelled latents, held-out accuracy {result.values[0]:.1%}"
    return result, note


@click.command()
@network_option
@click.option("--projected-w", "latents", default=None, metavar="FILE.npz|SEEDS",
              help="Latents to edit: projected_w.npz (or any latents .npz) and/or seeds like 0-3.")
@click.option("--seeds", default=None, help="Seeds to edit (instead of or besides --projected-w).")
@click.option("--direction", "direction_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              required=True, help="Directions file from 'stylegan directions'.")
@click.option("--index", default="0", show_default=True,
              help="Which direction(s) of the file: index, list/range (0-4: one strip each) or name.")
@click.option("--strength", default="-3:3:7", show_default=True,
              help="START:STOP:COUNT or a list (-2,0,2): how far to move along the direction.")
@click.option("--sigma", is_flag=True, help="Strengths in standard deviations of sampled ws along the direction.")
@click.option("--layers", default=None, metavar="LAYERS",
              help="Layers to move (0-7, coarse, ...); default: the layers stored with the directions, else all.")
@trunc_option("Seeds' truncation psi.")
@class_option()
@click.option("--video", "video_path", default=None, metavar="NAME.mp4",
              help="Also write a looping video (0 -> max -> min -> 0) of each latent and direction.")
@click.option("--frames", type=click.IntRange(min=2), default=60, show_default=True, help="Video length.")
@click.option("--fps", type=float, default=30, show_default=True)
@click.option("--save-ws", is_flag=True, help="Also write the edited latents (edit-*.npz).")
@canvas_options
@batch_option()
@device_option
@precision_options
@outdir_option
def edit(network, latents, seeds, direction_file, index, strength, sigma, layers, truncation_psi, class_idx,
         video_path, frames, fps, save_ws, size, extension, batch_size, device, precision, outdir: Path):
    """Move latents along a direction: one strip per latent and direction (strength from left to right).

    \b
    Examples:
      stylegan edit --network ffhq.pkl --projected-w out/projected_w.npz --direction sefa.npz \\
          --index 0-4 --strength -3:3:7 --layers 0-7 --outdir edits --video edit.mp4
      stylegan edit --network ffhq.pkl --seeds 0-3 --direction smile.npz --strength -2:2:5 --outdir edits
    """
    import numpy as np
    import torch

    from ..errors import UserInputError
    from ..latent.directions import Directions, w_sigma
    from ..latent.editing import apply_direction, edit_images, parse_strengths, pingpong
    from ..latent.io import load_npz_extra, save_ws as write_ws
    from ..latent.mixing import parse_layers
    from ..latent.projection import noise_from_npz
    from ..latent.sampling import GenerationRequest, parse_canvas
    from ..latent.sources import latents_from_file
    from ..render.images import make_grid, save_image
    from ..render.video import check_video_path, write_video

    canvas = parse_canvas(size)
    G, _, _ = load_G(network, device, precision)
    request = GenerationRequest(G, truncation_psi, class_idx=class_idx, canvas=canvas, extension=extension)
    echo_canvas_note(request)
    if latents is None and seeds is None:
        raise UserInputError("give the latents to edit: --projected-w FILE.npz and/or --seeds 0-3")
    parts, noises = [], []
    if latents is not None:
        if latents.lower().endswith(".npz") or Path(latents).is_file():
            lat = latents_from_file(G, latents)
            noise = noise_from_npz(load_npz_extra(latents), G)
            parts.append(lat)
            noises += [{k: v[i:i + 1] for k, v in noise.items()} for i in range(len(lat))]
        else:
            seeds = f"{latents},{seeds}" if seeds else latents
    if seeds is not None:
        lat = request.seed_latents(seeds)
        parts.append(lat)
        noises += [None] * len(lat)
    ws = torch.from_numpy(np.concatenate([p.ws for p in parts]))
    names = [lb if p.seeds[i] is None else f"seed{p.seeds[i]:04d}" for p in parts for i, lb in enumerate(p.labels)]

    dset = Directions.load(direction_file, G)
    picks = _pick_indices(index, dset)
    strengths = parse_strengths(strength)
    layer_list = parse_layers(layers, G) if layers is not None else dset.layers
    if video_path is not None:
        check_video_path(outdir / video_path)
    ensure_outdir(outdir)

    count = 0
    for k in picks:
        d = dset.pick(k)
        dname = (dset.names[k] if dset.names else f"direction {k}").replace(" ", "-").replace("/", "-")
        scale = w_sigma(G, d, class_idx=class_idx) if sigma else 1.0
        s = [v * scale for v in strengths]
        for i, (w, nm) in enumerate(zip(ws, names)):
            strip = edit_images(request, w, d, s, layer_list, noises[i], batch_size=batch_size)
            save_image(make_grid(strip, 1, len(strip), pad=2), outdir / f"{nm}-{dname}.png")
            count += 1
            if save_ws:
                write_ws(outdir / f"{nm}-{dname}.npz", apply_direction(w[None], d, s, layer_list)[0],
                         strength=np.asarray(s, np.float32))
            if video_path is not None:
                path = outdir / video_path
                if len(picks) * len(ws) > 1:
                    path = path.with_name(f"{path.stem}-{nm}-{dname}{path.suffix}")
                video_s = pingpong(s, frames)
                vws = apply_direction(w[None], d, video_s.tolist(), layer_list)[0]

                def stream(vws=vws, noise=noises[i]):
                    for j in range(0, len(vws), batch_size):
                        imgs = request.images(vws[j:j + batch_size], noise=noise, batch_size=batch_size)
                        yield from (im if im.shape[-1] == 3 else im.repeat(3, axis=-1) for im in imgs)
                write_video(stream(), path, fps=fps, num_frames=frames)
    where = "" if layer_list is None else f" on layers {','.join(map(str, layer_list))}"
    echo_done(f"wrote {count} strip(s) of {len(strengths)} ({strength}{' sigma' if sigma else ''}){where} to {outdir}")


def _pick_indices(spec: str, dset) -> list[int]:
    from ..errors import UserInputError
    from ..latent.seeds import parse_seeds
    text = str(spec).strip()
    if dset.names and text in dset.names:
        return [dset.names.index(text)]
    try:
        picks = parse_seeds(text)
    except UserInputError:
        raise UserInputError(f"--index {spec!r}: not an index, a range like 0-4, or a direction name "
                             f"({', '.join((dset.names or [])[:5])})") from None
    for k in picks:
        dset.pick(k)
    return picks
