"""``stylegan dataset`` from the command line: summary, skipped-file report, one-line errors."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
from PIL import Image

from stylegan.cli.main import main


def stylegan(*args):
    with pytest.raises(SystemExit) as exc:
        main(["-q", *args])
    return exc.value.code


def test_converts_emoji_like_rgba_images_onto_a_background_and_reports_junk(tmp_path, capsys):
    src = tmp_path / "emoji"
    src.mkdir()
    for i in range(3):
        rgba = np.zeros([64, 64, 4], np.uint8)
        rgba[16:48, 16:48] = [255, 200, 0, 255]
        Image.fromarray(rgba, "RGBA").save(src / f"{i}.png")
    (src / "truncated.png").write_bytes((src / "0.png").read_bytes()[:60])
    dest = tmp_path / "emoji32.zip"
    assert stylegan("dataset", "--source", str(src), "--dest", str(dest), "--resolution", "32",
                    "--background", "white") == 0
    err = capsys.readouterr().err
    assert "wrote 3 images (32x32, 3 channel(s))" in err and "skipped 1 file(s)" in err and "truncated.png" in err
    report = json.loads((tmp_path / "emoji32-report.json").read_text())
    assert report["written"] == 3 and report["skipped"][0]["file"] == "truncated.png"
    with zipfile.ZipFile(dest) as z:
        img = np.asarray(Image.open(z.open("00000/img00000000.png")))
    assert img.shape == (32, 32, 3) and tuple(img[0, 0]) == (255, 255, 255) and tuple(img[16, 16]) == (255, 200, 0)


def test_bad_sources_are_one_line_errors(tmp_path, capsys):
    assert stylegan("dataset", "--source", str(tmp_path / "nope"), "--dest", str(tmp_path / "d.zip")) == 1
    err = capsys.readouterr().err
    assert err == f"error: source not found: {tmp_path / 'nope'}\n"
    (tmp_path / "odd").mkdir()
    Image.fromarray(np.zeros([48, 48, 3], np.uint8)).save(tmp_path / "odd" / "a.png")
    assert stylegan("dataset", "--source", str(tmp_path / "odd"), "--dest", str(tmp_path / "d.zip")) == 1
    err = capsys.readouterr().err
    assert "not a power of two" in err and "--resolution 32" in err and err.count("\n") == 1
    assert not (tmp_path / "d.zip").exists()
