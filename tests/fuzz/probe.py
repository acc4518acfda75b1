"""A target that tests the fuzz harness itself: the file says what to do (segfault, hang, raise, allocate).

Kept apart from :mod:`fuzz.targets` so that its child starts without importing torch."""

from __future__ import annotations

from pathlib import Path


def probe(path: str) -> dict:
    """What the harness itself is tested with: a file saying what to do (segfault, hang, raise, allocate)."""
    import ctypes
    import time
    action = Path(path).read_text().strip()
    if action == "segfault":
        ctypes.string_at(0)
    elif action == "hang":
        time.sleep(3600)
    elif action == "traceback":
        raise KeyError("a bug")
    elif action == "two-lines":
        from stylegan.errors import CheckpointError
        raise CheckpointError("first line\nsecond line")
    elif action == "warn":
        import warnings
        warnings.warn("a warning on stderr", stacklevel=1)
    elif action == "allocate":
        block = bytearray(512 << 20)
        block[::4096] = b"x" * len(block[::4096])
    return {"done": action}
