"""Open untrusted files in a child process under a memory limit, so that a crash costs the child only.

The readers refuse every hostile file we know of, but a long-running process (``stylegan serve``) or a
fuzzer must survive the ones we do not know of yet: a segfault in a C extension, a memory bomb that
slipped past the budgets, a hang. :class:`Worker` runs calls ``module:function(*args)`` one at a time in
a child Python (``python -m stylegan.checkpoints.isolation``) whose address space is limited per call
(``RLIMIT_AS``: its size after start-up + the call's ``memory_bytes``); arguments and results travel as
JSON lines, so nothing the child sends can run code in the parent. Each call comes back as an
:class:`Outcome`: its JSON result, a refusal (one ``StyleGANError`` line), a bug (a traceback), a
crash (the signal), a timeout, and the call's peak resident memory and stderr output.

:func:`convert_untrusted` is how the web explorer opens a model file from ``--model-dir``: the child
loads it and writes its generator in our native format to a private folder; the server then loads
that file, which our own writer made. The fuzzing suite (tests/fuzz) uses the same :class:`Worker`.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import CheckpointError, StyleGANError

__all__ = ["Outcome", "Worker", "convert_untrusted", "untrusted_memory_limit"]

#: Memory a child may add per call for a model file: this much per byte of file ...
MEMORY_FACTOR = 4
#: ... plus this much (torch's own allocations, the network's activations in a smoke test).
MEMORY_SLACK = 1 << 30
#: Longest a child may take to open a model file.
LOAD_TIMEOUT_S = 600.0
#: Longest a child may take to start (Python, torch and the preloaded modules) before its first call.
START_TIMEOUT_S = 300.0
_MAX_REPLY = 1 << 20
_MAX_STDERR = 4096


@dataclass
class Outcome:
    """What one isolated call did. ``kind``: 'ok' | 'refused' | 'bug' | 'crash' | 'timeout'."""

    kind: str
    value: Any = None                 # the JSON result ('ok')
    error: str = ""                   # the exception type ('refused', 'bug')
    message: str = ""                 # the error line, the traceback ('bug'), or what happened
    peak_bytes: int = 0               # the call's peak resident memory above the child's baseline
    stderr: str = ""                  # what the call wrote to stderr (warnings)
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)


def untrusted_memory_limit(file_bytes: int) -> int:
    """The memory a child may add to open a model file of ``file_bytes`` (see docs/security.md)."""
    return MEMORY_FACTOR * int(file_bytes) + MEMORY_SLACK


def _child_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    env.setdefault("OMP_NUM_THREADS", "1")
    env["MALLOC_ARENA_MAX"] = "2"          # glibc reserves 64 MB of address space per thread arena otherwise
    env["STYLEGAN_QUIET"] = "1"
    return env


class Worker:
    """A child process running isolated calls; reusable until a call crashes or times out (then restarted)."""

    def __init__(self, preload: tuple[str, ...] = ("stylegan.checkpoints",)):
        self.preload = preload
        self._proc: subprocess.Popen | None = None

    def __enter__(self) -> "Worker":
        return self

    @property
    def pid(self) -> int | None:
        """The child's process id (None before the first call or after a crash)."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def __exit__(self, *exc) -> None:
        self.close()

    def _start(self) -> subprocess.Popen | None:
        """The running child, started (and waited for until it is ready) if needed; None if it cannot start."""
        if self._proc is None or self._proc.poll() is not None:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "stylegan.checkpoints.isolation", *self.preload],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=_child_env(),
                start_new_session=True)
            if self._read_line(self._proc, START_TIMEOUT_S) != b'{"ready": true}\n':
                self.close()
                return None
        return self._proc

    def call(self, target: str, args: list, *, memory_bytes: int, timeout: float) -> Outcome:
        """Run ``target`` (``'package.module:function'``) on JSON ``args`` in the child (``timeout``: seconds
        for the call itself; starting a child has its own limit, :data:`START_TIMEOUT_S`)."""
        proc = self._start()
        if proc is None:
            return Outcome("crash", message="the child process did not start")
        start = time.monotonic()
        request = json.dumps({"target": target, "args": args, "memory_bytes": int(memory_bytes)}) + "\n"
        try:
            proc.stdin.write(request.encode())
            proc.stdin.flush()
        except OSError:
            return self._died(start, "the child process could not be reached")
        line = self._read_line(proc, timeout)
        seconds = time.monotonic() - start
        if line is None:
            self.close()
            return Outcome("timeout", message=f"no answer within {timeout:g} s", seconds=seconds)
        if not line:
            return self._died(start, "")
        try:
            reply = json.loads(line)
            return Outcome(reply["kind"], value=reply.get("value"), error=str(reply.get("error", "")),
                           message=str(reply.get("message", "")), peak_bytes=int(reply.get("peak_bytes", 0)),
                           stderr=str(reply.get("stderr", "")), seconds=seconds)
        except (ValueError, KeyError, TypeError):
            self.close()
            return Outcome("crash", message="the child process sent a malformed answer", seconds=seconds)

    @staticmethod
    def _read_line(proc: subprocess.Popen, timeout: float) -> bytes | None:
        """One reply line; b'' when the child died, None on timeout."""
        ready, _, _ = select.select([proc.stdout], [], [], timeout)
        if not ready:
            return None
        return proc.stdout.readline(_MAX_REPLY)

    def _died(self, start: float, why: str) -> Outcome:
        proc = self._proc
        code = proc.wait() if proc is not None else None
        self._proc = None
        if code is not None and code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            why = why or f"the child process was killed by {name}"
        return Outcome("crash", message=why or f"the child process exited with code {code}",
                       seconds=time.monotonic() - start, extra={"returncode": code})

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                proc.kill()
        proc.wait()
        for stream in (proc.stdin, proc.stdout):
            try:
                stream.close()
            except OSError:
                pass


def convert_untrusted(source: str | os.PathLike, dest_dir: str | os.PathLike, worker: Worker | None = None,
                      timeout: float = LOAD_TIMEOUT_S) -> Path:
    """Open the model file ``source`` in a child process (memory limited, see :func:`untrusted_memory_limit`)
    and write its generator as ``dest_dir/generator.safetensors``; returns that path. ``worker``: a
    :class:`Worker` to reuse (one is started and closed otherwise).

    Raises :class:`CheckpointError` with the child's one-line reason when the file is refused, and also
    when the child crashed, ran out of memory or took longer than ``timeout`` seconds."""
    source = Path(source)
    try:
        size = sum(p.stat().st_size for p in source.rglob("*") if p.is_file()) if source.is_dir() \
            else source.stat().st_size
    except OSError as exc:
        raise CheckpointError(f"cannot read {source.name}: {exc.strerror or exc}") from None
    dest = Path(dest_dir) / "generator.safetensors"
    own = worker is None
    worker = worker or Worker()
    try:
        out = worker.call("stylegan.checkpoints.isolation:write_generator", [str(source), str(dest)],
                          memory_bytes=untrusted_memory_limit(size), timeout=timeout)
    finally:
        if own:
            worker.close()
    if out.kind == "ok":
        return dest
    if out.kind == "refused":
        raise CheckpointError(out.message)
    if out.kind == "bug":
        raise CheckpointError(f"{source.name} could not be loaded (the loader failed: "
                              f"{out.message.strip().splitlines()[-1][:200]})")
    raise CheckpointError(f"{source.name} could not be loaded safely: {out.message} (the file may be "
                          f"corrupt or malicious)")


def write_generator(source: str, dest: str) -> dict:
    """Child side of :func:`convert_untrusted`: load ``source``, write its generator to ``dest``."""
    from . import Checkpoint, load_network, save_network
    ckpt = load_network(source, which=("G_ema", "G"))
    G = ckpt.generator()
    save_network(Checkpoint(G_ema=G, metadata=ckpt.metadata, training_set_kwargs=ckpt.training_set_kwargs,
                            source_format=ckpt.source_format), dest)
    return {"format": ckpt.source_format, "generation": G.config.generation}


def _vm_kb(field_name: str) -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _reset_peak() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _die_with_parent() -> None:
    """Linux: the kernel kills this child when its parent dies (a hung call must not outlive the server)."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)        # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _serve(preload: list[str]) -> None:
    """The child: read one JSON request per line from stdin, answer one JSON line each (fd 1 only)."""
    import importlib
    import resource
    _die_with_parent()
    reply_fd = os.dup(1)
    os.dup2(2, 1)                                    # stray prints must not corrupt the replies
    replies = os.fdopen(reply_fd, "w")
    for name in preload:
        importlib.import_module(name)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    err = tempfile.TemporaryFile()
    replies.write('{"ready": true}\n')
    replies.flush()
    for line in sys.stdin:
        request = json.loads(line)
        os.dup2(err.fileno(), 2)
        err.seek(0)
        err.truncate()
        _reset_peak()
        base = _vm_kb("VmRSS")
        limit = _vm_kb("VmSize") * 1024 + int(request["memory_bytes"])
        reply: dict = {}
        try:
            if hard == resource.RLIM_INFINITY or limit < hard:
                resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
            module, _, function = request["target"].partition(":")
            value = getattr(importlib.import_module(module), function)(*request["args"])
            reply = {"kind": "ok", "value": value}
        except StyleGANError as exc:
            reply = {"kind": "refused", "error": type(exc).__name__, "message": str(exc)}
        except BaseException as exc:  # noqa: BLE001 - reported to the parent as a bug, with its traceback
            reply = {"kind": "bug", "error": type(exc).__name__, "message": traceback.format_exc()[-8000:]}
        finally:
            resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        sys.stderr.flush()
        err.seek(0)
        reply["stderr"] = err.read(_MAX_STDERR).decode("utf-8", "replace")
        reply["peak_bytes"] = max(0, _vm_kb("VmHWM") - base) * 1024
        try:
            text = json.dumps(reply)
        except (TypeError, ValueError):
            text = json.dumps({"kind": "bug", "error": "TypeError", "message": "the result is not JSON data",
                               "stderr": reply["stderr"], "peak_bytes": reply["peak_bytes"]})
        replies.write(text + "\n")
        replies.flush()


if __name__ == "__main__":
    _serve(sys.argv[1:])
