"""What every command shares: the error and exit-code convention, --threads, and clean-up on real signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from stylegan.cli.main import COMMANDS, FAILED, INTERRUPTED, TERMINATED, USAGE_ERROR, cli
from stylegan.devices import THREADS_ENV, available_cpus
from stylegan.files import is_partial_name
from support.cli import run

SRC = Path(__file__).resolve().parents[2] / "src"


def _env(**extra) -> dict:
    env = dict(os.environ, PYTHONPATH=str(SRC), OMP_NUM_THREADS="1")
    env.pop(THREADS_ENV, None)
    env.update(extra)
    return env


@pytest.mark.parametrize("args, message", [
    (["generate", "--bogus"], "error: No such option '--bogus'"),
    (["generate", "--trunc", "abc"], "error: Invalid value for '--trunc'"),
    (["nosuchcommand"], "error: No such command 'nosuchcommand'"),
    (["latent", "add"], "error: Missing argument"),
])
def test_usage_errors_are_one_line_and_exit_2(capsys, args, message):
    code, err = run(capsys, *args)
    assert code == USAGE_ERROR == 2
    assert len(err.strip().splitlines()) == 1 and err.startswith(message), err
    assert "--help)" in err


def test_refused_input_is_one_line_and_exit_1(capsys, tmp_path):
    (tmp_path / "bad.pkl").write_bytes(b"\x80\x04not a pickle at all")
    code, err = run(capsys, "generate", "--network", tmp_path / "bad.pkl", "--seeds", "0", "--outdir", tmp_path)
    assert code == FAILED == 1
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: "), err


def _all_commands():
    for name in COMMANDS:
        cmd = cli.get_command(None, name)
        if cmd is None:
            continue
        subs = getattr(cmd, "commands", None)
        yield from ((f"{name} {s}", c) for s, c in subs.items()) if subs else [(name, cmd)]


def test_every_command_has_threads():
    missing = [name for name, cmd in _all_commands() if not any(p.name == "threads" for p in cmd.params)]
    assert not missing, missing


def test_no_command_declares_an_option_twice():
    """``serve --threads`` once meant renders at once and also got the CPU-threads option: click warned and
    one of the two meanings was lost."""
    twice = []
    for name, cmd in _all_commands():
        flags = [opt for p in cmd.params for opt in (*p.opts, *p.secondary_opts)]
        twice += [f"{name} {f}" for f in sorted(set(flags)) if flags.count(f) > 1]
    assert not twice, twice


def test_threads_option_and_environment_are_honoured(capsys, tmp_path, monkeypatch):
    before = torch.get_num_threads()
    try:
        code, err = run(capsys, "latent", "from-seeds", "--seeds", "0", "--threads", "1", "-o", tmp_path / "a.npz")
        assert code == 0, err
        assert torch.get_num_threads() == 1
        monkeypatch.setenv(THREADS_ENV, "2")
        code, err = run(capsys, "latent", "from-seeds", "--seeds", "0", "-o", tmp_path / "b.npz")
        assert code == 0, err
        assert torch.get_num_threads() == 2
        monkeypatch.setenv(THREADS_ENV, "many")
        code, err = run(capsys, "latent", "from-seeds", "--seeds", "0", "-o", tmp_path / "c.npz")
        assert code == FAILED and f"${THREADS_ENV} must be a whole number" in err
    finally:
        torch.set_num_threads(before)


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs Linux CPU affinity")
def test_default_threads_follow_the_cpus_this_process_may_use():
    probe = ("import os, torch; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "
             "from stylegan.devices import available_cpus, set_threads; "
             "print(available_cpus(), set_threads(), torch.get_num_threads())")
    env = _env()
    del env["OMP_NUM_THREADS"]
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["1", "1", "1"]
    if (os.cpu_count() or 1) >= 2:
        out = subprocess.run([sys.executable, "-c", probe], env=_env(OMP_NUM_THREADS="2"), capture_output=True,
                             text=True, check=True)
        assert out.stdout.split() == ["1", "2", "2"]      # the standard OpenMP variable wins over the default
    assert 1 <= available_cpus() <= (os.cpu_count() or 1)


def _interrupt_video(tmp_path: Path, sig: int) -> tuple[int, str, list[str]]:
    """Start a long `stylegan video`, wait until its output is being written, send ``sig``."""
    out = tmp_path / "walk.mp4"
    out.write_bytes(b"an older video the user keeps")
    proc = subprocess.Popen(
        [sys.executable, "-m", "stylegan.cli.main", "video", "--seeds", "0-3", "--frames", "100000",
         "--threads", "1", "-o", str(out)],
        env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    try:
        while not any(is_partial_name(p.name) for p in tmp_path.iterdir()):
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "the video never started writing"
            time.sleep(0.05)
        time.sleep(0.5)   # frames are being encoded
        proc.send_signal(sig)
        code = proc.wait(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert out.read_bytes() == b"an older video the user keeps"
    return code, proc.stderr.read(), sorted(p.name for p in tmp_path.iterdir())


@pytest.mark.parametrize("sig, code, word", [(signal.SIGTERM, TERMINATED, "terminated"),
                                             (signal.SIGINT, INTERRUPTED, "interrupted")])
def test_a_signal_during_video_leaves_no_partial_file(tmp_path, sig, code, word):
    got, err, left = _interrupt_video(tmp_path, sig)
    assert got == code, err
    assert err.strip().splitlines()[-1] == word
    assert left == ["walk.mp4"], left
