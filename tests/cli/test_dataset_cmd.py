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


@pytest.mark.parametrize("aspect", ["0.001", "inf", "1e-300", "nan", "17", "-2"])
def test_an_aspect_outside_1_16_to_16_is_one_line(tmp_path, capsys, aspect):
    from support.cli import run
    src = tmp_path / "src"
    src.mkdir()
    Image.fromarray(np.zeros([32, 32, 3], np.uint8)).save(src / "a.png")
    code, err = run(capsys, "-q", "dataset", "--source", src, "--dest", tmp_path / "d.zip", "--resolution", "16x8",
                    "--transform", "center-crop-wide", "--aspect", aspect)
    assert code == 1 and err.startswith("error: --aspect is") and "between 1/16 and 16" in err
    assert err.count("\n") == 1 and not (tmp_path / "d.zip").exists()


@pytest.mark.parametrize("resolution", ["16", "16x8"])
def test_center_crop_wide_at_the_extreme_aspects_keeps_a_pixel(tmp_path, capsys, resolution):
    from support.cli import run
    src = tmp_path / "src"
    src.mkdir()
    Image.fromarray(np.full([4, 4, 3], 200, np.uint8)).save(src / "a.png")
    for aspect in ("16", "0.0625"):
        code, err = run(capsys, "-q", "dataset", "--source", src, "--dest", tmp_path / f"{aspect}.zip",
                        "--resolution", resolution, "--transform", "center-crop-wide", "--aspect", aspect)
        assert code == 0 and "wrote 1 images" in err, err


@pytest.mark.parametrize("resolution", ["32", "32x16"])
def test_a_strip_whose_padded_canvas_is_over_max_pixels_is_skipped_as_too_large(tmp_path, capsys, resolution):
    """A 1x70000 PNG is a few hundred bytes, but padding it would allocate a 70000x70000 (or 70000x35000)
    canvas (~15 GB) before the resize: it is skipped with the "image too large" reason instead."""
    from support.cli import run
    src = tmp_path / "src"
    src.mkdir()
    Image.fromarray(np.full([70000, 1, 3], 90, np.uint8)).save(src / "strip.png")
    Image.fromarray(np.full([24, 40, 3], 90, np.uint8)).save(src / "ok.png")
    code, err = run(capsys, "-q", "dataset", "--source", src, "--dest", tmp_path / "d.zip", "--resolution", resolution,
                    "--transform", "pad")
    assert code == 0 and "wrote 1 images" in err, err
    report = json.loads((tmp_path / "d-report.json").read_text())
    assert [s["file"] for s in report["skipped"]] == ["strip.png"]
    assert report["skipped"][0]["reason"].startswith("image too large: padded to ")
    assert "megapixels, more than the limit" in report["skipped"][0]["reason"]
