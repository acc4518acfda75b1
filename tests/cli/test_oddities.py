"""Things that used to happen without a word (issue 16, item 9): a grid with empty cells, a one-keyframe
"video", layer ranges stored short, skip reasons naming a memory buffer, "need" for "needs", and a training
progress bar with a negative time left and lagging losses."""

import time

import numpy as np
import pytest
from PIL import Image
from support.cli import png, run

from stylegan.progress import progress
from stylegan.train.loop import _Progress
from stylegan.train.stats import Stats


def test_a_grid_with_empty_cells_says_so(sg2_model, tmp_path, capsys):
    code, err = run(capsys, "generate", "--network", sg2_model, "--seeds", "0-2", "--grid", "2x2",
                    "--outdir", tmp_path)
    assert code == 0 and "note: 3 image(s) in a 2x2 grid: the last 1 cell(s) are left black" in err
    grid = png(tmp_path / "grid.png")
    assert grid.shape == (64, 64, 3) and grid[32:, 32:].max() == 0 and grid[32:, :32].max() > 0
    code, err = run(capsys, "generate", "--network", sg2_model, "--seeds", "0-3", "--grid", "2x2",
                    "--outdir", tmp_path)
    assert code == 0 and "note:" not in err


def test_a_video_of_one_keyframe_is_refused(sg2_model, tmp_path, capsys):
    out = tmp_path / "still.gif"
    code, err = run(capsys, "video", "--network", sg2_model, "--seeds", "1", "--output", out)
    assert code == 1 and err.count("\n") == 1 and "one keyframe per walk makes a still video" in err
    assert not out.exists()
    code, err = run(capsys, "video", "--network", sg2_model, "--seeds", "1-2", "--w-frames", "2", "--output", out)
    assert code == 0 and out.is_file(), err


def test_a_one_keyframe_video_that_moves_is_fine(sg3_model, tmp_path, capsys):
    code, err = run(capsys, "video", "--network", sg3_model, "--seeds", "5", "--frames", "3", "--rotate-anim", "90",
                    "--output", tmp_path / "spin.gif")
    assert code == 0, err


def test_directions_store_the_layers_given_inclusive(sg2_model, tmp_path, capsys):
    """The tiny model has 8 ws; ws 7 drives only the last toRGB layer, which SeFa does not factorise."""
    out = tmp_path / "sefa.npz"
    code, err = run(capsys, "directions", "--network", sg2_model, "--method", "sefa", "--layers", "0-7",
                    "--num", "3", "--out", out)
    assert code == 0, err
    assert np.load(out)["layers"].tolist() == list(range(8))
    assert "sefa: w 7 drives only a toRGB layer and is not factorised; stored layers 0-7 for edit" in err
    code, err = run(capsys, "directions", "--network", sg2_model, "--method", "sefa", "--layers", "2-4",
                    "--num", "3", "--out", out)
    assert code == 0 and np.load(out)["layers"].tolist() == [2, 3, 4] and "toRGB" not in err


def test_dataset_skip_reasons_name_the_file_not_a_buffer(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(2):
        Image.fromarray(np.full((16, 16, 3), 99 * i, np.uint8)).save(src / f"ok{i}.png")
    (src / "broken.png").write_bytes(b"this is not a png at all")
    code, err = run(capsys, "dataset", "--source", src, "--dest", tmp_path / "d.zip")
    assert code == 0
    line = next(ln for ln in err.splitlines() if "broken.png" in ln)
    assert line.strip() == "broken.png: unreadable: not an image format Pillow can decode"
    assert "BytesIO" not in err and "0x" not in err


def test_messages_say_needs_for_one_thing(sg2_model, capsys):
    code, err = run(capsys, "metrics", "--network", sg2_model, "--metrics", "eqt50k_int")
    assert code == 1 and "eqt50k_int needs a StyleGAN3 model" in err


@pytest.fixture
def bars_shown(monkeypatch):
    """Progress bars drawn even if an earlier test (``stylegan -q``) or $STYLEGAN_QUIET turned them off."""
    monkeypatch.setattr("stylegan.progress._quiet", False)


def test_train_progress_never_shows_negative_time_left(bars_shown):
    bar = _Progress(cur_nimg=400_000, total_nimg=500_000, batch=8, disable=False)   # a resumed run
    try:
        time.sleep(1.1)                     # the bar is redrawn (by tqdm's monitor) before the first step
        assert "<-" not in str(bar.bar) and "400.000/500.000 kimg" in str(bar.bar)
        bar.update(408_000, Stats(), 0.0)
        assert "<-" not in str(bar.bar) and "408.000/500.000 kimg" in str(bar.bar)
    finally:
        bar.close()
    with pytest.raises(ValueError, match="unit_scale"):
        progress(total=10, initial=5, unit_scale=1e-3)


def test_train_progress_shows_the_latest_losses(bars_shown):
    stats, bar = Stats(), _Progress(cur_nimg=0, total_nimg=1000, batch=8, disable=False)
    try:
        for nimg, (g, d) in enumerate([(1.0, 2.0), (1.0, 2.0), (5.0, 6.0)], start=1):
            stats.report("Loss/G/loss", g)
            stats.report("Loss/D/loss", d)
            bar.update(8 * nimg, stats, 0.25)
        assert bar.bar.postfix == "G 5.000 D 6.000 p 0.250"      # not the tick's mean 2.333 / 3.333
        stats.collect()                                             # a tick: the statistics restart
        stats.report("Loss/G/loss", 5.0)
        stats.report("Loss/D/loss", 6.0)
        stats.report("Loss/G/loss", 7.0)
        stats.report("Loss/D/loss", 8.0)
        bar.update(40, stats, 0.5)
        assert bar.bar.postfix == "G 6.000 D 7.000 p 0.500"
    finally:
        bar.close()
