"""``stylegan encoder train``: writes a loadable encoder with its measured speed, resumes, refuses mistakes in one line."""

from __future__ import annotations

from stylegan.checkpoints.encoder import load_encoder
from stylegan.networks.encoder import mapping_fingerprint
from stylegan.checkpoints import load_network
from stylegan.train.encoder import state_path
from support.cli import run


def test_encoder_train_writes_resumes_and_reports(sg2_model, tmp_path, capsys):
    out = tmp_path / "enc.safetensors"
    args = ["encoder", "train", "--network", sg2_model, "--out", out, "--batch", "4", "--threads", "1"]
    code, err = run(capsys, *args, "--kimg", "0.008")
    assert code == 0, err
    assert "training an encoder for 32x32" in err and "s/kimg on cpu" in err and "held-out samples: encoder PSNR" in err
    E, meta = load_encoder(out)
    assert meta["kimg"] == 0.008 and meta["sec_per_kimg"] > 0 and meta["network"] == str(sg2_model)
    assert E.config.generator_fingerprint == mapping_fingerprint(load_network(sg2_model).G_ema)
    assert state_path(out).is_file()

    code, err = run(capsys, *args, "--kimg", "0.016")
    assert code == 1 and err.count("\n") == 1 and "--resume" in err          # an earlier run is never clobbered
    code, err = run(capsys, *args, "--kimg", "0.016", "--resume")
    assert code == 0 and "resuming at 0.008 kimg" in err
    assert load_encoder(out)[1]["kimg"] == 0.016


def test_encoder_train_mistakes_are_one_line(sg2_model, tmp_path, capsys):
    base = ["encoder", "train", "--network", sg2_model, "--kimg", "0.004", "--batch", "4"]
    for extra, msg in [(["--out", tmp_path / "enc.pt"], "must be a .safetensors file"),
                       (["--out", tmp_path / "e.safetensors", "--data", tmp_path / "missing"], "dataset not found"),
                       (["--out", tmp_path / "e.safetensors", "--kimg", "0"], "--kimg must be positive")]:
        code, err = run(capsys, *base, *extra)
        assert code == 1 and err.startswith("error: ") and msg in err and err.count("\n") == 1, err
    assert not list(tmp_path.iterdir())
