"""The run folder when things go wrong: a write that fails (a real EFBIG from the kernel, as a full disk
gives ENOSPC) stops the run with one line and leaves the earlier state intact; temporary files of a
write killed with SIGKILL are removed when the run is continued."""

from __future__ import annotations

import contextlib
import io
import os
import resource
import signal
import subprocess
import time

import pytest
from support.training import TINY, cli_env, stylegan_cmd

from stylegan.cli.main import main
from stylegan.files import is_partial_name
from stylegan.train.checkpoint import (
    find_latest_state,
    list_states,
    load_training_state,
)

ARGS = [*TINY, "--batch", "8", "--tick", "0.008", "--snap", "1", "--grid", "1x1", "--metrics", "none"]


def only_run(outdir):
    (run,) = [p for p in outdir.iterdir() if p.is_dir()]
    return run


def partials(folder):
    return sorted(p.name for p in folder.iterdir() if is_partial_name(p.name))


def stylegan(*args) -> str:
    """``stylegan -q ARGS`` in this process; returns what it printed (and asserts success)."""
    out = io.StringIO()
    with pytest.raises(SystemExit) as exc, contextlib.redirect_stdout(out):
        main(["-q", *args])
    assert exc.value.code == 0
    return out.getvalue()


def file_size_limit(max_bytes: int):
    """For the child only: writes past ``max_bytes`` fail with EFBIG (SIGXFSZ ignored, as Python does)."""
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))
    return apply


def test_a_failed_state_write_is_one_line_and_keeps_the_earlier_state(blobs_dataset, tmp_path):
    base = ["train", "--data", str(blobs_dataset), "--outdir", str(tmp_path), *ARGS]
    stylegan(*base, "--kimg", "0.016")
    run = only_run(tmp_path)
    earlier = list_states(run)[0]
    assert earlier.name == "training-state-000000016.safetensors"
    before = earlier.read_bytes()
    proc = subprocess.run(stylegan_cmd(*base, "--kimg", "0.032", "--resume", "latest"), env=cli_env(),
                          capture_output=True, text=True, timeout=300, check=False,
                          preexec_fn=file_size_limit(len(before) - 1))     # the snapshot fits, the state not
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: could not write training-state-000000024"), lines
    assert "File too large" in lines[0] and f"{earlier.name}, is intact" in lines[0]
    assert (run / "network-snapshot-000000.safetensors").exists()
    assert partials(run) == []                                  # the failed temporary file was removed
    assert find_latest_state(tmp_path) == earlier and earlier.read_bytes() == before
    load_training_state(earlier)
    out = stylegan(*base, "--kimg", "0.032", "--resume", "latest")
    assert "resuming" in out and list_states(run)[0].name == "training-state-000000032.safetensors"


@pytest.mark.slow
def test_files_of_a_write_killed_mid_way_are_removed_when_the_run_continues(blobs_dataset, tmp_path):
    base = ["train", "--data", str(blobs_dataset), "--outdir", str(tmp_path), *ARGS, "--keep-states", "2"]
    left = []
    for attempt in range(5):
        cmd = stylegan_cmd(*base, "--kimg", "100", *(["--resume", "latest"] if attempt else []))
        proc = subprocess.Popen(cmd, env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None and not left:
            runs = [p for p in tmp_path.iterdir() if p.is_dir()] if tmp_path.exists() else []
            if runs and list_states(runs[0]) and any(is_partial_name(e.name) and "snapshot" in e.name
                                                     for e in os.scandir(runs[0])):
                proc.send_signal(signal.SIGKILL)                    # in the middle of writing a snapshot
                proc.wait(timeout=60)
                left = partials(runs[0])
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=60)
        assert proc.returncode == -signal.SIGKILL, proc.stderr.read()
        if left:
            break
    assert left, "never caught the trainer while it was writing"
    run = only_run(tmp_path)
    nimg = int(list_states(run)[0].name[15:24])
    out = stylegan(*base, "--kimg", f"{(nimg + 8) / 1000}", "--resume", "latest")
    assert "resuming" in out and partials(run) == []
    assert f"removed {len(left)} unfinished file(s)" in (run / "log.txt").read_text()
    assert list_states(run)[0].name == f"training-state-{nimg + 8:09d}.safetensors"
