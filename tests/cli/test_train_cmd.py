"""``stylegan train`` option handling (the training itself is tested in tests/train)."""

from __future__ import annotations

import json

import pytest

from stylegan.cli.main import main


def test_dry_run_prints_the_options_and_trains_nothing(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--data", "x.zip", "--outdir", str(tmp_path / "o"), "--cfg", "stylegan3-r", "--gamma", "2",
              "--batch", "16", "--aug", "fixed", "--p", "0.3", "--metrics", "none", "--dry-run"])
    assert exc.value.code == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["options"]["cfg"] == "stylegan3-r" and shown["options"]["p"] == 0.3 and shown["metrics"] == []
    assert not (tmp_path / "o").exists()


def test_invalid_options_are_rejected_before_any_work(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--data", "x.zip", "--outdir", str(tmp_path), "--aug", "fixed", "--p", "1.5"])
    assert exc.value.code == 1 and "--p must be in [0, 1]" in capsys.readouterr().err


def test_a_missing_or_unsafe_detector_stops_training_before_it_starts(tmp_path, capsys):
    pickled = tmp_path / "inception.pkl"
    pickled.write_bytes(b"\x80\x04K\x01.")
    for source, message in [(tmp_path / "nope.pt", "not found"), (pickled, "pickle")]:
        with pytest.raises(SystemExit) as exc:
            main(["train", "--data", "x.zip", "--outdir", str(tmp_path / "o"), "--metrics", "fid1k_full",
                  "--detector", f"inception={source}"])
        err = capsys.readouterr().err
        assert exc.value.code == 1 and message in err.lower() and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()
