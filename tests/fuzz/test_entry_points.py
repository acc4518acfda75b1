"""Every command that opens a model file, given each class of hostile file: one ``error:`` line, exit code 1,
no traceback, nothing written (info, convert, generate, train --resume, metrics --network/--detector, serve)."""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile

import pytest
import torch

from fuzz import crafted
from support.cli import run

HOSTILE = {
    "deep.pkl": (crafted.deep_tuple_key, "nests containers more than 100 deep"),
    "dtype.pkl": (lambda: crafted.dtype_rebuilt_after_use("f4"), "changes a numpy dtype"),
    "zero-stride.pkl": (crafted.zero_stride_views, "of tensor data from"),
    "claims.pkl": (crafted.official_claims_huge_dims, "expected (8, 65536)"),
    "abc.pkl": (lambda: crafted.official_with(":z_dim", "abc"), "z_dim must be an integer, not 'abc'"),
    "tf.pkl": (crafted.tf_zero_size_variable, "non-zero dimensions"),
    "huge.safetensors": (crafted.native_huge_architecture, "do not match the rebuilt architecture"),
    "deep.pt": (crafted.rosinality_deep_nesting, "nests containers more than 100 deep"),
    "zero.pt": (crafted.rosinality_zero_stride, "of tensor data from"),
}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    return {name: crafted.write(folder, {name: make()})[name] for name, (make, _) in HOSTILE.items()}


@pytest.fixture(scope="module")
def blobs(tmp_path_factory):
    from support.training import make_blobs_dataset
    return make_blobs_dataset(tmp_path_factory.mktemp("blobs"), count=8)


@pytest.fixture(scope="module")
def model16(tmp_path_factory):
    """A 16x16 model, the size of the blobs dataset."""
    from support.models import save_tiny
    return save_tiny(tmp_path_factory.mktemp("m16") / "m16.safetensors", "stylegan2", resolution=16)


def one_line(code: int, err: str, message: str) -> None:
    assert code == 1, err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert message in err, err


COMMANDS = {
    "info": lambda f, tmp, data: ["info", f],
    "convert": lambda f, tmp, data: ["convert", f, tmp / "out.safetensors"],
    "generate": lambda f, tmp, data: ["generate", "--network", f, "--seeds", "0", "--outdir", tmp / "out"],
    "train --resume": lambda f, tmp, data: ["train", "--data", data, "--outdir", tmp / "out", "--resume", f,
                                            "--kimg", "0.01", "--batch", "4", "--metrics", "none"],
    "metrics --network": lambda f, tmp, data: ["metrics", "--network", f, "--metrics", "eqt50k_int", "--num-gen", "2"],
    "serve --network": lambda f, tmp, data: ["serve", "--network", f, "--port", "0"],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_every_command_refuses_every_hostile_model_in_one_line(capsys, tmp_path, hostile, blobs, command, name):
    code, err = run(capsys, *COMMANDS[command](hostile[name], tmp_path, blobs))
    one_line(code, err, HOSTILE[name][1])
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.safetensors"))
    assert not (tmp_path / "out.safetensors").exists()


def _torchscript(tmp_path, replace: str | None = None, data: bytes = b"") -> object:
    """A real TorchScript file; ``replace``: the archive member (e.g. 'data.pkl') swapped for ``data``."""
    class Net(torch.nn.Module):
        def forward(self, x):
            return x.mean(dim=[2, 3])
    path = tmp_path / "net.pt"
    torch.jit.save(torch.jit.script(Net()), str(path))
    if replace is None:
        return path
    with zipfile.ZipFile(path) as zf:
        members = {i.filename: zf.read(i) for i in zf.infolist()}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for key, value in members.items():
            zf.writestr(key, data if key.endswith("/" + replace) else value)
    path.write_bytes(buf.getvalue())
    return path


@pytest.mark.parametrize("member, data, message", [
    ("data.pkl", crafted.deep_tuple_key(), "nests containers more than 100 deep"),
    ("constants.pkl", crafted.deep_tuple_key(), "nests containers more than 100 deep"),
    ("data.pkl", crafted.changed_after_handoff(), "changes a container after it was put into another object"),
    ("data.pkl", b"\x80\x02garbage", "data.pkl is not a valid pickle"),
])
def test_metrics_refuses_a_hostile_detector_in_one_line(capsys, tmp_path, model16, blobs, member, data, message):
    detector = _torchscript(tmp_path, member, data)
    code, err = run(capsys, "metrics", "--network", model16, "--metrics", "fid50k_full", "--num-gen", "2",
                    "--data", blobs, "--detector", f"inception={detector}", "--no-cache")
    one_line(code, err, message)


def test_the_commands_that_used_to_crash_exit_cleanly_in_a_real_process(tmp_path, hostile, model16, blobs):
    """A segfault cannot be caught in-process: these ran into one before (numpy's dtype, torch's unpicklers)."""
    detector = _torchscript(tmp_path, "data.pkl", crafted.deep_tuple_key())
    for args in (["generate", "--network", hostile["dtype.pkl"], "--seeds", "0", "--outdir", tmp_path / "o"],
                 ["info", hostile["deep.pt"]],
                 ["metrics", "--network", model16, "--metrics", "fid50k_full", "--num-gen", "2", "--data", blobs,
                  "--detector", f"inception={detector}", "--no-cache"]):
        r = subprocess.run([sys.executable, "-m", "stylegan.cli.main", *map(str, args)], capture_output=True,
                           text=True, timeout=600)
        assert r.returncode == 1, (args, r.returncode, r.stderr[-2000:])
        assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, r.stderr
