"""Files we write and read: one atomic writer, one safetensors header reader, one check of untrusted zip
archives, one file hash.

Every file the package writes (images, grids, videos, latents, models, exports, datasets, training
states, cached statistics) goes through :func:`atomic_output`: the data is written to a temporary
name beside the destination, flushed to disk, given the permissions the umask asks for (like any
other tool's output, not ``mkstemp``'s private 0600), and renamed into place. A crash, an exception
or a signal never leaves a half-written file under the real name, and temporary files carry one
recognisable pattern (``.NAME.partial-XXXXXXXX.EXT``) so that leftovers of a killed process can be
found and removed (:func:`remove_stale_partials`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import struct
import threading
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

__all__ = ["atomic_output", "atomic_write", "atomic_folder", "default_mode", "partial_outputs",
           "remove_partial_outputs", "remove_stale_partials", "is_partial_name", "read_safetensors_header", "safetensors_data_end",
           "sha256_file", "fsync_folder", "ZIP_ERRORS", "check_zip_directory"]

#: The largest safetensors JSON header we read (the format's own limit is 100 MB).
MAX_SAFETENSORS_HEADER = 100 << 20
_PARTIAL = re.compile(r"^\.(?P<name>.+)\.partial-[0-9a-f]{8}(?:\.[^.]*)?$")
_live: set[Path] = set()
_live_lock = threading.Lock()


def default_mode(is_dir: bool = False) -> int:
    """The permissions a new file (0666) or folder (0777) gets under the current umask."""
    umask = _current_umask()
    return (0o777 if is_dir else 0o666) & ~umask


def _current_umask() -> int:
    try:  # Linux >= 4.7 reports it without changing it (os.umask is a process-wide swap: racy in threads)
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _live_lock:
        umask = os.umask(0o022)
        os.umask(umask)
    return umask


def partial_name(dest: Path) -> Path:
    """``dir/.NAME.partial-1a2b3c4d.EXT``: the suffix is kept so that writers which choose the format
    from it (PIL, ffmpeg, numpy) still do."""
    return dest.with_name(f".{dest.name}.partial-{secrets.token_hex(4)}{dest.suffix}")


def is_partial_name(name: str) -> bool:
    return _PARTIAL.match(name) is not None


@contextlib.contextmanager
def atomic_output(dest: str | os.PathLike, *, fsync: bool = True) -> Iterator[Path]:
    """``with atomic_output('out/a.png') as tmp: write(tmp)``: ``dest`` appears, complete, only if
    the block finishes; otherwise (exception, Ctrl-C, SIGTERM turned into an exception by the CLI)
    the temporary file is removed and an existing ``dest`` is left as it was."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = partial_name(dest)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies, as for open()
    os.close(fd)
    with _live_lock:
        _live.add(tmp)
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"the writer of {dest.name} removed its temporary file {tmp.name}")
        os.chmod(tmp, default_mode())  # some writers replace the file instead of opening it
        if fsync:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, dest)
        if fsync:
            fsync_folder(dest.parent)
    finally:
        with _live_lock:
            _live.discard(tmp)
        with contextlib.suppress(OSError):
            tmp.unlink()


def atomic_write(dest: str | os.PathLike, write: Callable[[Path], object] | bytes | str, *,
                 fsync: bool = True) -> Path:
    """Write ``dest`` atomically: ``write`` is bytes, text, or a function given the temporary path."""
    dest = Path(dest)
    with atomic_output(dest, fsync=fsync) as tmp:
        if isinstance(write, bytes):
            tmp.write_bytes(write)
        elif isinstance(write, str):
            tmp.write_text(write)
        else:
            write(tmp)
    return dest


@contextlib.contextmanager
def atomic_folder(dest: str | os.PathLike, *, replace: bool = False) -> Iterator[Path]:
    """A folder built under a temporary name and renamed to ``dest`` when the block finishes
    (``replace``: an existing ``dest`` is removed first)."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = partial_name(dest).with_suffix("")
    tmp.mkdir(mode=0o777)
    with _live_lock:
        _live.add(tmp)
    try:
        yield tmp
        if replace and dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
        fsync_folder(dest.parent)
    finally:
        with _live_lock:
            _live.discard(tmp)
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def partial_outputs() -> list[Path]:
    """Temporary files and folders this process is writing right now."""
    with _live_lock:
        return sorted(_live)


def remove_partial_outputs() -> None:
    """Remove every temporary output of this process (used when a signal ends it abruptly)."""
    for path in partial_outputs():
        with contextlib.suppress(OSError):
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()


def remove_stale_partials(folder: str | os.PathLike, older_than_s: float = 0.0) -> list[Path]:
    """Delete temporary outputs that a killed process left in ``folder`` (not ones this process is
    writing); returns what was removed. ``older_than_s`` spares files still being written by another
    process that started recently."""
    import time
    folder = Path(folder)
    removed = []
    live = set(partial_outputs())
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    now = time.time()
    for path in entries:
        if not is_partial_name(path.name) or path in live:
            continue
        try:
            if now - path.lstat().st_mtime < older_than_s:
                continue
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
            removed.append(path)
        except OSError:
            pass
    return removed


def fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (no-op where folders cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_safetensors_header(path: str | os.PathLike, max_bytes: int = MAX_SAFETENSORS_HEADER) -> dict:
    """The JSON header of a safetensors file (tensor table + ``__metadata__``), read without the tensors.

    Raises ``ValueError`` for anything that is not a well-formed header (callers turn it into their
    own error type); ``OSError`` for files that cannot be read."""
    return _safetensors_header(path, max_bytes)[0]


def safetensors_data_end(path: str | os.PathLike, max_bytes: int = MAX_SAFETENSORS_HEADER) -> int:
    """The file size a safetensors file needs for every tensor its header lists (a shorter file is
    truncated). Raises ``ValueError`` for a malformed header."""
    header, n = _safetensors_header(path, max_bytes)
    ends = []
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if (not isinstance(offsets, list) or len(offsets) != 2
                or not all(isinstance(v, int) and v >= 0 for v in offsets)):
            raise ValueError(f"tensor {key!r} has no valid data_offsets")
        ends.append(offsets[1])
    return 8 + n + max(ends, default=0)


def _safetensors_header(path, max_bytes: int) -> tuple[dict, int]:
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) != 8:
            raise ValueError("file is shorter than a safetensors header")
        (n,) = struct.unpack("<Q", head)
        if not 2 <= n <= max_bytes:
            raise ValueError(f"header length {n} is out of range")
        raw = f.read(n)
    if len(raw) != n:
        raise ValueError("file ends inside its header")
    header = json.loads(raw)
    if not isinstance(header, dict):
        raise ValueError("header is not a JSON object")
    return header, n


#: What Python's zipfile raises on a malformed, truncated or lying archive (callers turn it into their error).
ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, OSError, EOFError, ValueError, KeyError,
              IndexError, OverflowError, NotImplementedError, RuntimeError, UnicodeError, struct.error)


def check_zip_directory(zf: zipfile.ZipFile, file_size: int, *, stored_only: bool = False,
                        max_members: int = 1 << 20, max_unpacked: int | None = None) -> list[zipfile.ZipInfo]:
    """The members of an untrusted zip, after checking its central directory against the archive's size.

    Refused (``zipfile.BadZipFile``): encrypted members, compression other than stored/deflate (only stored
    with ``stored_only``), stored members whose two sizes differ, members that start or end past the end
    of the archive, more than ``max_members`` members, and declared unpacked sizes summing to more than
    ``max_unpacked``. zipfile itself stops every member at its declared size and checks its CRC on read,
    so a member that lies about its size or content fails when it is read."""
    infos = zf.infolist()
    if len(infos) > max_members:
        raise zipfile.BadZipFile(f"it holds {len(infos)} members (at most {max_members})")
    allowed = (zipfile.ZIP_STORED,) if stored_only else (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
    total = 0
    for info in infos:
        if info.flag_bits & 1:
            raise zipfile.BadZipFile(f"{info.filename} is encrypted")
        if info.compress_type not in allowed:
            raise zipfile.BadZipFile(f"{info.filename} uses compression method {info.compress_type}")
        if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
            raise zipfile.BadZipFile(f"{info.filename}: its stored size and its size differ")
        if info.header_offset + info.compress_size > file_size or info.header_offset < 0:
            raise zipfile.BadZipFile(f"{info.filename} lies past the end of the archive")
        total += info.file_size
    if max_unpacked is not None and total > max_unpacked:
        raise zipfile.BadZipFile(f"it unpacks to {total} bytes (at most {max_unpacked})")
    return infos


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes (streamed)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
