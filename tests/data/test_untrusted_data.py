"""Hostile datasets: decompression bombs are skipped and reported before they are decoded (--max-pixels),
malformed dataset.json labels are one DatasetError, broken archives are reported, not tracebacks."""

from __future__ import annotations

import io
import json
import re
import zipfile

import numpy as np
import pytest
from PIL import Image

from fuzz import crafted
from stylegan.checkpoints.isolation import Worker
from stylegan.cli.main import main
from stylegan.data.dataset import MAX_PIXELS, ImageDataset, parse_labels
from stylegan.data.dataset_tool import make_dataset
from stylegan.errors import DatasetError


def png_bytes(size: int = 16, mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full([size, size, 3], 120, np.uint8)).convert(mode).save(buf, format="PNG")
    return buf.getvalue()


def test_a_one_megabyte_png_of_30000x30000_is_skipped_before_decoding(tmp_path):
    bomb = crafted.png(30000, 30000)
    assert len(bomb) < 1 << 20
    src = tmp_path / "src.zip"
    with zipfile.ZipFile(src, "w") as zf:
        zf.writestr("bomb.png", bomb)
        zf.writestr("ok.png", png_bytes())
    with Worker() as w:                  # under a 256 MB limit: decoding the bomb would need 900 MB (3 GB as RGB)
        out = w.call("fuzz.targets:make_dataset", [str(src)], memory_bytes=256 << 20, timeout=300)
    assert out.kind == "ok" and out.value["written"] == 1 and out.value["skipped"] == 1, out.message[-300:]
    assert out.peak_bytes < 128 << 20
    report = make_dataset(src, tmp_path / "out.zip", resolution=8)
    ((name, reason),) = report.skipped
    assert name == "bomb.png" and reason.startswith("image too large: ") and "900000000 pixels" in reason


def test_max_pixels_on_the_command_line(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    (src / "small.png").write_bytes(png_bytes(16))
    (src / "large.png").write_bytes(png_bytes(64))
    with pytest.raises(SystemExit) as exit_info:
        main(["-q", "dataset", "--source", str(src), "--dest", str(tmp_path / "d.zip"), "--resolution", "16",
              "--max-pixels", "1000"])
    assert exit_info.value.code == 0
    err = capsys.readouterr().err
    assert "wrote 1 images" in err and "large.png: image too large: 64x64 is 0.0 megapixels" in err
    report = json.loads((tmp_path / "d-report.json").read_text())
    assert report["skipped"] == [{"file": "large.png", "reason": report["skipped"][0]["reason"]}]
    assert MAX_PIXELS == 8192 * 8192


def test_the_training_reader_refuses_a_bomb_and_a_size_change_before_decoding(tmp_path):
    ds = tmp_path / "ds.zip"
    with zipfile.ZipFile(ds, "w") as zf:
        zf.writestr("00000/img00000000.png", png_bytes(16))
        zf.writestr("00000/img00000001.png", crafted.png(30000, 30000))
    with zipfile.ZipFile(ds, "a") as zf:
        zf.writestr("00000/img00000002.png", crafted.png(9000, 9000))
    with pytest.raises(DatasetError, match=r"img00000001.png: Image size \(900000000 pixels\) exceeds limit"):
        ImageDataset(ds)
    first = tmp_path / "first.zip"
    with zipfile.ZipFile(first, "w") as zf:
        zf.writestr("a.png", crafted.png(9000, 9000))          # over our 67-megapixel limit, under PIL's own
        zf.writestr("b.png", png_bytes(16))
    with pytest.raises(DatasetError, match="a.png: 9000x9000 is 81.0 megapixels, more than the limit of 67.1"):
        ImageDataset(first)
    later = tmp_path / "later.zip"
    with zipfile.ZipFile(later, "w") as zf:
        zf.writestr("a.png", png_bytes(16))
        zf.writestr("b.png", crafted.png(4096, 4096))
    with pytest.raises(DatasetError, match=r"b.png: 4096x4096, but the first image is 16x16"):
        ImageDataset(later)


@pytest.mark.parametrize("text, message", [
    (b"{", "is not valid JSON"),
    (b"[" * 100000, "is not valid JSON"),
    (b"[1, 2]", "must be a JSON object"),
    (b'{"labels": 5}', "'labels' must be a list of [image name, label] pairs"),
    (b'{"labels": {"a.png": 1}}', "'labels' must be a list of [image name, label] pairs"),
    (b'{"labels": [["a.png"]]}', "'labels' must be a list of [image name, label] pairs"),
    (b'{"labels": [[3, 1]]}', "'labels' must be a list of [image name, label] pairs"),
    (b'{"labels": [["a.png", "cat"]]}', "the label of a.png must be a class index or a list of numbers, not cat"),
    (b'{"labels": [["a.png", -1]]}', "a.png has class -1; classes are 0 to 65535"),
    (b'{"labels": [["a.png", 1000000000000]]}', "has class 1000000000000"),
    (b'{"labels": [["a.png", [1, NaN]]]}', "must be a class index or a list of numbers"),
    (b'{"labels": [["a.png", [1, 2]], ["b.png", [1]]]}', "label vectors have different lengths (2 and 1)"),
    (b'{"labels": [["a.png", true]]}', "must be a class index or a list of numbers, not True"),
])
def test_malformed_labels_are_one_dataset_error(text, message):
    with pytest.raises(DatasetError, match=re.escape(message)):
        parse_labels(text, "dataset.json")


def test_labels_are_checked_in_the_tool_and_the_reader(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("a.png", "b.png"):
        (src / name).write_bytes(png_bytes())
    (src / "dataset.json").write_text('{"labels": [["a.png", 0], ["b.png", "x"]]}')
    with pytest.raises(DatasetError, match="the label of b.png must be a class index"):
        make_dataset(src, tmp_path / "out.zip")
    (src / "dataset.json").write_text('{"labels": [["a.png", 0], ["b.png", [0.5]]]}')
    with pytest.raises(DatasetError, match="mixes class indices and label vectors"):
        ImageDataset(src, use_labels=True)
    (src / "dataset.json").write_text('{"labels": [["a.png", 0], ["b.png", 65535]]}')
    labelled = ImageDataset(src, use_labels=True)
    assert labelled.label_dim == 65536 and labelled.get_labels([1])[0, 65535] == 1
    assert parse_labels(b'{"labels": null}', "x") == (None, None)


def test_broken_and_lying_archives_are_reported(tmp_path):
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK\x03\x04" + b"\0" * 100)
    with pytest.raises(DatasetError):
        make_dataset(broken, tmp_path / "out.zip")
    with pytest.raises(DatasetError):
        ImageDataset(broken)
    lying = tmp_path / "lying.zip"
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.png", png_bytes())
        zf.writestr("b.png", png_bytes())
    lying.write_bytes(crafted._patch_sizes(data.getvalue(), 40))          # sizes lie: the CRC no longer fits
    with pytest.raises(DatasetError, match="no image of .* could be converted"):
        make_dataset(lying, tmp_path / "out2.zip")
