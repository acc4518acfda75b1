"""The one atomic writer: complete files or none, umask-respecting permissions, findable leftovers."""

import os
import stat

import numpy as np
import pytest

from stylegan.files import (atomic_folder, atomic_output, atomic_write, default_mode, is_partial_name,
                            partial_outputs, read_safetensors_header, remove_stale_partials,
                            safetensors_data_end)


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    yield
    os.umask(old)


def test_written_files_respect_the_umask(tmp_path, umask_027):
    path = atomic_write(tmp_path / "a.bin", b"data")
    assert stat.S_IMODE(path.stat().st_mode) == 0o640 == default_mode()
    with atomic_folder(tmp_path / "folder") as tmp:
        (tmp / "x").write_bytes(b"1")
    assert stat.S_IMODE((tmp_path / "folder").stat().st_mode) == 0o750


def test_a_failed_write_leaves_nothing_and_keeps_the_old_file(tmp_path):
    dest = atomic_write(tmp_path / "a.npz", lambda tmp: np.savez(tmp, x=np.zeros(3)))
    before = dest.read_bytes()
    with pytest.raises(RuntimeError):
        with atomic_output(dest) as tmp:
            tmp.write_bytes(b"half")
            assert tmp.suffix == ".npz" and is_partial_name(tmp.name) and tmp in partial_outputs()
            raise RuntimeError("disk full")
    assert dest.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npz"]
    assert partial_outputs() == []


def test_stale_partials_of_a_killed_process_are_removed(tmp_path):
    (tmp_path / ".model.safetensors.partial-0123abcd.safetensors").write_bytes(b"x")
    (tmp_path / ".run.partial-89abcdef").mkdir()
    (tmp_path / ".hidden-but-mine.txt").write_bytes(b"keep")
    (tmp_path / "model.safetensors").write_bytes(b"keep")
    removed = remove_stale_partials(tmp_path)
    assert len(removed) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [".hidden-but-mine.txt", "model.safetensors"]


def test_safetensors_header_and_truncation(tmp_path):
    from safetensors.numpy import save_file
    path = tmp_path / "t.safetensors"
    save_file({"a": np.zeros(100, np.float32)}, str(path), metadata={"k": "v"})
    header = read_safetensors_header(path)
    assert header["__metadata__"] == {"k": "v"} and header["a"]["shape"] == [100]
    assert safetensors_data_end(path) == path.stat().st_size
    path.write_bytes(path.read_bytes()[:-10])
    assert safetensors_data_end(path) > path.stat().st_size
    path.write_bytes(b"\xff" * 16)
    with pytest.raises(ValueError):
        read_safetensors_header(path)
