"""MPS-safe by test: inference, projection, a training step and metrics take no path Apple's MPS lacks.

Nobody here has a Mac, so the paths are checked on the CPU under a dispatch mode that records every
ATen op: it fails on an op without an MPS kernel (nor a composite one that decomposes into others) in
PyTorch's own op table (``native_functions.yaml``, shipped with torch), and on any float64 tensor.
``devices.accumulation_dtype`` is swapped for its MPS answer (float32), so the code takes the branch an
MPS run takes. Float64 that deliberately stays on the host (CPU tensors, fine on a Mac too) lives in
the few named functions of ``HOST_FLOAT64``. Not covered: EQ-R, whose band-limited rotation filter is
designed in float64 on the CPU and in float32 on any other device by its own device check, a branch a
CPU run cannot take.
"""

from __future__ import annotations

import collections
import traceback
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from support.detectors import save_detector, write_images
from support.models import make_tiny_checkpoint
from support.training import TINY, make_blobs_dataset
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

NATIVE_FUNCTIONS = Path(__import__("torchgen").__file__).parent / "packaged" / "ATen" / "native" / "native_functions.yaml"
OK_KERNELS = {"MPS", "CompositeImplicitAutograd", "CompositeExplicitAutograd", "CompositeExplicitAutogradNonFunctional"}
#: Functions of ours that handle float64 tensors on the host by design (converted before they reach the
#: device, or read as numbers); the op's innermost frame of ours must be one of them ...
HOST_FLOAT64 = {
    "_host_uniform",    # metrics/equivariance.py: NVIDIA's random shifts/angles from a CPU generator
    "_host_row",        # metrics/equivariance.py: a batch's two sums as a host row ...
    "sharded_map",      # distributed.py: ... collected (one process: on the CPU; MPS runs are single-process)
    "gather_rows",
    "compute_equivariance",   # ... and added up as Python floats
}
#: ... or, for functions that only build host data (no device work below them), any frame of ours.
HOST_BUILDERS = {"_matrices"}   # train/augment.py: resampling matrices built on the CPU, moved in the device's dtype


def _mps_ops() -> set[str]:
    if not NATIVE_FUNCTIONS.exists():
        pytest.skip(f"PyTorch's op table is not installed ({NATIVE_FUNCTIONS})")
    entries = {e["func"].split("(")[0]: e for e in yaml.load(NATIVE_FUNCTIONS.read_text(), Loader=yaml.CSafeLoader)}

    def kernels(e) -> set[str]:
        keys = {k.strip() for key in (e.get("dispatch") or {}) for k in key.split(",")}
        if "structured_delegate" in e:
            keys |= kernels(entries[e["structured_delegate"]])
        elif e.get("dispatch") is None:
            keys.add("CompositeImplicitAutograd")
        return keys
    return {name for name, e in entries.items() if kernels(e) & OK_KERNELS}


def _ours() -> tuple[str, bool]:
    """file:line of the innermost frame in our package, and whether the host-float64 rules allow it."""
    frames = [f for f in traceback.extract_stack()[:-3] if "/stylegan/" in f.filename]
    if not frames:
        return "?", False
    inner = frames[-1]
    host = inner.name in HOST_FLOAT64 or any(f.name in HOST_BUILDERS for f in frames)
    return f"{inner.filename.rsplit('/stylegan/', 1)[-1]}:{inner.lineno}", host


class MPSCheck(TorchDispatchMode):
    """Records ops MPS lacks and float64 tensors outside ``HOST_FLOAT64``."""

    def __init__(self, allowed: set[str]):
        super().__init__()
        self.allowed = allowed
        self.missing: collections.Counter = collections.Counter()
        self.float64: collections.Counter = collections.Counter()
        self.ops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        self.ops += 1
        name = func._schema.name.split("::")[-1] + ("" if func._overloadname == "default" else f".{func._overloadname}")
        if func._schema.name.startswith("aten::") and name not in self.allowed:
            self.missing[(name, _ours()[0])] += 1
        out = func(*args, **kwargs)
        if any(isinstance(t, torch.Tensor) and t.dtype in (torch.float64, torch.complex128)
               for t in tree_flatten((args, kwargs, out))[0]):
            where, host = _ours()
            if not host:
                self.float64[(name, where)] += 1
        return out


@pytest.fixture(scope="module")
def allowed():
    return _mps_ops() | {"_record_function_enter_new", "_record_function_exit._RecordFunction"}  # profiler markers


@pytest.fixture(autouse=True)
def as_on_mps(monkeypatch):
    from stylegan import devices
    monkeypatch.setattr(devices, "accumulation_dtype", lambda device: torch.float32)


def check(allowed, fn):
    mode = MPSCheck(allowed)
    with mode:
        fn()
    assert mode.ops > 100, "nothing ran under the check"
    assert not mode.missing, f"ops without an MPS kernel: {dict(mode.missing)}"
    assert not mode.float64, f"float64 tensors (MPS has none): {dict(mode.float64)}"


def test_the_check_catches_float64_and_ops_mps_lacks(allowed):
    with pytest.raises(AssertionError, match="float64"):
        check(allowed, lambda: [torch.ones(200).double().sum() for _ in range(60)])
    with pytest.raises(AssertionError, match="without an MPS kernel.*linalg_eig"):
        check(allowed, lambda: [torch.linalg.eig(torch.eye(3)) for _ in range(101)])
    assert "linalg_eig" not in allowed and "add.Tensor" in allowed and "convolution" in allowed


def test_inference(allowed):
    from stylegan.checkpoints import load_generator
    from stylegan.latent.sampling import GenerationRequest
    nets = [load_generator(None), make_tiny_checkpoint("stylegan3").G_ema,
            make_tiny_checkpoint("stylegan3", variant="r").G_ema]

    def run():
        for G in nets:
            request = GenerationRequest(G, 0.7, noise_mode="random")
            lat = request.seed_latents([0, 1])
            request.images(lat.ws, noise_seeds=lat.noise_seeds)
    check(allowed, run)


def test_projection(allowed):
    from stylegan.checkpoints import load_network
    from stylegan.latent.projection import ProjectionConfig, project
    from stylegan.perception.lpips import load_perceptual
    ckpt = load_network(None, which=("G_ema", "D"))
    G = ckpt.G_ema
    target = np.full([1, G.img_resolution, G.img_resolution, 3], 100, np.uint8)
    check(allowed, lambda: project(G, target, load_perceptual(None, None, D=ckpt.D),
                                   ProjectionConfig(num_steps=3, w_avg_samples=200)))


def test_a_training_step(allowed, tmp_path):
    from stylegan.cli.main import main
    data = make_blobs_dataset(tmp_path)

    def run():
        with pytest.raises(SystemExit) as exit_info:
            main(["-q", "train", "--data", str(data), "--outdir", str(tmp_path / "runs"), *TINY, "--batch", "4",
                  "--kimg", "0.004", "--tick", "0.004", "--snap", "1000", "--grid", "1x1", "--metrics", "none",
                  "--aug", "fixed", "--p", "0.5", "--device", "cpu"])
        assert exit_info.value.code == 0
    check(allowed, run)


@pytest.mark.parametrize("metric", ["fid50k_full", "eqt50k_int", "eqt50k_frac"])
def test_metrics(allowed, metric, tmp_path):
    from stylegan.checkpoints import load_generator
    from stylegan.metrics import compute_metric
    if metric.startswith("eq"):
        G = make_tiny_checkpoint("stylegan3").G_ema
        check(allowed, lambda: compute_metric(metric, G, num_gen=2, batch_size=2))
        return
    G = load_generator(None)
    real = write_images(tmp_path / "real", 8, resolution=G.img_resolution)
    detector = save_detector("inception", tmp_path / "inception.pt")
    check(allowed, lambda: compute_metric(metric, G, real, num_gen=8, batch_size=4, detector=detector, cache=False))
