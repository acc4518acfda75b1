"""NVIDIA-format network pickles, written by our test tools from the reference weights, load through the
real loader and reproduce the official outputs; hostile files are refused through the CLI."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from stylegan.checkpoints import load_network, save_network
from stylegan.errors import CheckpointError
from support.models import reference_npz
from support.official_pickle import HOSTILE_MARKER, hostile_pickles, write_reference_pickle

CASES = [("sg2", "stylegan3-sg2"), ("sg2", "stylegan2-ada"), ("sg3t", None), ("sg3r", None)]


def _ids(case):
    return f"{case[0]}-{case[1] or 'sg3'}"


@pytest.fixture(scope="module", params=CASES, ids=_ids)
def official_pkl(request, reference_dir, tmp_path_factory):
    name, generation = request.param
    path = tmp_path_factory.mktemp("pkl") / f"{name}.pkl"
    write_reference_pickle(reference_npz(name), path, generation=generation, augment_p=0.125)
    ref = np.load(reference_npz(name))
    return name, path, {k: torch.from_numpy(ref[k]) for k in ref.files if k.startswith("ref/")}


def _max_err(a, b):
    return (a.float() - b.float()).abs().max().item()


def test_official_pickle_reproduces_official_outputs(official_pkl):
    name, path, ref = official_pkl
    ckpt = load_network(path)
    assert ckpt.source_format == "official-pytorch"
    G, D = ckpt.G_ema, ckpt.D
    with torch.no_grad():
        ws = G.mapping(ref["ref/z"], None, truncation_psi=0.5, truncation_cutoff=4)
        assert _max_err(ws, ref["ref/ws_psi05cut4"]) <= 2e-3
        assert _max_err(G.synthesis(ref["ref/ws_psi07"], noise_mode="const"), ref["ref/img_psi07_const"]) <= 2e-3
        assert _max_err(G.synthesis(ref["ref/ws_psi1"], noise_mode="none"), ref["ref/img_psi1_none"]) <= 2e-3
        assert _max_err(D(ref["ref/img_psi1_const"], None), ref["ref/d_logits"]) <= 2e-3
    assert ckpt.G is not None and ckpt.G is not ckpt.G_ema


def test_pickle_data_is_kept_as_inert_data(official_pkl):
    _, path, _ = official_pkl
    ckpt = load_network(path)
    assert ckpt.augment["p"] == pytest.approx(0.125)
    assert ckpt.training_set_kwargs["class_name"] == "training.dataset.ImageFolderDataset"  # a string, not imported
    assert ckpt.training_set_kwargs["resolution"] == 64


def test_native_conversion_round_trip_is_exact(official_pkl, tmp_path):
    _, path, ref = official_pkl
    ckpt = load_network(path)
    for dest in (tmp_path / "model.safetensors", tmp_path / "folder"):
        save_network(ckpt, dest)
        again = load_network(dest)
        assert again.G_ema.config == ckpt.G_ema.config and again.D.config == ckpt.D.config
        assert again.augment == ckpt.augment and again.training_set_kwargs == ckpt.training_set_kwargs
        for key in ("G_ema", "G", "D"):
            a, b = getattr(ckpt, key).state_dict(), getattr(again, key).state_dict()
            assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
        with torch.no_grad():
            x = again.G_ema.synthesis(ref["ref/ws_psi07"], noise_mode="const")
            y = ckpt.G_ema.synthesis(ref["ref/ws_psi07"], noise_mode="const")
        assert torch.equal(x, y)


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "stylegan.cli.main", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


def test_cli_generate_on_official_pickle_writes_the_official_pixels(official_pkl, tmp_path):
    name, path, ref = official_pkl
    out = tmp_path / "out"
    r = _cli("generate", "--network", path, "--seeds", "0-3", "--trunc", "1", "--outdir", out)
    assert r.returncode == 0, r.stderr
    expected = ref["ref/u8_psi1_const"].numpy()
    for seed in range(4):
        img = np.asarray(Image.open(out / f"seed{seed:04d}.png"))
        assert img.shape == expected[seed].shape and img.dtype == np.uint8
        assert np.abs(img.astype(int) - expected[seed].astype(int)).max() <= 1


def test_cli_convert_and_info(official_pkl, tmp_path):
    name, path, _ = official_pkl
    dest = tmp_path / "m.safetensors"
    r = _cli("convert", path, dest)
    assert r.returncode == 0, r.stderr
    r = _cli("info", dest)
    assert r.returncode == 0, r.stderr
    assert "resolution:    64x64" in r.stdout and "num_ws:" in r.stdout and "G_ema params:" in r.stdout
    assert ("stylegan3" if name.startswith("sg3") else "stylegan2") in r.stdout


def test_frozen_discriminator_layers_stored_as_buffers_load(reference_dir, tmp_path):
    from support.official_pickle import official_records_from_flat, write_official_pickle
    import json
    d = np.load(reference_npz("sg2"))
    meta = json.loads(str(d["meta_json"]))
    flat = {k[2:]: d[k] for k in d.files if k.startswith("D/")}
    rec = official_records_from_flat(flat, "Discriminator", meta["D"]["init_kwargs"], "stylegan3-sg2",
                                     freeze_layers=3)
    write_official_pickle(tmp_path / "d.pkl", {"D": rec, "G": None, "G_ema": None})
    D = load_network(tmp_path / "d.pkl", which=("D",)).D
    with torch.no_grad():
        logits = D(torch.from_numpy(d["ref/img_psi1_const"]))
    assert _max_err(logits, torch.from_numpy(d["ref/d_logits"])) <= 2e-3


def test_hostile_and_broken_files_are_refused_with_one_line(tmp_path):
    files = hostile_pickles(tmp_path)
    assert len(files) >= 10
    for label, path in files.items():
        if "class_name" in label or "module_src" in label:
            continue  # these load as inert data (tested in test_safe_pickle); nothing to refuse here
        with pytest.raises(CheckpointError):
            load_network(path)
    assert not (tmp_path / HOSTILE_MARKER).exists()
    some = next(p for label, p in files.items() if "system" in label)
    r = _cli("generate", "--network", some, "--seeds", "0", "--outdir", tmp_path / "o", cwd=tmp_path)
    assert r.returncode == 1
    assert r.stderr.startswith("error: ") and len(r.stderr.strip().splitlines()) == 1
    assert "Traceback" not in r.stderr
    assert not (tmp_path / HOSTILE_MARKER).exists() and not (tmp_path / "o").exists()
