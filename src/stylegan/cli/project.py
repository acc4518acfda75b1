"""``stylegan project`` (photos -> latents) and ``stylegan variations`` (what to do with a projection)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .common import (batch_option, canvas_options, class_option, device_option, echo_done, ensure_outdir,
                     network_option, option, outdir_option, precision_options, switch_option, torchrun_shared)

if TYPE_CHECKING:
    from ..latent.projection import ProjectionConfig
    from ..latent.tuning import TuningConfig

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
PLAIN_STEPS = 1000                         # --steps without --encoder (NVIDIA's projector)
REFINE_STEPS = 20                          # --steps after an encoder start (latent.inversion.REFINE_CONFIG)


def _load_networks(network, device, precision, need_D: bool):
    """The checkpoint, G, and D (when the no-download loss or ``--tune`` will use it) from one read of the file."""
    from ..checkpoints import load_generator, load_network
    ckpt = load_network(network, which=("G_ema", "G", "D") if need_D else ("G_ema", "G"))
    G = load_generator(ckpt, device=device, precision=precision)
    dev = next(G.parameters()).device
    D = ckpt.D.to(dev) if need_D and ckpt.D is not None else None
    return ckpt, G, D, dev


@dataclass(frozen=True)
class _Plan:
    """What ``stylegan project`` will run, reconciled from its options."""
    config: ProjectionConfig               # the optimiser's settings (num_steps >= 1 even when steps == 0)
    steps: int                             # optimisation steps; 0: the encoder's w alone
    tune: TuningConfig | None              # pivotal tuning afterwards, or None
    tune_out: Path | None


def _plan(encoder, space, num_steps, learning_rate, optimize_noise, seed, tune_steps, tune_out, save_video, face,
          landmarks) -> _Plan:
    """Defaults that depend on other options, and every combination that cannot work, refused up front."""
    from ..errors import UserInputError
    from ..latent.inversion import REFINE_CONFIG
    from ..latent.projection import ProjectionConfig
    from ..latent.tuning import TuningConfig
    steps = num_steps if num_steps is not None else REFINE_STEPS if encoder else PLAIN_STEPS
    if steps == 0 and encoder is None:
        raise UserInputError("--steps 0 needs --encoder (the encoder's w is then the result)")
    if steps == 0 and save_video:
        raise UserInputError("--save-video shows the optimisation steps, and --steps 0 has none")
    if steps == 0 and space == "w":
        raise UserInputError("--steps 0 gives the encoder's W+ latents; --space w needs optimisation steps")
    if face is not None and landmarks is not None:
        raise UserInputError("give --face K (detect the faces) or --landmarks FILE, not both")
    if tune_out is not None and tune_steps is None:
        raise UserInputError("--tune-out needs --tune N")
    if tune_out is not None and tune_out.suffix != ".safetensors":
        raise UserInputError(f"--tune-out {tune_out}: the tuned model is a .safetensors file")
    if tune_steps is not None and optimize_noise:
        raise UserInputError("--tune tunes the generator for the model's constant noise (what every command "
                             "draws a saved w with); drop --noise")
    noise = optimize_noise if optimize_noise is not None else tune_steps is None
    base = REFINE_CONFIG if encoder else ProjectionConfig()
    config = dataclasses.replace(base, space=space or ("w+" if encoder else "w"), num_steps=max(steps, 1),
                                 initial_learning_rate=learning_rate, optimize_noise=noise, seed=seed)
    tune = TuningConfig(steps=tune_steps) if tune_steps is not None else None
    return _Plan(config=config, steps=steps, tune=tune, tune_out=tune_out)


def _target_files(targets: tuple[Path, ...]) -> list[Path]:
    from ..errors import UserInputError
    files: list[Path] = []
    for t in targets:
        if t.is_dir():
            found = sorted(p for p in t.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise UserInputError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in folder {t}")
            files += found
        elif t.is_file():
            files.append(t)
        else:
            raise UserInputError(f"target not found: {t}")
    return files


def _unique_stems(files: list[Path]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for f in files:
        stem = f.stem
        seen[stem] = seen.get(stem, 0) + 1
        out.append(stem if seen[stem] == 1 else f"{stem}-{seen[stem]}")
    return out


@click.command()
@network_option
@click.option("--target", "targets", type=click.Path(path_type=Path), multiple=True, required=True,
              help="Image to project (repeat for several, or give a folder of images).")
@click.option("--space", type=click.Choice(["w", "w+"]), default=None,
              help="w: one latent for all layers (edits well); w+: one per layer (reconstructs better). "
                   "Default: w; with --encoder w+ (the encoder's own output).")
@option("--steps", "num_steps", aliases=("--num-steps",), type=click.IntRange(min=0), default=None,
              help=f"Optimisation steps. Default: {PLAIN_STEPS}; with --encoder {REFINE_STEPS}; "
                   "0 (needs --encoder): the encoder's w, no optimisation.")
@click.option("--encoder", default=None, metavar="PATH|builtin",
              help="Start from this encoder's w (one forward pass) instead of the mean w: a file from "
                   "`stylegan encoder train`, or 'builtin' for the built-in model's.")
@click.option("--seed", type=int, default=303, show_default=True, help="Seeds the noise added to w while optimising.")
@class_option()
@click.option("--lr", "learning_rate", type=float, default=0.1, show_default=True, help="Initial learning rate.")
@click.option("--noise/--no-noise", "optimize_noise", default=None,
              help="StyleGAN2: optimise the per-pixel noise maps too (saved in projected_w.npz). "
                   "Default: on; off with --tune.")
@click.option("--tune", "tune_steps", type=click.IntRange(min=1), default=None, metavar="N",
              help="Pivotal tuning: then fine-tune the generator for N steps so that the result draws the "
                   "target more closely; writes the tuned model (--tune-out).")
@click.option("--tune-out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where --tune writes the tuned model. Default: OUTDIR/tuned.safetensors.")
@click.option("--vgg", default=None, metavar="PATH|URL|nvidia",
              help="LPIPS VGG16 weights: NVIDIA's vgg16.pt (TorchScript) or torchvision vgg16 .pth; 'nvidia' "
                   "downloads NVIDIA's file once. Default: $STYLEGAN_VGG16, else a loss that needs no download.")
@click.option("--lpips-lin", default=None, metavar="PATH|URL",
              help="LPIPS linear-layer weights (lpips package vgg.pth) for torchvision VGG16 weights.")
@click.option("--align/--no-align", default=False, show_default=True,
              help="FFHQ-style face alignment (needs --landmarks, or dlib/face_alignment installed).")
@click.option("--face", type=click.IntRange(min=0), default=None, metavar="K",
              help="Detect the faces (MTCNN) and align face K (0 = the largest); implies --align.")
@click.option("--landmarks", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Face landmarks (68 or 5 x,y points; JSON, .npy or text); implies --align.")
@click.option("--landmark-model", type=click.Path(path_type=Path), default=None,
              help="dlib's shape_predictor_68_face_landmarks.dat (or set $STYLEGAN_DLIB_LANDMARKS).")
@switch_option("--save-video", help="Write proj.mp4: target | projection at every step.")
@click.option("--video-every", type=click.IntRange(min=1), default=1, show_default=True,
              help="Video: one frame every N steps.")
@batch_option(4, "Targets optimised together (each keeps its own latent and noise).")
@device_option
@precision_options
@outdir_option
@torchrun_shared
def project(network, targets, space, num_steps, encoder, seed, class_idx, learning_rate, optimize_noise, tune_steps,
            tune_out, vgg, lpips_lin, align, face, landmarks, landmark_model, save_video, video_every, batch_size,
            device, precision, outdir: Path):
    """Project photos into the latent space: find the latent that makes the model draw each target.

    Writes target.png, proj.png and projected_w.npz (ws, plus w as NVIDIA's generate.py reads it, and
    the optimised noise maps) to OUTDIR; with several targets, one folder per target plus
    OUTDIR/projected_w.npz holding all of them. --tune also writes the tuned model and proj_tuned.png.

    \b
    Examples:
      stylegan project --network ffhq.pkl --target me.jpg --outdir out --vgg nvidia
      stylegan project --network ffhq.pkl --target photos/ --space w+ --steps 500 --outdir out
      stylegan project --network ffhq.pkl --target me.jpg --landmarks me.json --outdir out
      stylegan project --encoder builtin --steps 0 --target emoji.png --outdir out
      stylegan project --encoder builtin --tune 50 --target emoji.png --outdir out
      stylegan project --network ffhq.pkl --encoder ffhq-enc.safetensors --face 1 --target group.jpg --outdir out
    """
    from ..latent.inversion import load_checked_encoder
    from ..latent.seeds import class_labels
    from ..perception.lpips import load_perceptual

    plan = _plan(encoder, space, num_steps, learning_rate, optimize_noise, seed, tune_steps, tune_out, save_video,
                 face, landmarks)
    files = _target_files(targets)
    marks = _landmarks_per_target(landmarks, files)
    want_vgg = vgg is not None or bool(__import__("os").environ.get("STYLEGAN_VGG16"))
    ckpt, G, D, dev = _load_networks(network, device, precision, need_D=not want_vgg or plan.tune is not None)
    E = load_checked_encoder(encoder, G, dev) if encoder else None
    c = class_labels(G.c_dim, class_idx, 1, device=dev)
    loss = load_perceptual(vgg, lpips_lin, D=None if want_vgg else D, device=dev)
    ensure_outdir(outdir)
    click.echo(f"loss: {loss.name}" + (f"; start: encoder {encoder}" if E is not None else ""), err=True)
    prepared = _prepare_targets(G, files, marks, align, landmark_model, face)
    results = _project_in_batches(G, E, files, prepared, loss, plan, c, batch_size, outdir,
                                  video_every if save_video else None)
    if not results:                       # torchrun: process 0 has every batch's results and reports
        return
    steps = plan.steps
    if steps:
        spp = sum(r.seconds_per_step for r in results) / len(results)
        done = f"projected {len(files)} image(s) in {plan.config.space.upper()} ({steps} steps, {spp:.3f} s/step)"
    else:
        secs = sum(r.extra["encoder_seconds"] for r in results)
        done = f"encoded {len(files)} image(s) with the encoder alone ({secs:.3f} s, no optimisation)"
    if plan.tune is not None:
        _tune_and_save(ckpt, G, files, prepared, results, loss, plan, outdir)
    echo_done(f"{done}; wrote to {outdir}")


def _landmarks_per_target(path: Path | None, files: list[Path]) -> list:
    """Each target's face landmarks from ``--landmarks`` (None each without it)."""
    import numpy as np

    from ..errors import UserInputError
    from ..latent.align import load_landmarks
    if path is None:
        return [None] * len(files)
    points = load_landmarks(path)
    if isinstance(points, dict):
        missing = [f.name for f in files if points.get(f.name, points.get(f.stem)) is None]
        if missing:
            raise UserInputError(f"{path.name} has no landmarks for {missing[0]}")
        return [points.get(f.name, points.get(f.stem)) for f in files]
    if isinstance(points, np.ndarray) and points.ndim == 3 and len(points) != len(files):
        raise UserInputError(f"{path.name} holds {len(points)} sets of landmarks for {len(files)} targets")
    if isinstance(points, np.ndarray) and points.ndim == 2 and len(files) > 1:
        raise UserInputError(f"{path.name} holds one set of landmarks; with several targets give a JSON "
                             f"object {{image name: points}}")
    return [points] if points.ndim == 2 else list(points)


def _prepare_targets(G, files: list[Path], marks: list, align: bool, landmark_model, face: int | None) -> list:
    """The targets as the model's uint8 images (cropped, aligned when asked), reporting what was done."""
    from ..errors import UserInputError
    from ..latent.align import prepare_target
    from ..perception.faces import INSTALL_HINT, NoFaceFound, detector_available
    if face is not None and not detector_available():
        raise UserInputError(f"--face needs the MTCNN face detector: {INSTALL_HINT}")
    prepared, notes = [], []
    for f, lm in zip(files, marks):
        try:
            img, note = prepare_target(f, G.img_shape, G.img_channels,
                                       align=align or lm is not None or face is not None, landmarks=lm,
                                       landmark_model=landmark_model, face=face)
        except NoFaceFound as exc:
            raise NoFaceFound(f"{f.name}: {exc}") from None
        prepared.append(img)
        notes.append(note if face is None else f"{note}, face {face}")
    for note in sorted(set(notes)):
        click.echo(f"target: {note}", err=True)
    return prepared


def _target_dirs(files: list[Path], outdir: Path) -> list[Path]:
    """Each target's output folder: OUTDIR itself for one target, else OUTDIR/<file stem>."""
    return [outdir] if len(files) == 1 else [outdir / stem for stem in _unique_stems(files)]


def _project_in_batches(G, E, files, prepared, loss, plan: _Plan, c, batch_size: int, outdir: Path,
                        video_every: int | None):
    """Project ``batch_size`` targets at a time, writing each target's files as its batch finishes
    (and with several targets, OUTDIR/projected_w.npz holding all of them)."""
    import numpy as np
    import torch

    from ..latent.io import save_ws
    from ..latent.projection import noise_to_npz
    from ..render.images import save_image
    dirs = _target_dirs(files, outdir)

    def run_batch(b: int):
        start = b * batch_size
        idx = list(range(start, min(start + batch_size, len(files))))
        batch_targets = np.stack([prepared[i] for i in idx])
        for i, tgt in zip(idx, batch_targets):
            save_image(tgt, dirs[i] / "target.png")
        verb = "projecting" if E is None else "refining" if plan.steps else "encoding"
        desc = f"{verb} {files[idx[0]].stem}" + (f" (+{len(idx) - 1})" if len(idx) > 1 else "")
        res = _project_batch(G, E, batch_targets, loss, plan, c, desc, [dirs[i] / "proj.mp4" for i in idx],
                             video_every)
        for j, i in enumerate(idx):
            save_image(res.images[j], dirs[i] / "proj.png")
            loss_value = {"loss": np.float32(res.final_loss[j])} if len(res.loss_history) else {}
            save_ws(dirs[i] / "projected_w.npz", res.ws[j:j + 1], labels=[files[i].name],
                    c=None if res.c is None else res.c[j:j + 1], psnr=np.float32(res.psnr[j]),
                    space=np.array(res.space), **loss_value,
                    **noise_to_npz({k: v[j:j + 1] for k, v in res.noise.items()}))
            click.echo(f"{files[i].name}: {_quality(res, j)}", err=True)
        return res
    results = _shared_batches(run_batch, -(-len(files) // batch_size))
    if len(files) > 1 and results:
        save_ws(outdir / "projected_w.npz", torch.cat([r.ws for r in results]), labels=[f.name for f in files],
                c=None if results[0].c is None else torch.cat([r.c for r in results]),
                psnr=np.concatenate([r.psnr for r in results]).astype(np.float32),
                space=np.array(results[0].space),
                **noise_to_npz({k: torch.cat([r.noise[k] for r in results]) for k in results[0].noise}))
    return results


def _shared_batches(run_batch, num_batches: int) -> list:
    """``run_batch(b)`` for every batch or, under torchrun, for this process's batches (``b mod world``).
    Returns every batch's projection in order; under torchrun on process 0 (collected from the others
    through torch's object collective, between the processes of one job), an empty list elsewhere."""
    import torch

    from ..distributed import current_shard, gather_objects
    shard = current_shard()
    if shard.world == 1:
        return [run_batch(b) for b in range(num_batches)]

    def on_cpu(r):
        cpu = {k: v.cpu() if isinstance(v, torch.Tensor) else v for k, v in r.extra.items()}
        return dataclasses.replace(r, ws=r.ws.cpu(), noise={k: v.cpu() for k, v in r.noise.items()},
                                   c=None if r.c is None else r.c.cpu(), extra=cpu)
    mine = {b: on_cpu(run_batch(b)) for b in shard.batches(num_batches)}
    parts = gather_objects(shard, mine)
    if not shard.is_main:
        return []
    done = {b: r for part in parts for b, r in part.items()}
    return [done[b] for b in range(num_batches)]


def _quality(res, j: int) -> str:
    """One target's PSNR line: the result, where it started, and the final loss of an optimisation."""
    out = f"PSNR {res.psnr[j]:.2f} dB"
    if "encoder_psnr" not in res.extra:
        return out + f" (start {res.initial_psnr[j]:.2f} dB), final loss {res.final_loss[j]:.4f}"
    if not len(res.loss_history):
        return out + f" (encoder only; the mean w draws {res.initial_psnr[j]:.2f} dB)"
    kept = res.extra.get("corrected")
    corrected = f", corrected {res.initial_psnr[j]:.2f} dB" if kept is not None and kept[j] else ""
    return (out + f" (encoder start {res.extra['encoder_psnr'][j]:.2f} dB{corrected}, mean w "
            f"{res.extra['mean_w_psnr'][j]:.2f} dB), final loss {res.final_loss[j]:.4f}")


def _project_batch(G, E, targets, loss, plan: _Plan, c, desc: str, video_paths: list[Path], video_every: int | None):
    """One batch of targets: optimised from the mean w, or (``E``) from the encoder's w; with ``video_every``,
    each target's 'target | projection' video is streamed (every N-th step) while the optimisation runs."""
    import numpy as np

    from ..latent.inversion import invert
    from ..latent.projection import project as run_projection
    from ..render.images import to_uint8
    from ..render.video import BackgroundVideos

    def run(on_step=None):
        if E is None:
            return run_projection(G, targets, loss, plan.config, c=c, on_step=on_step, show_progress=True, desc=desc)
        return invert(G, targets, E, loss, plan.config, steps=plan.steps, c=c, on_step=on_step,
                      show_progress=True, desc=desc)
    if video_every is None:
        return run()
    rgb = targets if targets.shape[-1] == 3 else targets.repeat(3, axis=-1)
    videos = BackgroundVideos(video_paths, fps=10)

    def add_frames(step: int, images, _dist) -> None:
        if step % video_every == 0:
            synth = to_uint8(images)
            synth = synth if synth.shape[-1] == 3 else synth.repeat(3, axis=-1)
            videos.put([np.concatenate([t, s], axis=1) for t, s in zip(rgb, synth)])
    try:
        res = run(add_frames)
    except BaseException:
        videos.abort()
        raise
    videos.close()
    return res


def _tune_and_save(ckpt, G, files: list[Path], prepared: list, results: list, loss, plan: _Plan, outdir: Path):
    """Pivotal tuning of one generator for all targets at their projected ws; writes the tuned model and
    each target's proj_tuned.png (the tuned model's image of its w, with the constant noise)."""
    import numpy as np
    import torch

    from ..latent.tuning import save_tuned, tune_generator
    from ..render.images import save_image
    ws = torch.cat([r.ws for r in results])
    tuning = tune_generator(G, np.stack(prepared), ws, loss, plan.tune, show_progress=True, desc="tuning")
    for f, d, img, before, after in zip(files, _target_dirs(files, outdir), tuning.images, tuning.psnr_before,
                                        tuning.psnr_after):
        save_image(img, d / "proj_tuned.png")
        click.echo(f"{f.name}: tuned PSNR {after:.2f} dB (untuned {before:.2f} dB)", err=True)
    dest = plan.tune_out or outdir / "tuned.safetensors"
    save_tuned(tuning, dest, ckpt, metadata={"targets": [f.name for f in files]})
    click.echo(f"tuned the generator ({plan.tune.steps} steps, {tuning.seconds_per_step:.3f} s/step); "
               f"wrote {dest}", err=True)


@click.command()
@network_option
@click.option("--projected-w", "projected_w", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              required=True, help="projected_w.npz from 'stylegan project' (or any latents .npz).")
@click.option("--index", type=int, default=0, show_default=True, help="Which latent of the file.")
@click.option("--seeds", default="0-5", show_default=True, help="Seeds whose styles are mixed into the projection.")
@click.option("--random", "random_count", type=click.IntRange(min=1), default=None,
              help="Use N random seeds instead of --seeds (printed, so a grid can be made again).")
@click.option("--styles", default=None,
              help="Style groups to take from the seeds (coarse, middle, fine), each its own row. "
                   "Default: every group the model has.")
@click.option("--trunc", "psis", default="1,0.8,0.6,0.4,0.2,0", show_default=True,
              help="Truncation sweep: the projection pulled toward the average w by each psi.")
@click.option("--seed-trunc", "seed_psi", type=float, default=1.0, show_default=True,
              help="Truncation psi of the seeds' latents.")
@click.option("--noise-samples", type=click.IntRange(min=0), default=6, show_default=True,
              help="Images with freshly drawn noise (StyleGAN2); 0 = none.")
@class_option("Class label of the seeds (conditional models).")
@click.option("--grid-only", is_flag=True, help="Write only the grids, not the single images.")
@canvas_options
@batch_option()
@device_option
@precision_options
@outdir_option
def variations(network, projected_w, index, seeds, random_count, styles, psis, seed_psi, noise_samples, class_idx, grid_only,
               size, extension, batch_size, device, precision, outdir: Path):
    """Variations of a projection: fresh noise, other seeds' coarse/middle/fine styles, truncation.

    Writes projection.png, styles.png (first row: the projection, then each seed; one row per style
    group), truncation.png, noise.png, and every single image in subfolders.

    \b
    Example:
      stylegan variations --network ffhq.pkl --projected-w out/projected_w.npz --seeds 0-5 --outdir var
    """
    import numpy as np
    import torch

    from ..errors import UserInputError
    from ..latent.editing import noise_variations, style_variations, truncation_sweep
    from ..latent.io import load_npz_extra, load_ws
    from ..latent.projection import noise_from_npz, w_stats
    from ..latent.sampling import GenerationRequest, parse_canvas
    from ..latent.seeds import class_labels, parse_seeds, random_seeds, z_from_seeds
    from ..render.images import make_grid, save_image
    from .common import echo_canvas_note, load_G

    canvas = parse_canvas(size)
    G, _, _ = load_G(network, device, precision)
    ws = load_ws(projected_w, G.num_ws, G.w_dim)
    if not 0 <= index < len(ws):
        raise UserInputError(f"--index {index} is out of range: {projected_w.name} holds {len(ws)} latent(s)")
    extra = load_npz_extra(projected_w)
    noise = {k: v[index:index + 1] for k, v in noise_from_npz(extra, G).items()}
    w = torch.from_numpy(ws[index])
    groups = [g.strip() for g in styles.split(",") if g.strip()] if styles else None
    seed_list = parse_seeds(seeds) if random_count is None else random_seeds(random_count)
    if random_count is not None:
        click.echo(f"seeds: {','.join(map(str, seed_list))}", err=True)
    try:
        psi_list = [float(p) for p in psis.split(",") if p.strip()]
    except ValueError:
        raise UserInputError(f"invalid --trunc {psis!r}; use a list like 1,0.7,0.5") from None
    c = None
    if G.c_dim and class_idx is None and "c" in extra and len(extra["c"]) > index:
        c = torch.from_numpy(extra["c"][index])                   # the projection's own label
        class_idx = int(c.argmax())
    elif class_idx is not None or G.c_dim:
        c = class_labels(G.c_dim, class_idx, 1)[0]
    seeds_request = GenerationRequest(G, seed_psi, class_idx=class_idx)
    seed_ws = seeds_request.map_z(z_from_seeds(seed_list, G.z_dim))  # one batch, as variations always mapped
    ensure_outdir(outdir)

    request = GenerationRequest(G, canvas=canvas, extension=extension)
    echo_canvas_note(request)
    base = request.images(w[None], noise=noise)[0]
    save_image(base, outdir / "projection.png")
    seed_imgs = request.images(seed_ws, batch_size=batch_size)
    mixed = style_variations(request, w, seed_ws, groups, noise, batch_size=batch_size)
    rows = [np.concatenate([base[None], seed_imgs])] + [np.concatenate([base[None], m]) for m in mixed.values()]
    save_image(make_grid(np.concatenate(rows), len(rows), len(seed_list) + 1, pad=2), outdir / "styles.png")
    w_avg, _ = w_stats(G, c, 10000)
    trunc = truncation_sweep(request, w, psi_list, w_avg.cpu(), noise, batch_size=batch_size)
    save_image(make_grid(trunc, 1, len(psi_list), pad=2), outdir / "truncation.png")
    written = ["projection.png", "styles.png", "truncation.png"]
    noisy = None
    if noise_samples and G.synthesis.noise_maps():
        noisy = noise_variations(request, w, noise_samples, batch_size=batch_size)
        save_image(make_grid(noisy, 1, noise_samples, pad=2), outdir / "noise.png")
        written.append("noise.png")
    if not grid_only:
        for g, imgs in mixed.items():
            for s, img in zip(seed_list, imgs):
                save_image(img, outdir / "styles" / f"{g}-seed{s:04d}.png")
        for p, img in zip(psi_list, trunc):
            save_image(img, outdir / "truncation" / f"psi{p:g}.png")
        for k, img in enumerate(noisy if noisy is not None else []):
            save_image(img, outdir / "noise" / f"{k:02d}.png")
    echo_done(f"wrote {', '.join(written)}{'' if grid_only else ' and the single images'} to {outdir}")
