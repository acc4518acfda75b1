"""``torchrun`` shares a metric's work over processes (2 gloo processes on the CPU here) and gets the
one-process numbers exactly: generated samples, real images and PPL/EQ batches are shared out batch
by batch, and process 0 accumulates them in the one-process order."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from support.detectors import save_detector, write_images
from support.models import save_tiny

METRICS = "fid50k_full,kid50k_full,pr50k3_full,is50k,ppl2_wend,eqt50k_int,eqt50k_frac,eqr50k"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("dist")
    real = write_images(d / "real", 21, seed=5)          # 3 batches of 8, the last partial
    names = sorted(p.name for p in real.glob("*.png"))
    (real / "dataset.json").write_text(json.dumps({"labels": [[n, i % 3] for i, n in enumerate(names)]}))
    return {"real": real, "inception": save_detector("inception", d / "inception.pt"),
            "vgg16": save_detector("vgg16", d / "vgg16.pt"),
            "model": save_tiny(d / "sg3r.safetensors", "stylegan3", variant="r", c_dim=3)}


def _args(files):
    return ["metrics", "--network", str(files["model"]), "--metrics", METRICS, "--data", str(files["real"]),
            "--detector", f"inception={files['inception']}", "--detector", f"vgg16={files['vgg16']}",
            "--num-gen", "18", "--batch", "8", "--seed", "4"]


def _one_process(files):
    """The same metrics through the Python API in this process (what the CLI calls)."""
    from stylegan.checkpoints import load_network
    from stylegan.metrics import compute_metric
    G = load_network(files["model"]).generator().eval()
    detectors = {"inception": files["inception"], "vgg16": files["vgg16"]}
    results = [compute_metric(name, G, files["real"], num_gen=18, batch_size=8, seed=4, detector=detectors)
               for name in METRICS.split(",")]
    return {r.metric: r.record() for r in results}


def _records(text):
    return {r["metric"]: r for r in map(json.loads, text.splitlines())}


@pytest.mark.slow
def test_two_gloo_processes_give_the_one_process_values_exactly(files, tmp_path):
    one = _one_process(files)
    env = dict(os.environ, STYLEGAN_CACHE=str(tmp_path / "cache2"), STYLEGAN_QUIET="1", OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join(sys.path))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "stylegan.cli.main", *_args(files)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    two = _records(proc.stdout)      # only process 0 prints
    assert sorted(one) == sorted(two) == sorted(["fid18_full", "kid18_full", "pr0.018k3_full", "is18",
                                                 "ppl2_wend_18", "eqt18_int", "eqt18_frac", "eqr18"])
    for name in one:
        assert two[name]["results"] == one[name]["results"], name
        assert (one[name]["num_gpus"], two[name]["num_gpus"]) == (1, 2)
        assert two[name]["num_real"] == one[name]["num_real"]
    assert one["fid18_full"]["num_real"] == 21
    # Process 0 wrote the real-image statistics once each (FID's mean/covariance, KID's and PR's features).
    assert len(list((tmp_path / "cache2" / "metrics").glob("real-*.npz"))) == 3
