"""TensorFlow pickles (StyleGAN1, StyleGAN2, StyleGAN2-ADA) -> our networks, without TensorFlow.

Each test writes a TF-layout ``(G, D, Gs)`` pickle with known weights through the real writer, loads
it through the real safe reader and converter (``load_network``), and compares the converted
networks with an independent TF-style computation of the same math (``support.tf_nets``).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stylegan.checkpoints import load_network, save_network
from stylegan.errors import CheckpointError
from support import tf_nets
from support.official_pickle import TFNetwork, write_tf_pickle

TOL = 2e-5


def assert_close(ours, ref, tol=TOL):
    """float32 network vs float64 reference: absolute tolerance scaled by the output's magnitude."""
    np.testing.assert_allclose(ours, ref, rtol=0, atol=tol * max(1.0, float(np.abs(ref).max())))


def _write(tmp_path, G, D, Gs, name="net.pkl"):
    return write_tf_pickle(tmp_path / name, (G, D, Gs))


def _z(n, dim, seed=3):
    return np.random.RandomState(seed).standard_normal((n, dim))


def _gen(G, z, c=None, **kw):
    with torch.no_grad():
        ct = None if c is None else torch.tensor(c, dtype=torch.float32)
        return G(torch.tensor(z, dtype=torch.float32), ct, noise_mode="const", **kw).numpy()


def _disc(D, img, c=None):
    with torch.no_grad():
        ct = None if c is None else torch.tensor(c, dtype=torch.float32)
        return D(torch.tensor(img, dtype=torch.float32), ct).numpy()


@pytest.mark.parametrize("architecture", ["skip", "resnet", "orig"])
def test_stylegan2_tf_pickle_matches_tf_math(tmp_path, architecture):
    Gs = tf_nets.sg2_generator(0, architecture=architecture)
    G = tf_nets.sg2_generator(1, architecture=architecture)
    D = tf_nets.sg2_discriminator(architecture=architecture)
    ckpt = load_network(_write(tmp_path, G, D, Gs))

    assert ckpt.source_format == "official-tensorflow"
    assert ckpt.G_ema.config.synthesis.architecture == architecture
    assert ckpt.G_ema.config.synthesis.channel_base == 2 * Gs.static_kwargs["fmap_base"]   # TF fmap_base x 2
    z = _z(3, 8)
    assert_close(_gen(ckpt.G_ema, z), tf_nets.sg2_generator_forward(Gs, z))
    assert_close(_gen(ckpt.G, z), tf_nets.sg2_generator_forward(G, z))
    assert_close(_gen(ckpt.G_ema, z, truncation_psi=0.5),
                 tf_nets.sg2_generator_forward(Gs, z, psi=0.5))
    img = _z(4, 3 * 16 * 16).reshape(4, 3, 16, 16)
    assert_close(_disc(ckpt.D, img), tf_nets.sg2_discriminator_forward(D, img))


def test_stylegan2_configs_b_to_d_progressive_networks_convert(tmp_path):
    """NVIDIA's own converter crashes on ToRGB_lod*/FromRGB_lod* names; ours maps lod 0 to 'orig'."""
    Gs = tf_nets.sg2_generator(0, progressive=True)
    D = tf_nets.sg2_discriminator(progressive=True)
    ckpt = load_network(_write(tmp_path, Gs, D, Gs))
    assert ckpt.G_ema.config.synthesis.architecture == "orig" and ckpt.D.config.architecture == "orig"
    z = _z(2, 8)
    assert_close(_gen(ckpt.G_ema, z), tf_nets.sg2_generator_forward(Gs, z))
    img = _z(4, 768, seed=4).reshape(4, 3, 16, 16)
    assert_close(_disc(ckpt.D, img), tf_nets.sg2_discriminator_forward(D, img))


def test_stylegan2_ada_tf_conditional_with_clamp(tmp_path):
    kw = dict(c_dim=3, conv_clamp=0.5, version=5)
    Gs = tf_nets.sg2_generator(0, num_fp16_res=2, **kw)
    D = tf_nets.sg2_discriminator(**kw)
    ckpt = load_network(_write(tmp_path, tf_nets.sg2_generator(1, **kw), D, Gs))
    G = ckpt.G_ema
    assert (G.c_dim, G.config.synthesis.conv_clamp, G.config.synthesis.num_fp16_res) == (3, 0.5, 2)
    assert ckpt.D.config.mapping.lr_multiplier == 0.1 and ckpt.D.config.cmap_dim == 16
    z, c = _z(3, 8), np.eye(3)[[0, 2, 1]]
    ours = _gen(G, z, c)
    assert_close(ours, tf_nets.sg2_generator_forward(Gs, z, c))
    Gs.static_kwargs.pop("conv_clamp")                               # the clamp really acts here
    assert np.abs(ours - tf_nets.sg2_generator_forward(Gs, z, c)).max() > 0.1
    img, c4 = _z(4, 768, seed=5).reshape(4, 3, 16, 16), np.eye(3)[[0, 1, 2, 0]]
    assert_close(_disc(ckpt.D, img, c4), tf_nets.sg2_discriminator_forward(D, img, c4))


@pytest.mark.parametrize("fused_scale", ["auto", True])
def test_stylegan1_pickle_matches_tf_math(tmp_path, fused_scale):
    """TF's fused up-conv (default at >= 128 px) is a *flipped* kernel relative to its unfused path."""
    extra = {} if fused_scale == "auto" else {"fused_scale": True}
    Gs = tf_nets.sg1_generator(0, extra_kwargs=extra)
    G = tf_nets.sg1_generator(1, extra_kwargs=extra)
    D = tf_nets.sg1_discriminator()
    ckpt = load_network(_write(tmp_path, G, D, Gs))
    threshold = 128 if fused_scale == "auto" else 0

    assert ckpt.G_ema.generation == "stylegan1" and ckpt.G_ema.num_ws == 6
    assert ckpt.metadata["tensorflow"] == {"generation": "stylegan1", "version": 3, "truncation_psi": 0.7,
                                           "truncation_cutoff": 8}
    z = _z(3, 8)
    ref = tf_nets.sg1_generator_forward(Gs, z, fused_threshold=threshold)
    assert_close(_gen(ckpt.G_ema, z), ref)
    assert_close(_gen(ckpt.G, z), tf_nets.sg1_generator_forward(G, z, fused_threshold=threshold))
    assert_close(_gen(ckpt.G_ema, z, truncation_psi=0.7, truncation_cutoff=4),
                 tf_nets.sg1_generator_forward(Gs, z, 0.7, 4, fused_threshold=threshold))
    img = _z(4, 768, seed=6).reshape(4, 3, 16, 16)
    assert_close(_disc(ckpt.D, img), tf_nets.sg1_discriminator_forward(D, img, fused_threshold=16))


def test_stylegan1_at_128px_uses_tf_fused_layers(tmp_path):
    """karras2019 networks are fused from 128 px up: the converted 128x128 layer must follow TF's math."""
    Gs = tf_nets.sg1_generator(0, resolution=128, fmap_base=256, fmap_max=4)
    D = tf_nets.sg1_discriminator(resolution=128, fmap_base=256, fmap_max=4)
    ckpt = load_network(_write(tmp_path, Gs, D, Gs))
    z = _z(2, 8)
    assert_close(_gen(ckpt.G_ema, z), tf_nets.sg1_generator_forward(Gs, z), tol=5e-5)
    img = _z(2, 3 * 128 * 128, seed=2).reshape(2, 3, 128, 128)
    assert_close(_disc(ckpt.D, img), tf_nets.sg1_discriminator_forward(D, img))


def test_stylegan1_conditional_discriminator(tmp_path):
    Gs = tf_nets.sg1_generator(0)
    D = tf_nets.sg1_discriminator(c_dim=4)
    ckpt = load_network(_write(tmp_path, Gs, D, Gs), which=("D",))
    img, c = _z(4, 768).reshape(4, 3, 16, 16), np.eye(4)[[3, 2, 1, 0]]
    assert_close(_disc(ckpt.D, img, c), tf_nets.sg1_discriminator_forward(D, img, c))
    assert ckpt.G_ema is None


def test_converted_stylegan1_survives_native_round_trip(tmp_path):
    Gs = tf_nets.sg1_generator(0)
    ckpt = load_network(_write(tmp_path, Gs, tf_nets.sg1_discriminator(), Gs))
    native = load_network(save_network(ckpt, tmp_path / "sg1.safetensors"))
    assert native.D.config.generation == "stylegan1"
    z = _z(2, 8)
    np.testing.assert_array_equal(_gen(native.G_ema, z), _gen(ckpt.G_ema, z))
    img = _z(4, 768).reshape(4, 3, 16, 16)
    np.testing.assert_array_equal(_disc(native.D, img), _disc(ckpt.D, img))


def _sg2_with(tmp_path, **changes):
    Gs = tf_nets.sg2_generator(0, extra_kwargs=changes)
    return _write(tmp_path, Gs, tf_nets.sg2_discriminator(), Gs)


def test_fork_kwargs_that_change_nothing_are_accepted(tmp_path):
    path = _sg2_with(tmp_path, truncation_psi_val=0.5, truncation_cutoff_val=8, dlatent_avg_beta=0.99,
                     is_template_graph=False, fused_modconv=True, dtype="float32")
    assert load_network(path).G_ema.img_resolution == 16


def test_unknown_kwarg_is_named_in_the_error(tmp_path):
    with pytest.raises(CheckpointError, match=r"unknown TensorFlow option\(s\) style_blend=0\.3"):
        load_network(_sg2_with(tmp_path, style_blend=0.3))


def test_kwarg_value_we_cannot_honour_is_named(tmp_path):
    with pytest.raises(CheckpointError, match=r"use_wscale=False cannot be honoured"):
        load_network(_sg2_with(tmp_path, use_wscale=False))


def test_stylegan2_tf_label_concat_is_refused_clearly(tmp_path):
    Gs = tf_nets.sg2_generator(0)
    Gs.components["mapping"].variables.append(("LabelConcat/weight", np.ones((3, 8), np.float32)))
    with pytest.raises(CheckpointError, match="LabelConcat"):
        load_network(_write(tmp_path, Gs, tf_nets.sg2_discriminator(), Gs))


def test_mid_growth_snapshot_is_refused(tmp_path):
    Gs = tf_nets.sg1_generator(0)
    Gs.components["synthesis"].variables[0] = ("lod", np.float32(1.5))
    with pytest.raises(CheckpointError, match=r"progressive growing \(lod=1\.5\)"):
        load_network(_write(tmp_path, Gs, tf_nets.sg1_discriminator(), Gs))


def test_unexpected_variable_is_refused(tmp_path):
    Gs = tf_nets.sg2_generator(0)
    Gs.components["synthesis"].variables.append(("8x8/Conv1/attention_gain", np.ones(4, np.float32)))
    with pytest.raises(CheckpointError, match="attention_gain"):
        load_network(_write(tmp_path, Gs, tf_nets.sg2_discriminator(), Gs))


def test_missing_variable_is_named(tmp_path):
    Gs = tf_nets.sg2_generator(0)
    syn = Gs.components["synthesis"]
    syn.variables = [(n, v) for n, v in syn.variables if n != "8x8/Conv1/mod_bias"]
    with pytest.raises(CheckpointError, match="8x8/Conv1/mod_bias"):
        load_network(_write(tmp_path, Gs, tf_nets.sg2_discriminator(), Gs))


def test_not_a_stylegan_tf_network(tmp_path):
    other = TFNetwork("G", variables=[("w", np.ones(2, np.float32))])
    with pytest.raises(CheckpointError, match="mapping/synthesis"):
        load_network(write_tf_pickle(tmp_path / "x.pkl", (other, other, other)))
