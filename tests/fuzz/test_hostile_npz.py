"""Hostile .npz latents and directions through the readers of latent/io.py (load_ws, load_directions,
load_npz_extra) and the CLI: bounded, never unpickled, false sizes and CRCs one UserInputError line."""

from __future__ import annotations

import re

import numpy as np
import pytest

from fuzz import crafted
from stylegan.checkpoints.isolation import Worker
from stylegan.errors import UserInputError
from stylegan.latent.io import load_directions, load_npz_extra, load_ws, read_npz
from support.cli import run

CASES = {
    "huge.npz": (crafted.npz_huge_header, "is not a valid .npy array"),
    "crc.npz": (crafted.npz_false_crc, "Bad CRC-32"),
    "sizes.npz": (crafted.npz_false_size, "cannot read sizes.npz as an .npz file"),
    "shape.npz": (crafted.npz_shape_lies, "its header says (1048576, 18, 512) float32 (38654705664 bytes), it holds 512"),
    "object.npz": (crafted.npz_object_array, "holds object data; only numbers and strings are read"),
    "text.npz": (lambda: b"not a zip", "is not an .npz file"),
    "bomb.npz": (lambda: crafted.npz({"ws": np.zeros([9000, 8, 4096], np.float32)}, compress=True),
                 "unpacks to more than"),
}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("npz")
    return {name: crafted.write(folder, {name: make()})[name] for name, (make, _) in CASES.items()}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("reader", [load_ws, load_directions, load_npz_extra])
def test_hostile_npz_files_are_one_user_error(files, name, reader):
    with pytest.raises(UserInputError, match=re.escape(CASES[name][1])) as info:
        reader(files[name])
    assert "\n" not in str(info.value)


def test_a_lying_shape_allocates_nothing(files):
    with Worker() as w:
        out = w.call("stylegan.latent.io:load_npz_extra", [str(files["shape.npz"])], memory_bytes=256 << 20,
                     timeout=300)
    assert out.kind == "refused" and "its header says" in out.message and out.peak_bytes < 64 << 20


@pytest.mark.parametrize("arrays, message", [
    ({"ws": np.zeros([1, 8, 8], np.float32), "seeds": np.array([[1]])}, "'seeds' must be a 1-D integer array"),
    ({"ws": np.zeros([1, 8, 8], np.float32), "labels": np.array([1.5])}, "'labels' must be a 1-D string array"),
    ({"ws": np.zeros([1, 8, 8], np.float32), "z": np.full([1, 8], np.inf)}, "'z' contains NaN or infinite"),
    ({"ws": np.array(["a", "b"])}, "latents must be a non-empty number array of 1 to 3 dimensions"),
    ({"ws": np.zeros([0, 8, 8], np.float32)}, "latents must be a non-empty number array"),
    ({"ws": np.zeros([1, 1, 1, 8], np.float32)}, "of 1 to 3 dimensions"),
    ({"ws": np.zeros([200000, 1, 8], np.float32)}, "broadcast to 8 layers would need more than"),
])
def test_layouts_are_checked(tmp_path, arrays, message, monkeypatch):
    import stylegan.latent.io as io_module
    monkeypatch.setattr(io_module, "MAX_BROADCAST_BYTES", 1 << 20)       # a 6 MB file would otherwise need 51 MB
    path = tmp_path / "l.npz"
    path.write_bytes(crafted.npz(arrays))
    with pytest.raises(UserInputError, match=re.escape(message)):
        load_ws(path, num_ws=8, w_dim=8)
        load_npz_extra(path)


def test_names_must_match_the_directions(tmp_path):
    path = tmp_path / "d.npz"
    path.write_bytes(crafted.npz({"directions": np.ones([3, 8], np.float32), "names": np.array(["a"])}))
    with pytest.raises(UserInputError, match="1 names for 3 directions"):
        load_directions(path, w_dim=8)


def test_valid_files_still_read_and_uploads_share_the_reader(tmp_path):
    arrays = {"ws": np.ones([2, 8, 8], np.float32), "seeds": np.array([3, 4]), "labels": np.array(["a", "b"])}
    data = crafted.npz(arrays, compress=True)
    assert sorted(read_npz(data, name="up.npz")) == ["labels", "seeds", "ws"]
    path = tmp_path / "ok.npz"
    path.write_bytes(data)
    assert load_ws(path, num_ws=8, w_dim=8).shape == (2, 8, 8)
    assert list(load_npz_extra(path)["seeds"]) == [3, 4]


def test_commands_reading_latents_refuse_hostile_files_in_one_line(capsys, tmp_path, files, sg2_model):
    for args in (["generate", "--network", sg2_model, "--ws", files["crc.npz"], "--outdir", tmp_path / "o"],
                 ["latent", "average", files["shape.npz"], "-o", tmp_path / "a.npz"]):
        code, err = run(capsys, *args)
        assert code == 1 and err.startswith("error: ") and err.count("\n") == 1, err
    assert not (tmp_path / "o").exists() and not (tmp_path / "a.npz").exists()
