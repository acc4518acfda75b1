"""``torchrun`` shares generate, directions and project over processes (2 gloo processes on the CPU
here, real ``torchrun`` subprocesses) and writes exactly what one process writes."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from support.cli import run


def torchrun(*args, nproc: int = 2) -> subprocess.CompletedProcess:
    env = dict(os.environ, STYLEGAN_QUIET="1", OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(sys.path))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
           "-m", "stylegan.cli.main", "-q", *map(str, args)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def same_npz(a, b) -> bool:
    with np.load(a) as x, np.load(b) as y:
        return sorted(x.files) == sorted(y.files) and all(np.array_equal(x[k], y[k]) for k in x.files)


def assert_same_folders(one, two):
    names = sorted(str(p.relative_to(one)) for p in one.rglob("*"))
    assert names == sorted(str(p.relative_to(two)) for p in two.rglob("*"))
    for name in names:
        if (one / name).is_dir():
            continue
        if name.endswith(".npz"):
            assert same_npz(one / name, two / name), name
        else:
            assert (one / name).read_bytes() == (two / name).read_bytes(), name


@pytest.mark.slow
def test_generate_shares_the_seeds_and_writes_the_one_process_files(sg2_model, tmp_path, capsys):
    args = ["generate", "--network", sg2_model, "--seeds", "0-4", "--batch", "2", "--noise-mode", "random",
            "--save-ws"]
    assert run(capsys, *args, "--outdir", tmp_path / "one", "--device", "cpu")[0] == 0
    proc = torchrun(*args, "--outdir", tmp_path / "two")       # 3 batches: 2 on process 0, 1 on process 1
    assert_same_folders(tmp_path / "one", tmp_path / "two")
    assert len(list((tmp_path / "two").glob("seed*.png"))) == 5
    assert proc.stderr.count("wrote 5 image(s)") == 1 and "(2 processes)" in proc.stderr


@pytest.mark.slow
def test_a_random_grid_is_gathered_on_process_0(sg2_model, tmp_path, capsys):
    proc = torchrun("generate", "--network", sg2_model, "--random", "5", "--grid", "2x3", "--batch", "2",
                    "--outdir", tmp_path / "two")
    seeds, = re.findall(r"random seeds: ([\d,]+)", proc.stderr)    # drawn once, by process 0
    assert run(capsys, "generate", "--network", sg2_model, "--seeds", seeds, "--grid", "2x3", "--batch", "2",
               "--outdir", tmp_path / "one", "--device", "cpu")[0] == 0
    assert_same_folders(tmp_path / "one", tmp_path / "two")


class _Brightness(torch.nn.Module):
    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return img.mean(dim=[1, 2, 3])


@pytest.mark.slow
@pytest.mark.parametrize("method", ["pca", "classifier"])
def test_directions_sampling_is_shared_with_the_one_process_result(method, sg2_model, tmp_path, capsys):
    if method == "pca":     # 9000 ws: 3 batches of 4096 (no --num: torchrun takes it for its --numa-binding)
        args = ["--method", "pca", "--samples", "9000", "--seed", "3"]
    else:                   # 40 images scored: 3 batches of 16
        torch.jit.save(torch.jit.script(_Brightness()), str(tmp_path / "clf.pt"))
        args = ["--method", "boundary", "--classifier", tmp_path / "clf.pt", "--samples", "40", "--seed", "3"]
    args = ["directions", "--network", sg2_model, *args]
    assert run(capsys, *args, "--out", tmp_path / "one.npz", "--device", "cpu")[0] == 0
    torchrun(*args, "--out", tmp_path / "two.npz")
    assert same_npz(tmp_path / "one.npz", tmp_path / "two.npz")


@pytest.mark.slow
def test_project_shares_the_targets_and_gathers_the_combined_file(sg2_model, tmp_path, capsys):
    assert run(capsys, "generate", "--network", sg2_model, "--seeds", "5-7", "--outdir", tmp_path / "targets",
               "--device", "cpu")[0] == 0
    args = ["project", "--network", sg2_model, "--target", tmp_path / "targets", "--steps", "2", "--batch", "1",
            "--space", "w+"]
    assert run(capsys, *args, "--outdir", tmp_path / "one", "--device", "cpu")[0] == 0
    proc = torchrun(*args, "--outdir", tmp_path / "two")        # 3 batches: 2 on process 0, 1 on process 1
    assert_same_folders(tmp_path / "one", tmp_path / "two")
    with np.load(tmp_path / "two" / "projected_w.npz") as f:
        assert f["ws"].shape[0] == 3 and list(f["labels"]) == ["seed0005.png", "seed0006.png", "seed0007.png"]
    assert proc.stderr.count("projected 3 image(s)") == 1
