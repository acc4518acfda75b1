"""A run's folder: its lock, its log, its statistics sink, and one clear error when a file cannot be
written (disk full, quota, permissions). Only process 0 writes; other processes get a folder object
without a path that writes nothing."""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import time
from pathlib import Path

from tqdm.auto import tqdm

from ..errors import CheckpointError, UserInputError
from ..files import remove_stale_partials
from .checkpoint import list_states


def run_dir_name(outdir: Path, cfg: str, dataset_name: str, world: int, batch: int, gamma: float,
                 desc: str | None) -> Path:
    """``<outdir>/<id:05d>-<cfg>-<dataset>-gpus<N>-batch<B>-gamma<G>[-desc]``, the next free id."""
    prev = [int(m.group(1)) for p in (outdir.iterdir() if outdir.is_dir() else [])
            if p.is_dir() and (m := re.match(r"^(\d+)-", p.name))]
    name = f"{max(prev, default=-1) + 1:05d}-{cfg}-{dataset_name}-gpus{world}-batch{batch}-gamma{gamma:g}"
    return outdir / (f"{name}-{desc}" if desc else name)


class RunLock:
    """``with RunLock(run_dir):`` an exclusive lock on a run folder, so two processes never train the same
    run at once. ``flock`` locks vanish with the process, even after ``kill -9``: never a stale lock."""

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir
        self.file = None

    def __enter__(self) -> RunLock:
        try:
            import fcntl
        except ImportError:            # not on POSIX: no locking
            return self
        self.file = open(self.run_dir / ".lock", "a+")
        try:
            fcntl.flock(self.file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.file.seek(0)
            owner = self.file.read().strip() or "another process"
            self.file.close()
            self.file = None
            raise UserInputError(f"{self.run_dir} is being trained by {owner}; stop it first "
                                 f"(or use another --outdir)") from None
        self.file.seek(0)
        self.file.truncate()
        self.file.write(f"pid {os.getpid()}\n")
        self.file.flush()
        return self

    def __exit__(self, *exc) -> bool:
        if self.file is not None:
            self.file.close()
            self.file = None
        return False


def _is_write_failure(exc: BaseException) -> bool:
    """OSError from our writes, or the safetensors writer's wrapped I/O error (it raises its own type)."""
    if isinstance(exc, OSError):
        return True
    return type(exc).__name__ == "SafetensorError" and "I/O error" in str(exc)


class RunFolder:
    """Everything a run writes beside its snapshots: ``log.txt``, ``stats.jsonl``, TensorBoard events."""

    def __init__(self, path: Path | None, echo: bool = True):
        self.path = path
        self.echo = echo
        self.tensorboard = None

    def open(self) -> list[str]:
        """Start writing: remove temporary files that a killed write left behind (safe: the folder is
        locked, so no other process is writing into it) and open TensorBoard. Returns notices."""
        if self.path is None:
            return []
        removed = remove_stale_partials(self.path)
        self.tensorboard = _tensorboard(self.path)
        if not removed:
            return []
        return [f"removed {len(removed)} unfinished file(s) left by an interrupted write: "
                + ", ".join(p.name for p in removed[:3]) + (", ..." if len(removed) > 3 else "")]

    def close(self) -> None:
        if self.tensorboard is not None:
            with contextlib.suppress(OSError):   # a full disk must not hide the error that stopped the run
                self.tensorboard.close()
            self.tensorboard = None

    @contextlib.contextmanager
    def writing(self, name: str):
        """Turn a failed write (disk full, quota, permissions) into one clear error naming the file and
        the newest intact training state (the atomic writers leave the earlier files untouched)."""
        try:
            yield
        except Exception as exc:
            if not _is_write_failure(exc):
                raise
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            states = list_states(self.path) if self.path is not None else []
            keep = (f"the newest complete training state, {states[0].name}, is intact" if states
                    else "no training state was written yet")
            raise CheckpointError(f"could not write {name} in {self.path}: {reason}; {keep}. Free some space "
                                  f"and continue with --resume latest") from None

    def log(self, line: str = "") -> None:
        """Print (around the progress bar) and append to ``log.txt``."""
        if not self.echo:
            return
        tqdm.write(line, file=sys.stdout)
        if self.path is not None:
            with self.writing("log.txt"), open(self.path / "log.txt", "a", encoding="utf-8") as f:
                f.write(line + "\n")

    def write_stats(self, collected: dict[str, dict], scalars: dict[str, float], kimg: float) -> None:
        """The tick's statistics sink: one ``stats.jsonl`` line in NVIDIA's layout, and TensorBoard scalars."""
        if self.path is None:
            return
        record = {**collected, **{k: {"num": 1, "mean": v, "std": 0.0} for k, v in scalars.items()},
                  "timestamp": time.time()}
        with self.writing("stats.jsonl"), open(self.path / "stats.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        if self.tensorboard is not None:
            for name, value in {**{k: v["mean"] for k, v in collected.items()}, **scalars}.items():
                self.tensorboard.add_scalar(name, value, global_step=int(kimg), walltime=record["timestamp"])

    def add_image(self, tag: str, image, kimg: float) -> None:
        if self.tensorboard is not None:
            self.tensorboard.add_image(tag, image, int(kimg), dataformats="HWC")

    def add_scalar(self, tag: str, value: float, kimg: float) -> None:
        if self.tensorboard is not None:
            self.tensorboard.add_scalar(tag, value, global_step=int(kimg))


def _tensorboard(run_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    try:
        return SummaryWriter(str(run_dir))
    except Exception:
        return None
