import hashlib
import json
import os
import shutil
import subprocess
import sys

import pytest
from support.detectors import save_detector, write_images

from stylegan.cli.main import main


@pytest.fixture(scope="module")
def detectors(tmp_path_factory):
    d = tmp_path_factory.mktemp("detectors")
    return save_detector("inception", d / "inception-2015-12-05.pt"), save_detector("vgg16", d / "vgg16.pt")


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return write_images(tmp_path_factory.mktemp("data") / "faces", 24, seed=2)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLEGAN_CACHE", str(tmp_path / "cache"))


def run_cli(args, capsys):
    with pytest.raises(SystemExit) as exc:
        main(args)
    out, err = capsys.readouterr()
    return exc.value.code, out, err


def _short_hash(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def test_metrics_of_a_run_snapshot_print_json_lines_and_append_them_to_the_run(tmp_path, sg2_model, detectors,
                                                                               images, capsys):
    run = tmp_path / "00003-faces"
    run.mkdir()
    (run / "training_options.json").write_text("{}")
    snapshot = run / "network-snapshot-000040.safetensors"
    shutil.copy(sg2_model, snapshot)
    inception, vgg = detectors
    code, out, err = run_cli(["metrics", "--network", str(snapshot), "--metrics", "fid50k_full,pr50k3_full,ppl2_wend",
                              "--data", str(images), "--detector", f"inception={inception}",
                              "--detector", f"vgg16={vgg}", "--num-gen", "16", "--device", "cpu"], capsys)
    assert code == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["metric"] for r in records] == ["fid16_full", "pr0.016k3_full", "ppl2_wend_16"]
    assert records[0]["detector"] == f"inception-2015-12-05.pt (sha256:{_short_hash(inception)})"
    assert records[1]["detector"] == records[2]["detector"] == f"vgg16.pt (sha256:{_short_hash(vgg)})"
    assert records[0]["results"]["fid16_full"] > 0 and records[0]["num_real"] == 24 and records[0]["dataset"] == "faces"
    assert 0 <= records[1]["results"]["pr0.016k3_full_recall"] <= 1
    for r in records:
        assert r["snapshot_pkl"] == snapshot.name
        assert json.loads((run / f"metric-{r['metric']}.jsonl").read_text()) == r


def test_equivariance_needs_neither_data_nor_detector_and_writes_nothing_outside_a_run(tmp_path, sg3_model, capsys):
    code, out, err = run_cli(["metrics", "--network", str(sg3_model), "--metrics", "eqt50k_int,eqr50k",
                              "--num-gen", "2"], capsys)
    assert code == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["metric"] for r in records] == ["eqt2_int", "eqr2"] and all(r["detector"] == "none" for r in records)
    assert not list(sg3_model.parent.glob("metric-*.jsonl"))


def test_user_mistakes_are_one_line_errors(tmp_path, sg2_model, sg3_model, images, detectors, capsys):
    pkl = tmp_path / "inception-2015-12-05.pkl"
    pkl.write_bytes(b"\x80\x04\x95" + b"\x00" * 32)
    cases = [
        (["--metrics", "fid50k_full", "--data", str(images), "--detector", str(pkl)], "pickle"),
        (["--metrics", "fid50k_full,pr50k3_full", "--data", str(images), "--detector", str(detectors[0])], "say which"),
        (["--metrics", "fid50k_full", "--detector", str(detectors[0])], "--data"),
        (["--metrics", "fid_full"], "unknown metric 'fid_full'"),
        (["--metrics", "eqt50k_int", "--num-gen", "4"], "needs a StyleGAN3 model"),
        (["--metrics", "fid50k_full", "--data", str(tmp_path / "missing"), "--detector", str(detectors[0])],
         "not found"),
    ]
    for args, message in cases:
        code, out, err = run_cli(["metrics", "--network", str(sg2_model), *args], capsys)
        assert code == 1 and out == "", args
        assert err.startswith("error: ") and len(err.strip().splitlines()) == 1 and message in err, err


def test_list_names_every_metric_and_what_it_needs(capsys):
    code, out, _ = run_cli(["metrics", "--list"], capsys)
    assert code == 0
    assert "fid50k_full" in out and "inception detector, real images" in out
    assert "eqr50k" in out and "no detector" in out


def test_end_to_end_in_a_fresh_process(sg2_model, detectors, images, tmp_path):
    env = dict(os.environ, STYLEGAN_CACHE=str(tmp_path / "cache"), STYLEGAN_QUIET="1")
    cmd = [sys.executable, "-m", "stylegan.cli.main", "metrics", "--network", str(sg2_model), "--metrics",
           "kid50k_full", "--data", str(images), "--detector", str(detectors[0]), "--num-gen", "12"]
    first = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, check=False)
    assert first.returncode == 0, first.stderr
    record = json.loads(first.stdout)
    assert record["metric"] == "kid12_full" and record["detector"].startswith("inception-2015-12-05.pt (sha256:")
    assert list((tmp_path / "cache" / "metrics").glob("faces-inception-2015-12-05-*.npz"))
