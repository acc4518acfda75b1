"""ONNX and TorchScript export, checked by running the exported files (onnxruntime / torch.jit.load)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stylegan.checkpoints import load_network, save_network
from stylegan.checkpoints.export import export_generator, run_exported
from stylegan.errors import UserInputError
from support import tf_nets
from support.models import make_tiny_checkpoint
from support.official_pickle import write_tf_pickle

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


def _close(ours, ref, tol=2e-5):
    np.testing.assert_allclose(ours, ref, rtol=0, atol=tol * max(1.0, float(np.abs(ref).max())))


def test_tf_pickle_to_native_to_onnx_agrees_with_tf_math(tmp_path):
    """The whole chain: TF .pkl -> our networks -> .safetensors -> .onnx run by onnxruntime."""
    Gs = tf_nets.sg2_generator(0, architecture="skip")
    pkl = write_tf_pickle(tmp_path / "sg2.pkl", (Gs, tf_nets.sg2_discriminator(), Gs))
    native = save_network(load_network(pkl, which=("G_ema",)), tmp_path / "sg2.safetensors")
    G = load_network(native).G_ema
    result = export_generator(G, tmp_path / "sg2.onnx", format="onnx")
    assert result.inputs == ["z", "psi"] and result.output == "img" and result.max_abs_diff < 1e-4

    z = np.random.RandomState(0).standard_normal((3, 8))                 # a batch size not seen at export
    img = run_exported(result.path, "onnx", {"z": z, "psi": np.float32(0.6)})
    _close(img, tf_nets.sg2_generator_forward(Gs, z, psi=0.6), tol=5e-5)


def test_stylegan3_exports_to_onnx(tmp_path):
    """SynthesisInput and filtered_lrelu are plain PyTorch ops and export like the rest."""
    G = make_tiny_checkpoint("stylegan3").G_ema
    result = export_generator(G, tmp_path / "sg3.onnx", format="onnx", what="synthesis", dynamic_batch=False)
    ws = G.mapping(torch.randn(2, G.z_dim), None, truncation_psi=0.5)
    img = run_exported(result.path, "onnx", {"ws": ws})
    with torch.no_grad():
        _close(img, G.synthesis(ws, noise_mode="const").numpy(), tol=1e-5)


def test_stylegan1_torchscript_with_baked_truncation(tmp_path):
    Gs = tf_nets.sg1_generator(0)
    G = load_network(write_tf_pickle(tmp_path / "sg1.pkl", (Gs, tf_nets.sg1_discriminator(), Gs))).G_ema
    result = export_generator(G, tmp_path / "sg1.pt", format="torchscript", truncation_psi=0.7, truncation_cutoff=4)
    assert result.inputs == ["z"]
    z = np.random.RandomState(1).standard_normal((2, 8))
    img = run_exported(result.path, "torchscript", {"z": z})
    _close(img, tf_nets.sg1_generator_forward(Gs, z, 0.7, 4))


def test_conditional_mapping_takes_labels(tmp_path):
    G = make_tiny_checkpoint("stylegan2", c_dim=4).G_ema
    result = export_generator(G, tmp_path / "mapping.pt", format="torchscript", what="mapping")
    assert result.inputs == ["z", "c", "psi"] and result.output == "ws"
    z, c = torch.randn(3, G.z_dim), torch.eye(4)[[3, 0, 1]]
    ws = run_exported(result.path, "torchscript", {"z": z, "c": c, "psi": torch.tensor(0.5)})
    with torch.no_grad():
        _close(ws, G.mapping(z, c, truncation_psi=0.5).numpy(), tol=1e-6)


def test_bad_requests_are_user_errors(tmp_path):
    G = make_tiny_checkpoint("stylegan2").G_ema
    with pytest.raises(UserInputError, match="--format"):
        export_generator(G, tmp_path / "g.tflite", format="tflite")
    with pytest.raises(UserInputError, match="--what"):
        export_generator(G, tmp_path / "g.onnx", what="discriminator")
    with pytest.raises(UserInputError, match="cutoff"):
        export_generator(G, tmp_path / "g.onnx", truncation_cutoff=99)
    assert list(tmp_path.iterdir()) == []
