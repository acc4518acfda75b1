"""Crash safety: a run killed with SIGKILL and resumed ends bit-identical to an uninterrupted run."""

from __future__ import annotations

import signal
import subprocess
import time

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
