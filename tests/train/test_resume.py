"""Crash safety: a run killed with SIGKILL and resumed ends bit-identical to an uninterrupted run."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from support.training import TINY, cli_env, run_cli, stylegan_cmd

from stylegan.train.checkpoint import list_states, read_header

# 40 steps of batch 8: every lazy regulariser (G every 4, D every 16) and ADA update (every 4) runs,
# with ADA fast enough (--ada-kimg 0.1) that augmentations are really applied.
KIMG = "0.32"
COMMON = [*TINY, "--batch", "8", "--kimg", KIMG, "--tick", "0.04", "--snap", "1", "--ada-kimg", "0.1",
          "--keep-states", "0", "--seed", "7"]


def final_state(outdir):
    (run,) = [p for p in outdir.iterdir() if p.is_dir()]
    return list_states(run)[0]


@pytest.mark.slow
def test_sigkill_then_resume_latest_equals_an_uninterrupted_run(blobs_dataset, tmp_path):
    straight = tmp_path / "straight"
    run_cli("train", "--data", str(blobs_dataset), "--outdir", str(straight), *COMMON)

    crashed = tmp_path / "crashed"
    args = ["train", "--data", str(blobs_dataset), "--outdir", str(crashed), *COMMON]
    proc = subprocess.Popen(stylegan_cmd(*args), env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    killed_at = None
    while time.time() < deadline and proc.poll() is None:
        runs = [p for p in crashed.iterdir() if p.is_dir()] if crashed.exists() else []
        states = list_states(runs[0]) if runs else []
        if states and int(states[0].name.split("-")[-1].split(".")[0]) >= 160:
            proc.send_signal(signal.SIGKILL)
            killed_at = states[0].name
            break
        time.sleep(0.02)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    (run,) = [p for p in crashed.iterdir() if p.is_dir()]
    assert list_states(run)[0].name != "training-state-000000320.safetensors", killed_at

    # The user re-runs the same command with --resume latest.
    out = run_cli(*args, "--resume", "latest")
    assert "resuming" in out.stdout

    a, b = final_state(straight), final_state(crashed)
    assert a.name == b.name == "training-state-000000320.safetensors"
    ta, tb = load_file(str(a)), load_file(str(b))
    assert sorted(ta) == sorted(tb)
    assert any(k.startswith("opt.G.state.") for k in ta) and "tensor.augment_p" in ta
    assert float(ta["tensor.augment_p"]) > 0, "ADA never switched augmentations on; the test would be too weak"
    for key in ta:
        assert torch.equal(ta[key], tb[key]), f"{key} differs after kill + resume"
    ca, cb = read_header(a)["counters"], read_header(b)["counters"]
    assert {k: v for k, v in ca.items() if k != "total_time"} == {k: v for k, v in cb.items() if k != "total_time"}
    stats_lines = (run / "stats.jsonl").read_text().splitlines()
    assert len(stats_lines) >= 9   # ticks of both processes were logged into the same run folder


FIXTURES = Path(__file__).parent / "fixtures"


@pytest.mark.parametrize("cfg", ["stylegan2", "stylegan3-t"])
def test_a_state_written_by_the_previous_release_resumes(blobs_dataset, tmp_path, cfg):
    """Training states written by 02fc8b4 (before the run object) continue: the same weights, optimiser
    moments and learning rates, ADA p, path-length mean, counters; the run then trains on to the end."""
    from stylegan.train.config import TrainingOptions
    from stylegan.train.loop import TrainingRun

    run = tmp_path / "runs" / f"00000-{cfg}-blobs-gpus1-batch4-gamma0.1"
    run.mkdir(parents=True)
    old = run / "training-state-000000020.safetensors"
    shutil.copy(FIXTURES / f"main-02fc8b4-{cfg}.safetensors", old)
    stored = load_file(str(old))
    resumed = TrainingRun.build(blobs_dataset, tmp_path / "runs", TrainingOptions(kimg=0.024), resume="latest",
                                explicit={"kimg"}, quiet=True)
    try:
        for prefix, net in (("G.", resumed.G), ("D.", resumed.D), ("G_ema.", resumed.G_ema)):
            for name, t in net.state_dict().items():
                assert torch.equal(t, stored[prefix + name]), prefix + name
        assert torch.equal(resumed.augment_pipe.p, stored["tensor.augment_p"])
        assert torch.equal(resumed.loss.pl_mean, stored["tensor.pl_mean"])
        assert resumed.counters.cur_nimg == 20 and resumed.counters.batch_idx == 5
        groups = {k: opt.param_groups[0] for k, opt in resumed.optimizers.items()}
        header = read_header(old)
        for key in ("G", "D"):
            assert groups[key]["lr"] == pytest.approx(header["optimizers"][key]["param_groups"][0]["lr"])
        state = resumed.optimizers["G"].state_dict()["state"]
        assert torch.equal(state[0]["exp_avg_sq"], stored["opt.G.state.0.exp_avg_sq"])
        assert resumed.opts.cfg == cfg and resumed.opts.kimg == 0.024
        with resumed.opened():
            resumed.train()                                  # and it trains on (one step) to its end
    finally:
        resumed.close()
    assert list_states(run)[0].name == "training-state-000000024.safetensors"
    assert "resuming 00000-" in (run / "log.txt").read_text()
