"""Isolated calls (checkpoints/isolation.py): a crash, a memory bomb or a hang in the child is reported, the
caller survives, the memory limit is real, and untrusted model files come back as native files."""

from __future__ import annotations

import os
import signal
import threading

import pytest
import torch

from fuzz import crafted
from stylegan.checkpoints import load_generator
from stylegan.checkpoints.isolation import Worker, convert_untrusted, untrusted_memory_limit
from stylegan.errors import CheckpointError


@pytest.fixture(scope="module")
def worker():
    with Worker(preload=()) as w:
        yield w


def test_results_refusals_and_bugs_come_back_as_data(worker):
    ok = worker.call("math:sqrt", [9.0], memory_bytes=1 << 28, timeout=60)
    assert ok.kind == "ok" and ok.value == 3.0
    refused = worker.call("stylegan.latent.io:load_ws", ["/nonexistent.npz"], memory_bytes=1 << 28, timeout=60)
    assert refused.kind == "refused" and refused.error == "UserInputError" and "not found" in refused.message
    bug = worker.call("json:loads", ["{"], memory_bytes=1 << 28, timeout=60)
    assert bug.kind == "bug" and bug.error == "JSONDecodeError" and "Traceback" in bug.message


def test_the_memory_limit_stops_a_bomb_and_the_child_carries_on(worker):
    out = worker.call("builtins:bytearray", [4 << 30], memory_bytes=256 << 20, timeout=60)
    assert out.kind == "bug" and out.error == "MemoryError"
    assert worker.call("math:sqrt", [4.0], memory_bytes=1 << 28, timeout=60).value == 2.0


def test_a_segfault_or_a_hang_costs_the_child_only(worker):
    out = worker.call("ctypes:string_at", [0], memory_bytes=1 << 28, timeout=60)
    assert out.kind == "crash" and "SIGSEGV" in out.message
    out = worker.call("time:sleep", [30], memory_bytes=1 << 28, timeout=1)
    assert out.kind == "timeout"
    assert worker.call("math:sqrt", [16.0], memory_bytes=1 << 28, timeout=60).value == 4.0   # a fresh child


def test_an_untrusted_model_comes_back_as_a_native_file_with_the_same_generator(tmp_path, sg2_model):
    dest = convert_untrusted(sg2_model, tmp_path)
    assert dest.name == "generator.safetensors"
    a, b = load_generator(sg2_model), load_generator(dest)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_an_untrusted_model_that_is_refused_or_kills_the_child_is_one_error(tmp_path, sg2_model):
    hostile = tmp_path / "deep.pkl"
    hostile.write_bytes(crafted.deep_tuple_key())
    with pytest.raises(CheckpointError, match="deep.pkl: the file nests containers more than 100 deep"):
        convert_untrusted(hostile, tmp_path)
    with Worker() as w:
        w.call("math:sqrt", [1.0], memory_bytes=1 << 28, timeout=300)        # the child is up
        os.kill(w.pid, signal.SIGSTOP)                                        # it cannot finish the next call ...
        threading.Timer(0.5, os.kill, (w.pid, signal.SIGKILL)).start()       # ... before it is killed
        with pytest.raises(CheckpointError, match="sg2.safetensors could not be loaded safely: the child process "
                                                  "was killed by SIGKILL"):
            convert_untrusted(sg2_model, tmp_path, worker=w)


def test_the_limit_scales_with_the_file():
    assert untrusted_memory_limit(0) == 1 << 30
    assert untrusted_memory_limit(100 << 20) == 4 * (100 << 20) + (1 << 30)
