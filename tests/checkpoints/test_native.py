"""Our native format (checkpoints/native.py): safetensors weights + JSON config, as a file or a folder;
exact round trips, and every malformed header, config or tensor table refused with one line."""

from __future__ import annotations

import json
import re
import struct

import pytest
import torch
from safetensors.torch import load_file, save_file

from fuzz import crafted
from stylegan.checkpoints import Checkpoint, load_network, save_network
from stylegan.checkpoints.native import CONFIG_NAME, MAX_HEADER_BYTES, WEIGHTS_NAME, is_safetensors_file
from stylegan.errors import CheckpointError
from support.models import make_tiny_checkpoint


@pytest.fixture(scope="module")
def ckpt():
    c = make_tiny_checkpoint("stylegan2", resolution=16, channels=8, z_dim=8, w_dim=8, c_dim=2)
    c.augment = {"p": 0.25, "settings": {"xflip": 1.0}}
    c.training_set_kwargs = {"path": "data.zip", "resolution": 16}
    c.metadata = {"kimg": 12, "description": "tiny"}
    return c


def assert_same(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("form", ["file", "folder"])
def test_round_trip_keeps_every_tensor_config_and_field(ckpt, tmp_path, form):
    dest = tmp_path / ("m.safetensors" if form == "file" else "model")
    weights = save_network(ckpt, dest)
    assert weights == (dest if form == "file" else dest / WEIGHTS_NAME)
    again = load_network(dest)
    assert again.source_format == "native" and again.G_ema.config == ckpt.G_ema.config
    assert again.D.config == ckpt.D.config
    assert_same(again.G_ema, ckpt.G_ema)
    assert_same(again.D, ckpt.D)
    assert again.augment == ckpt.augment and again.training_set_kwargs == ckpt.training_set_kwargs
    assert again.metadata == ckpt.metadata
    assert not again.G_ema.training and not any(p.requires_grad for p in again.G_ema.parameters())
    assert is_safetensors_file(weights)


def test_which_loads_only_the_networks_asked_for(ckpt, tmp_path):
    path = save_network(ckpt, tmp_path / "m.safetensors")
    only = load_network(path, which=("D",))
    assert only.D is not None and only.G_ema is None and only.G is None


def test_the_folder_config_is_what_a_person_edits(ckpt, tmp_path):
    save_network(ckpt, tmp_path / "model")
    config = json.loads((tmp_path / "model" / CONFIG_NAME).read_text())
    config["metadata"]["description"] = "edited"
    (tmp_path / "model" / CONFIG_NAME).write_text(json.dumps(config))
    assert load_network(tmp_path / "model").metadata["description"] == "edited"
    config["networks"]["G_ema"]["config"]["z_dim"] = "eight"
    (tmp_path / "model" / CONFIG_NAME).write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"GeneratorConfig.z_dim must be an integer, not 'eight'"):
        load_network(tmp_path / "model")
    (tmp_path / "model" / CONFIG_NAME).write_text("{not json")
    with pytest.raises(CheckpointError, match="is not valid JSON"):
        load_network(tmp_path / "model")


def test_tensors_must_match_the_config_exactly(ckpt, tmp_path):
    path = save_network(ckpt, tmp_path / "m.safetensors")
    tensors = load_file(str(path))
    meta = _stylegan_meta(path)
    for change, message in (
            (lambda t: t.pop("G_ema.mapping.fc0.weight"), "missing ['mapping.fc0.weight']"),
            (lambda t: t.update({"G_ema.extra": torch.zeros(1)}), "unexpected ['extra']"),
            (lambda t: t.update({"G_ema.mapping.fc0.weight": torch.zeros(3, 3)}), "has shape (3, 3), expected"),
            (lambda t: t["G_ema.mapping.fc0.bias"].fill_(float("nan")), "contains NaN or infinite values"),
            (lambda t: t.update({"G_ema.mapping.fc0.bias": torch.zeros(8, dtype=torch.int64)}), "holds torch.int64")):
        broken = {k: v.clone() for k, v in tensors.items()}
        change(broken)
        out = tmp_path / "broken.safetensors"
        save_file(broken, str(out), metadata={"stylegan": json.dumps(meta)})
        with pytest.raises(CheckpointError, match=re.escape(message)):
            load_network(out)


def _stylegan_meta(path) -> dict:
    (n,) = struct.unpack("<Q", path.read_bytes()[:8])
    return json.loads(json.loads(path.read_bytes()[8:8 + n])["__metadata__"]["stylegan"])


def test_headers_that_are_not_ours_or_are_broken(tmp_path):
    plain = tmp_path / "plain.safetensors"
    save_file({"x": torch.zeros(2)}, str(plain))
    with pytest.raises(CheckpointError, match="without a stylegan config"):
        load_network(plain)
    deep = tmp_path / "deep.safetensors"
    deep.write_bytes(crafted.native_file({**crafted.native_header(), "metadata": json.loads("[" * 40 + "]" * 40)}))
    with pytest.raises(CheckpointError, match="nests more than 32 levels"):
        load_network(deep)
    huge = tmp_path / "huge.safetensors"
    huge.write_bytes(struct.pack("<Q", MAX_HEADER_BYTES + 1) + b"{" + b" " * 64)
    assert not is_safetensors_file(huge)
    with pytest.raises(CheckpointError, match="not a model file we know"):
        load_network(huge)
    truncated = tmp_path / "cut.safetensors"
    good = crafted.native_file(crafted.native_header(), {"G_ema.mapping.fc0.weight": torch.zeros(8, 8)})
    truncated.write_bytes(good[:-10])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_network(truncated)


def test_fields_beside_the_networks_are_checked(ckpt, tmp_path):
    bad = Checkpoint(G_ema=ckpt.G_ema, augment={"p": "high"})
    path = save_network(bad, tmp_path / "aug.safetensors")
    with pytest.raises(CheckpointError, match=r"ADA state must be \{'p': a number in \[0, 1\]"):
        load_network(path)
    bad = Checkpoint(G_ema=ckpt.G_ema, metadata={"tensorflow": {"truncation_psi": "x"}})
    with pytest.raises(CheckpointError, match="truncation defaults must be numbers"):
        load_network(save_network(bad, tmp_path / "tf.safetensors"))
