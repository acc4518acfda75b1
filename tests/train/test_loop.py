"""The training loop end to end, in-process: run-folder files, snapshots other commands load,
transfer learning with frozen layers, StyleGAN3 configs with a metric during training, resume
rules, graceful stop."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from PIL import Image
from support.models import make_tiny_checkpoint
from support.training import TINY, cli_env, stylegan_cmd

from stylegan.checkpoints import load_network, save_network
from stylegan.cli.main import main
from stylegan.train.checkpoint import list_states, load_training_state


def stylegan(*args):
    with pytest.raises(SystemExit) as exc:
        main(["-q", *args])
    return exc.value.code


def only_run(outdir):
    (run,) = [p for p in outdir.iterdir() if p.is_dir()]
    return run


def test_a_run_folder_has_logs_stats_grids_and_loadable_snapshots(blobs_dataset, tmp_path, capsys):
    code = stylegan("train", "--data", str(blobs_dataset), "--outdir", str(tmp_path), *TINY, "--batch", "8",
                    "--kimg", "0.048", "--tick", "0.016", "--snap", "2", "--grid", "2x3", "--mirror")
    assert code == 0
    out = capsys.readouterr().out
    assert "tick 0 " in out and "sec/kimg" in out and "augment" in out and "cpumem" in out
    run = only_run(tmp_path)
    assert run.name == "00000-stylegan2-blobs-gpus1-batch8-gamma0.1"
    log_lines = (run / "log.txt").read_text().splitlines()
    assert sum(line.startswith("tick ") for line in log_lines) == 4
    stats = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert len(stats) == 4 and stats[-1]["Progress/kimg"]["mean"] == 0.048
    assert {"Loss/G/loss", "Loss/D/loss", "Loss/r1_penalty", "Loss/pl_penalty", "Timing/sec_per_kimg"} <= set().union(
        *stats)
    options = json.loads((run / "training_options.json").read_text())
    assert options["options"]["mirror"] and options["dataset"]["num_images"] == 128
    for name in ("reals.png", "fakes_init.png", "fakes000000.png"):
        assert Image.open(run / name).size == (3 * 16, 2 * 16)
    ckpt = load_network(run / "network-snapshot-000000.safetensors")
    assert ckpt.metadata["kimg"] == 0.048 and ckpt.augment["preset"] == "bgc" and "p" in ckpt.augment
    assert ckpt.training_set_kwargs["xflip"] is True and ckpt.G_ema.img_resolution == 16
    assert [p.name for p in list_states(run)] == ["training-state-000000048.safetensors",   # end
                                                  "training-state-000000040.safetensors",   # tick 2
                                                  "training-state-000000008.safetensors"]   # tick 0
    groups = load_training_state(list_states(run)[0]).optimizers
    g, d = groups["G"]["param_groups"][0], groups["D"]["param_groups"][0]
    assert g["lr"] == pytest.approx(0.002 * 4 / 5) and g["betas"] == pytest.approx([0, 0.99 ** (4 / 5)])
    assert d["lr"] == pytest.approx(0.002 * 16 / 17) and d["betas"] == pytest.approx([0, 0.99 ** (16 / 17)])
    pytest.importorskip("tensorboard")
    assert list(run.glob("events.out.tfevents.*"))


def test_resume_latest_continues_and_refuses_changed_hyperparameters(blobs_dataset, tmp_path, capsys):
    args = ["train", "--data", str(blobs_dataset), "--outdir", str(tmp_path), *TINY, "--batch", "8", "--tick",
            "0.016", "--snap", "1", "--grid", "1x1"]
    assert stylegan(*args, "--kimg", "0.016") == 0
    capsys.readouterr()
    assert stylegan(*args, "--kimg", "0.032", "--resume", "latest") == 0
    out = capsys.readouterr().out
    assert "resuming 00000-" in out and "kimg 0.032" in out
    assert len([p for p in tmp_path.iterdir() if p.is_dir()]) == 1
    assert stylegan(*args, "--kimg", "0.048", "--resume", "latest", "--gamma", "5") == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "--gamma 5.0 (run: 0.1)" in err and err.count("\n") == 1


def test_transfer_learning_adopts_the_source_architecture_and_freezes_d_layers(blobs_dataset, tmp_path):
    src = make_tiny_checkpoint("stylegan2", resolution=16, channels=16, seed=4)
    src_path = save_network(src, tmp_path / "source.safetensors")
    out = tmp_path / "runs"
    assert stylegan("train", "--data", str(blobs_dataset), "--outdir", str(out), "--resume", str(src_path),
                    "--freezed", "4", "--batch", "8", "--gamma", "0.1", "--kimg", "0.032", "--tick", "0.016",
                    "--snap", "1", "--grid", "1x1") == 0
    run = only_run(out)
    assert "transfer: G: copied" in (run / "log.txt").read_text()
    new = load_network(run / "network-snapshot-000000.safetensors")
    assert new.G.config == src.G.config.replace(synthesis=new.G.config.synthesis)     # same sizes as the source
    assert new.G.z_dim == 32 and new.G.config.mapping.num_layers == 2
    d_old, d_new = src.D.state_dict(), new.D.state_dict()
    for name in ("b16.fromrgb.weight", "b16.conv0.weight", "b16.conv1.weight", "b16.skip.weight"):
        assert torch.equal(d_old[name], d_new[name]), f"frozen layer {name} changed"
    assert not torch.equal(d_old["b8.conv0.weight"], d_new["b8.conv0.weight"])
    assert not torch.equal(src.G.state_dict()["synthesis.b16.conv1.weight"],
                           new.G.state_dict()["synthesis.b16.conv1.weight"])
    options = json.loads((run / "training_options.json").read_text())["options"]
    assert options["ada_kimg"] == 100 and options["resume_from"] == str(src_path)


@pytest.mark.parametrize("cfg", ["stylegan3-t", "stylegan3-r"])
def test_stylegan3_configs_train_and_track_magnitudes(blobs_dataset, tmp_path, cfg):
    assert stylegan("train", "--data", str(blobs_dataset), "--outdir", str(tmp_path), "--cfg", cfg, "--cbase", "512",
                    "--cmax", "16", "--z-dim", "16", "--w-dim", "16", "--batch", "4", "--gamma", "0.5",
                    "--kimg", "0.008", "--tick", "0.004", "--snap", "1", "--grid", "1x1",
                    "--metrics", "eqt8_int") == 0
    run = only_run(tmp_path)
    records = [json.loads(line) for line in (run / "metric-eqt8_int.jsonl").read_text().splitlines()]
    assert len(records) == 2 and records[0]["snapshot_pkl"] == "network-snapshot-000000.safetensors"
    assert records[0]["results"]["eqt8_int"] > 10          # a PSNR in dB, from the metrics module
    ckpt = load_network(run / "network-snapshot-000000.safetensors")
    G = ckpt.G_ema
    assert G.config.variant == cfg and G.config.mapping.num_layers == 2
    mags = [float(getattr(G.synthesis, n).magnitude_ema) for n in G.synthesis.layer_names]
    assert all(np.isfinite(mags)) and all(m != 1.0 for m in mags)       # tracked from the global batch
    assert torch.equal(G.mapping.w_avg, ckpt.G.mapping.w_avg) and G.mapping.w_avg.abs().sum() > 0
    assert np.isclose(G.config.synthesis.magnitude_ema_beta, 0.5 ** (4 / 20000))


def test_sigterm_saves_a_training_state_and_exits_cleanly(blobs_dataset, tmp_path):
    args = ["train", "--data", str(blobs_dataset), "--outdir", str(tmp_path), *TINY, "--batch", "8", "--kimg", "100",
            "--tick", "0.016", "--snap", "1000", "--grid", "1x1"]
    proc = subprocess.Popen(stylegan_cmd(*args), env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (tmp_path.exists() and any(tmp_path.glob("*/stats.jsonl"))):
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "continue with --resume latest" in out
    states = list_states(only_run(tmp_path))
    assert len(states) == 2 and int(states[0].name[15:24]) > 8     # tick 0 plus the one written on SIGTERM


def test_dataset_errors_are_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert stylegan("train", "--data", str(tmp_path / "empty"), "--outdir", str(tmp_path / "o")) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "contains no images" in err
    assert stylegan("train", "--outdir", str(tmp_path / "o"), "--batch", "6", "--batch-gpu", "4") == 1
    assert "multiple of --batch-gpu" in capsys.readouterr().err


def test_transfer_from_an_official_pickle_copies_every_weight(reference_dir, tmp_path):
    from support.official_pickle import write_reference_pickle
    from support.training import make_blobs_dataset

    from stylegan.data.dataset_tool import make_dataset
    pkl = write_reference_pickle(reference_dir / "official-sg2-64.npz", tmp_path / "network-snapshot.pkl",
                                 generation="stylegan2-ada", augment_p=0.3)
    root = tmp_path / "data"
    root.mkdir()
    make_blobs_dataset(root, count=8)
    data64 = tmp_path / "blobs64.zip"
    make_dataset(root / "src", data64, resolution=64)     # the reference network is 64x64
    assert stylegan("train", "--data", str(data64), "--outdir", str(tmp_path / "runs"), "--resume", str(pkl),
                    "--glr", "0", "--dlr", "0", "--batch", "4", "--kimg", "0.004", "--tick", "0.004", "--snap", "1",
                    "--grid", "1x1") == 0
    source = load_network(pkl)
    run = only_run(tmp_path / "runs")
    trained = load_network(run / "network-snapshot-000000.safetensors")
    assert trained.G_ema.config.synthesis.channel_base == 2048 and trained.G_ema.z_dim == 128
    for name, p in source.G_ema.named_parameters():
        assert torch.equal(p, dict(trained.G_ema.named_parameters())[name]), name   # lr 0: nothing moved
    for name, p in source.D.named_parameters():
        assert torch.equal(p, dict(trained.D.named_parameters())[name]), name


@pytest.mark.parametrize("mode, expected", [("fixed", 0.4), ("noaug", None)])
def test_fixed_and_disabled_augmentation(blobs_dataset, tmp_path, mode, expected):
    assert stylegan("train", "--data", str(blobs_dataset), "--outdir", str(tmp_path), *TINY, "--batch", "8",
                    "--aug", mode, "--p", "0.4", "--ada-kimg", "0.01", "--kimg", "0.064", "--tick", "0.064",
                    "--snap", "1", "--grid", "1x1") == 0
    ckpt = load_network(only_run(tmp_path) / "network-snapshot-000000.safetensors")
    if expected is None:
        assert ckpt.augment is None
    else:
        assert ckpt.augment["p"] == pytest.approx(expected)     # ADA would have moved it by 0.64 per update


def test_a_run_folder_cannot_be_trained_by_two_processes_at_once(blobs_dataset, tmp_path, capsys):
    from stylegan.train.folder import RunLock
    args = ["train", "--data", str(blobs_dataset), "--outdir", str(tmp_path), *TINY, "--batch", "8", "--tick",
            "0.016", "--snap", "1", "--grid", "1x1"]
    assert stylegan(*args, "--kimg", "0.008") == 0
    with RunLock(only_run(tmp_path)):           # what a running trainer holds
        capsys.readouterr()
        assert stylegan(*args, "--kimg", "0.016", "--resume", "latest") == 1
        assert "is being trained by pid" in capsys.readouterr().err
    assert stylegan(*args, "--kimg", "0.016", "--resume", "latest") == 0


def test_datasets_read_from_disk_train_exactly_like_cached_ones(blobs_dataset, tmp_path, monkeypatch):
    from safetensors.torch import load_file

    import stylegan.data.dataset as dataset_module
    args = [*TINY, "--batch", "8", "--kimg", "0.032", "--tick", "0.032", "--snap", "1", "--grid", "1x1"]
    assert stylegan("train", "--data", str(blobs_dataset), "--outdir", str(tmp_path / "cached"), *args) == 0
    monkeypatch.setattr(dataset_module, "CACHE_LIMIT_BYTES", 0)      # decode every batch, one step ahead
    assert stylegan("train", "--data", str(blobs_dataset), "--outdir", str(tmp_path / "disk"), *args) == 0
    a = load_file(str(list_states(only_run(tmp_path / "cached"))[0]))
    b = load_file(str(list_states(only_run(tmp_path / "disk"))[0]))
    assert all(torch.equal(a[k], b[k]) for k in a)


def bar_renderings(stderr: str) -> list[str]:
    """Every state the progress bar was drawn in (tqdm redraws with carriage returns)."""
    return [part for part in stderr.replace("\n", "\r").split("\r") if part.startswith("train:")]


def test_a_run_that_ends_between_two_steps_finishes_with_its_snapshot_and_state(blobs_dataset, tmp_path):
    """--kimg x 1000 not a multiple of --batch: the last whole step ends the run (it used to step past the
    progress bar's total and crash); the bar never shows negative time left and shows fresh losses."""
    kimg, batch = "0.197", "8"
    args = ["train", "--data", str(blobs_dataset), "--outdir", str(tmp_path), *TINY, "--batch", batch,
            "--kimg", kimg, "--tick", "1", "--snap", "1", "--grid", "1x1", "--metrics", "none"]
    env = {k: v for k, v in cli_env().items() if k != "STYLEGAN_QUIET"}
    proc = subprocess.run([sys.executable, "-m", "stylegan.cli.main", *args], env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    steps = -(-round(float(kimg) * 1000) // int(batch))
    end = steps * int(batch)
    run = only_run(tmp_path)
    assert list_states(run)[0].name == f"training-state-{end:09d}.safetensors"
    assert load_network(run / "network-snapshot-000000.safetensors").metadata["kimg"] == end / 1000
    assert f"done: {end / 1000:.3f} kimg" in proc.stdout
    bars = bar_renderings(proc.stderr)
    assert bars and f"{end / 1000:.3f}/{end / 1000:.3f} kimg" in bars[-1]
    left = [b.split("<", 1)[1].split(",")[0].split("]")[0] for b in bars if "<" in b]
    assert left and not any(t.startswith("-") for t in left), left
    losses = {b.split("G ", 1)[1][:11] for b in bars if " G " in b}
    assert len(losses) >= 3, bars              # one tick spans the run: the losses shown must still move
