"""``stylegan convert`` (to ours or rosinality's format) and ``stylegan export`` (ONNX, TorchScript)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from support import tf_nets
from support.official_pickle import write_tf_pickle

from stylegan.checkpoints import load_network
from stylegan.checkpoints.export import run_exported
from stylegan.cli.main import main


def run(args, capsys):
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


@pytest.fixture(scope="module")
def sg1_pickle(tmp_path_factory):
    Gs = tf_nets.sg1_generator(0)
    path = write_tf_pickle(tmp_path_factory.mktemp("tf") / "karras2019stylegan-tiny-16x16.pkl",
                           (tf_nets.sg1_generator(1), tf_nets.sg1_discriminator(), Gs))
    return path, Gs


def test_convert_stylegan1_pickle_and_describe_it(sg1_pickle, tmp_path, capsys):
    pkl, Gs = sg1_pickle
    code, _, err = run(["convert", pkl, tmp_path / "sg1.safetensors"], capsys)
    assert code == 0 and "wrote" in err
    code, out, _ = run(["info", tmp_path / "sg1.safetensors"], capsys)
    assert code == 0 and "architecture:  stylegan1" in out and "num_ws:        6" in out
    assert "truncation psi 0.7 on the first 8 layers" in out
    G = load_network(tmp_path / "sg1.safetensors").G_ema
    z = np.random.RandomState(0).standard_normal((2, 8))
    with torch.no_grad():
        img = G(torch.tensor(z, dtype=torch.float32), noise_mode="const").numpy()
    np.testing.assert_allclose(img, tf_nets.sg1_generator_forward(Gs, z), atol=2e-5 * np.abs(img).max())


def test_convert_to_rosinality_and_back(tmp_path, capsys):
    Gs = tf_nets.sg2_generator(0)
    pkl = write_tf_pickle(tmp_path / "sg2.pkl", (Gs, tf_nets.sg2_discriminator(), Gs))
    code, _, err = run(["convert", pkl, tmp_path / "sg2.pt", "--to", "rosinality"], capsys)
    assert code == 0 and "wrote" in err
    saved = torch.load(tmp_path / "sg2.pt", weights_only=True)
    assert {"g_ema", "d", "latent_avg"} <= set(saved) and "style.1.weight" in saved["g_ema"]
    G = load_network(tmp_path / "sg2.pt").G_ema
    z = np.random.RandomState(1).standard_normal((2, 8))
    with torch.no_grad():
        img = G(torch.tensor(z, dtype=torch.float32), noise_mode="const", truncation_psi=0.5).numpy()
    np.testing.assert_allclose(img, tf_nets.sg2_generator_forward(Gs, z, psi=0.5), atol=1e-4)


def test_convert_refuses_an_option_it_cannot_honour(tmp_path, capsys):
    Gs = tf_nets.sg2_generator(0, extra_kwargs={"style_blend": 0.3})
    pkl = write_tf_pickle(tmp_path / "fork.pkl", (Gs, tf_nets.sg2_discriminator(), Gs))
    code, _, err = run(["convert", pkl, tmp_path / "out.safetensors"], capsys)
    assert code == 1
    assert err.count("\n") == 1 and err.startswith("error: ") and "style_blend=0.3" in err
    assert not (tmp_path / "out.safetensors").exists()


def test_export_onnx_from_a_tf_pickle(sg1_pickle, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    pkl, Gs = sg1_pickle
    code, _, err = run(["export", "--network", pkl, "--format", "onnx", "--trunc", "0.7", "--out",
                        tmp_path / "sg1.onnx"], capsys)
    assert code == 0 and "z -> img" in err and "max |diff|" in err
    z = np.random.RandomState(2).standard_normal((3, 8))
    img = run_exported(tmp_path / "sg1.onnx", "onnx", {"z": z})
    np.testing.assert_allclose(img, tf_nets.sg1_generator_forward(Gs, z, psi=0.7, cutoff=None),
                               atol=5e-5 * np.abs(img).max())


def test_export_torchscript_mapping(sg2_model, tmp_path, capsys):
    code, _, err = run(["export", "--network", sg2_model, "--format", "torchscript", "--what", "mapping",
                        "--out", tmp_path / "mapping.pt"], capsys)
    assert code == 0 and "z, psi -> ws" in err
    G = load_network(sg2_model).G_ema
    z = torch.randn(2, G.z_dim)
    ws = run_exported(tmp_path / "mapping.pt", "torchscript", {"z": z, "psi": torch.tensor(1.0)})
    with torch.no_grad():
        np.testing.assert_allclose(ws, G.mapping(z, None).numpy(), atol=1e-5)
