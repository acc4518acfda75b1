"""A non-square model trains and learns: the real emoji of tests/assets padded to 32x16 (`stylegan dataset
--resolution 32x16 --transform pad`), a tiny StyleGAN2 trained on them by `stylegan train` for 3 kimg, and
the distance of its images to the nearest real one falls; then the saved file goes through the commands."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from support.cli import run
from support.detectors import save_detector
from support.training import run_cli

from stylegan.checkpoints import load_network
from stylegan.cli.main import main

EMOJI = Path(__file__).parents[1] / "assets" / "emoji-unseen"


def nearest_real_mse(fake: np.ndarray, real: np.ndarray) -> float:
    """Mean over the fakes of the pixel MSE to the closest real image (images [N, C, H, W] in [0, 1])."""
    a, b = fake.reshape(len(fake), -1), real.reshape(len(real), -1)
    return float(((a[:, None] - b[None]) ** 2).mean(-1).min(1).mean())


def fakes(snapshot: Path, count: int = 64) -> np.ndarray:
    G = load_network(snapshot, which=("G_ema",)).G_ema
    assert G.img_shape == (16, 32)
    torch.manual_seed(123)
    with torch.no_grad():
        img = G(torch.randn(count, G.z_dim), None, noise_mode="const")
    return ((img.clamp(-1, 1) + 1) / 2).numpy()


@pytest.mark.slow
def test_a_32x16_model_learns_the_padded_emoji(tmp_path, capsys):
    data = tmp_path / "emoji.zip"
    code, err = run(capsys, "dataset", "--source", EMOJI, "--dest", data, "--resolution", "32x16", "--transform", "pad")
    assert code == 0 and "wrote 8 images (32x16, 3 channel(s))" in err, err
    run_cli("train", "--data", str(data), "--outdir", str(tmp_path / "runs"), "--mirror", "1", "--cbase", "512",
            "--cmax", "64", "--z-dim", "32", "--w-dim", "32", "--map-depth", "2", "--batch", "16", "--glr", "0.0025",
            "--dlr", "0.0025", "--gamma", "0.05", "--kimg", "3", "--tick", "1", "--snap", "3", "--grid", "2x4",
            timeout=900)
    (run_dir,) = (tmp_path / "runs").iterdir()
    first, last = run_dir / "network-snapshot-000000.safetensors", run_dir / "network-snapshot-000003.safetensors"
    assert Image.open(run_dir / "fakes000003.png").size == (4 * 32, 2 * 16)
    assert "stylegan2 32x16x3" in (run_dir / "log.txt").read_text()

    with zipfile.ZipFile(data) as z:
        real = np.stack([np.asarray(Image.open(io.BytesIO(z.read(n))), np.float32) / 255
                         for n in sorted(z.namelist()) if n.endswith(".png")]).transpose(0, 3, 1, 2)
    real = np.concatenate([real, real[..., ::-1]])          # --mirror 1
    centre = (slice(None), slice(None), slice(None), slice(8, 24))   # the emoji, without the white bands
    before, after = fakes(first), fakes(last)
    whole = nearest_real_mse(before, real), nearest_real_mse(after, real)
    middle = nearest_real_mse(before[centre], real[centre]), nearest_real_mse(after[centre], real[centre])
    print(f"nearest-real MSE {whole[0]:.4f} -> {whole[1]:.4f}; emoji part {middle[0]:.4f} -> {middle[1]:.4f}")
    assert whole[1] < 0.4 * whole[0] and middle[1] < 0.5 * middle[0]

    # the trained file through the commands (tests/cli/test_nonsquare_cmds.py checks each one in detail)
    out = tmp_path / "out"
    for args in (["generate", "--seeds", "0-1", "--outdir", out / "g"], ["mix", "--rows", "1", "--cols", "2",
                 "--outdir", out / "m"], ["video", "--seeds", "0-1", "--num-keyframes", "2", "--w-frames", "2",
                 "--output", out / "v.gif"], ["project", "--target", EMOJI / "dog.png", "--num-steps", "2",
                 "--outdir", out / "p"]):
        code, err = run(capsys, args[0], "--network", last, *args[1:])
        assert code == 0, err
    assert Image.open(out / "g" / "seed0001.png").size == Image.open(out / "p" / "proj.png").size == (32, 16)
    inception = save_detector("inception", tmp_path / "inception-2015-12-05.pt")
    with pytest.raises(SystemExit):
        main(["metrics", "--network", str(last), "--metrics", "fid50k_full", "--data", str(data), "--detector",
              f"inception={inception}", "--num-gen", "16", "--device", "cpu"])
    with pytest.raises(SystemExit):
        main(["info", str(last)])
    printed = capsys.readouterr().out
    assert '"metric": "fid16_full"' in printed and "resolution:    32x16, 3 channel(s)" in printed


def test_stylegan3_trains_non_square_and_runs_resume_only_on_their_shape(tmp_path, capsys):
    """A 16x8 StyleGAN3-T trains (magnitudes tracked on the non-square grid); a 16x8 StyleGAN2 run resumes
    on its dataset and refuses the same images at 16x16, in one line."""
    wide, square = tmp_path / "wide.zip", tmp_path / "square.zip"
    for dest, size in ((wide, "16x8"), (square, "16")):
        assert run(capsys, "dataset", "--source", EMOJI, "--dest", dest, "--resolution", size, "--transform",
                   "pad")[0] == 0
    tiny = ["--cbase", "256", "--cmax", "16", "--z-dim", "16", "--w-dim", "16", "--map-depth", "2", "--gamma", "0.1",
            "--snap", "1", "--grid", "1x1", "--batch", "4"]
    code, err = run(capsys, "train", "--data", wide, "--outdir", tmp_path / "sg3", "--cfg", "stylegan3-t", *tiny,
                    "--kimg", "0.008", "--tick", "0.004")
    assert code == 0, err
    (sg3_run,) = (tmp_path / "sg3").iterdir()
    G = load_network(sg3_run / "network-snapshot-000000.safetensors", which=("G_ema",)).G_ema
    assert G.img_shape == (8, 16) and G.config.variant == "stylegan3-t"
    assert all(float(getattr(G.synthesis, n).magnitude_ema) != 1.0 for n in G.synthesis.layer_names)
    args = ["train", "--outdir", tmp_path / "sg2", *tiny, "--tick", "0.008"]
    assert run(capsys, *args, "--data", wide, "--kimg", "0.008")[0] == 0
    code, err = run(capsys, *args, "--data", wide, "--kimg", "0.016", "--resume", "latest")
    assert code == 0, err
    code, err = run(capsys, *args, "--data", square, "--kimg", "0.024", "--resume", "latest")
    assert code == 1 and err.count("\n") == 1 and "has 16x16x3 images with 0 label(s), the run being resumed " \
                                                   "trained on 16x8x3" in err, err


def test_unsuitable_metrics_and_mismatched_resume_sources_are_refused_before_training(tmp_path, capsys):
    """An equivariance metric on a 16x8 dataset, a training state whose G config is not valid, and a
    transfer source whose D judges 16x16 images while its G and the dataset are 16x8: each one line at
    start-up (not at the first snapshot, not a traceback in D.forward)."""
    import json

    from safetensors import safe_open
    from safetensors.torch import save_file
    from support.models import make_tiny_checkpoint

    from stylegan.checkpoints import Checkpoint, save_network
    wide = tmp_path / "wide.zip"
    assert run(capsys, "dataset", "--source", EMOJI, "--dest", wide, "--resolution", "16x8", "--transform",
               "pad")[0] == 0
    tiny = ["--data", wide, "--cbase", "256", "--cmax", "16", "--z-dim", "16", "--w-dim", "16", "--map-depth", "2",
            "--snap", "1", "--grid", "1x1", "--batch", "4", "--kimg", "0.004", "--tick", "0.004"]
    code, err = run(capsys, "train", "--outdir", tmp_path / "eq", *tiny, "--metrics", "eqt50k_int")
    assert code == 1 and err.endswith("eqt50k_int needs a StyleGAN3 model (one with an input transform); this "
                                      "is a stylegan2 model\n") and err.count("\n") == 1, err
    code, err = run(capsys, "train", "--outdir", tmp_path / "eq", *tiny, "--cfg", "stylegan3-t", "--metrics", "eqr50k")
    assert code == 1 and err == "error: eqr50k: measured on square models only (this one draws 16x8)\n", err
    assert not any((tmp_path / "eq").glob("*/*.safetensors"))

    assert run(capsys, "train", "--outdir", tmp_path / "runs", *tiny, "--metrics", "none")[0] == 0
    (state,) = (tmp_path / "runs").glob("*/training-state-*.safetensors")
    with safe_open(str(state), "pt") as f:
        meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    header = json.loads(meta["stylegan_training_state"])
    header["g_config"]["img_shape"] = [8, 5]
    save_file(tensors, str(state), metadata={"stylegan_training_state": json.dumps(header)})
    code, err = run(capsys, "train", "--outdir", tmp_path / "runs", *tiny[:-4], "--kimg", "0.008", "--resume", state)
    assert code == 1 and err.count("\n") == 1 and "its network configs are invalid" in err, err

    rect = make_tiny_checkpoint("stylegan2", resolution=16, img_shape=(8, 16), channels=16, z_dim=16, w_dim=16)
    square = make_tiny_checkpoint("stylegan2", resolution=16, channels=16, z_dim=16, w_dim=16)
    source = save_network(Checkpoint(G_ema=rect.G_ema, G=rect.G, D=square.D, source_format="native"),
                          tmp_path / "odd.safetensors")
    code, err = run(capsys, "train", "--outdir", tmp_path / "transfer", "--data", wide, "--batch", "4", "--kimg",
                    "0.004", "--resume", source)         # no size options: G and D come from the source
    assert code == 1 and err.count("\n") == 1 and "its discriminator judges 16x16 images" in err, err
