"""Data parallelism: 2 gloo processes under torchrun train bit-identically to 1 process with the same
global batch and micro-batch (2 gradient-accumulation rounds)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file
from support.training import TINY, cli_env, run_cli

from stylegan.train.checkpoint import list_states

COMMON = [*TINY, "--batch", "8", "--kimg", "0.064", "--tick", "0.032", "--snap", "1", "--ada-kimg", "0.05",
          "--grid", "2x2", "--seed", "3"]


def final_state(outdir):
    (run,) = [p for p in outdir.iterdir() if p.is_dir()]
    return run, list_states(run)[0]


@pytest.mark.slow
def test_two_gloo_processes_match_one_process_with_accumulation(blobs_dataset, tmp_path):
    run_cli("train", "--data", str(blobs_dataset), "--outdir", str(tmp_path / "one"), "--batch-gpu", "4", *COMMON)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "stylegan.cli.main", "-q", "train", "--data", str(blobs_dataset), "--outdir", str(tmp_path / "two"),
           *COMMON]
    proc = subprocess.run(cmd, env=cli_env(), capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 process(es) x 1 round(s) x 4" in proc.stdout
    assert proc.stdout.count("tick 0 ") == 1                     # only rank 0 logs

    run1, s1 = final_state(tmp_path / "one")
    run2, s2 = final_state(tmp_path / "two")
    assert "gpus2" in run2.name and s1.name == s2.name == "training-state-000000064.safetensors"
    t1, t2 = load_file(str(s1)), load_file(str(s2))
    compared = 0
    for key in t1:
        if key.startswith("rng."):
            continue                     # process-local generator states, re-seeded every step anyway
        assert torch.equal(t1[key], t2[key]), key
        compared += 1
    assert compared > 100 and float(t1["tensor.augment_p"]) > 0
    assert not torch.equal(t1["G.synthesis.b16.conv1.weight"], load_file(str(list_states(run1)[-1]))
                           ["G.synthesis.b16.conv1.weight"])   # the weights did move
