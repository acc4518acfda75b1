"""The encoder network and its file: sized for any generator, starts at w_avg, progressive deltas, exact round trip."""

from __future__ import annotations

import json
import struct

import pytest
import torch
from safetensors.torch import save_file

from stylegan.checkpoints import load_network
from stylegan.checkpoints.encoder import builtin_encoder_path, load_encoder, read_encoder_header, save_encoder
from stylegan.errors import CheckpointError
from stylegan.networks.encoder import Encoder, EncoderConfig, mapping_fingerprint
from support.models import make_tiny_checkpoint


@pytest.fixture(scope="module")
def G():
    return make_tiny_checkpoint("stylegan2", resolution=32).G_ema


def test_config_is_sized_for_the_generator(G):
    cfg = EncoderConfig.for_generator(G)
    assert (cfg.img_resolution, cfg.img_channels, cfg.num_ws, cfg.w_dim) == (32, 3, G.num_ws, G.w_dim)
    assert cfg.input_resolution == 32 and cfg.channels(32) == 32
    # Coarse ws read coarse features, fine ws finer ones, in the order of the synthesis layers.
    assert cfg.head_resolutions[0] == 4 and cfg.head_resolutions[-1] == 16
    assert list(cfg.head_resolutions) == sorted(cfg.head_resolutions)
    assert EncoderConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    big = EncoderConfig.for_generator(make_tiny_checkpoint("stylegan3", resolution=64).G_ema)
    assert big.input_resolution == 64 and big.head_resolutions[-1] == 32
    with pytest.raises(ValueError, match="head resolution"):
        EncoderConfig(32, 3, 2, 8, head_resolutions=(4, 32), input_resolution=32)


def test_untrained_encoder_returns_w_avg_and_deltas_unlock_progressively(G):
    torch.manual_seed(0)
    E = Encoder(EncoderConfig.for_generator(G)).eval()
    E.w_avg.copy_(G.mapping.w_avg)
    E.w_scale.fill_(0.5)
    img = torch.rand([3, 3, 32, 32]) * 2 - 1
    with torch.no_grad():
        ws, deltas = E(img)
    assert ws.shape == (3, G.num_ws, G.w_dim) and deltas.shape == (3, G.num_ws - 1, G.w_dim)
    assert (ws - G.mapping.w_avg).abs().max() < 0.05          # the projector's usual start
    with torch.no_grad():
        for lin in E.to_w:
            lin.bias.normal_()
        ws0, d0 = E(img, num_deltas=0)
        ws2, d2 = E(img, num_deltas=2)
    assert torch.equal(ws0, ws0[:, :1].expand_as(ws0))        # no deltas: one w for every layer (W)
    assert d0.abs().max() == 0 and d2[:, :2].abs().min() > 0 and d2[:, 2:].abs().max() == 0
    assert not torch.equal(ws2[:, 1], ws2[:, 0]) and torch.equal(ws2[:, 3], ws2[:, 0])
    # Any input size is resized to the encoder's input; gradients reach every parameter.
    ws_big, _ = E(torch.rand([1, 3, 64, 64]))
    ws_big.sum().backward()
    assert all(p.grad is not None for p in E.parameters())
    with pytest.raises(ValueError, match=r"\[N, 3, H, W\]"):
        E(torch.zeros([1, 1, 32, 32]))


def test_encoder_file_round_trip_and_hostile_files(G, tmp_path):
    torch.manual_seed(1)
    E = Encoder(EncoderConfig.for_generator(G))
    with torch.no_grad():
        for p in E.parameters():
            p.normal_()
    path = save_encoder(E, tmp_path / "enc.safetensors", {"kimg": 1.5})
    E2, meta = load_encoder(path)
    assert meta == {"kimg": 1.5} and E2.config == E.config
    assert all(torch.equal(a, b) for a, b in zip(E.state_dict().values(), E2.state_dict().values()))
    assert read_encoder_header(path)["config"]["generator_fingerprint"] == mapping_fingerprint(G)

    save_file({"x": torch.zeros(2)}, str(tmp_path / "plain.safetensors"))
    torn = tmp_path / "torn.safetensors"
    torn.write_bytes(path.read_bytes()[:-100])
    bad = tmp_path / "bad.safetensors"
    header = json.dumps({"__metadata__": {"stylegan_encoder": json.dumps(
        {"format": "stylegan-encoder", "format_version": 1, "config": {"img_resolution": 32, "evil": 1}})}}).encode()
    bad.write_bytes(struct.pack("<Q", len(header)) + header)
    for f, msg in [(tmp_path / "plain.safetensors", "not an encoder file"), (torn, "corrupt or truncated"),
                   (bad, "invalid encoder config"), (tmp_path / "none.safetensors", "not found")]:
        with pytest.raises(CheckpointError, match=msg):
            load_encoder(f)
    with pytest.raises(CheckpointError, match="not a model file|stylegan config"):
        load_network(path)                                    # an encoder is not a model


def test_builtin_encoder_is_shipped_small_and_matches_the_builtin_model():
    path = builtin_encoder_path()
    assert path.is_file() and path.stat().st_size <= 10 * 2**20
    E, meta = load_encoder("builtin")
    G = load_network(None).G_ema
    assert E.config.generator_fingerprint == mapping_fingerprint(G)
    assert meta["kimg"] > 0 and meta["sec_per_kimg"] > 0
