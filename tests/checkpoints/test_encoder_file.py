"""Encoder files from strangers: absurd or mistyped configs and lying headers are one CheckpointError,
refused before any network is built (no memory is spent on a config the tensors do not back)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from safetensors.torch import save_file

from stylegan.checkpoints.encoder import META_KEY, load_encoder, save_encoder
from stylegan.errors import CheckpointError
from stylegan.networks.encoder import Encoder, EncoderConfig


@pytest.fixture(scope="module")
def encoder_file(tmp_path_factory):
    cfg = EncoderConfig(img_resolution=32, img_channels=3, num_ws=4, w_dim=16, head_resolutions=(4, 4, 8, 8),
                        input_resolution=32, channel_base=256, channel_max=32, fpn_channels=16, head_channels=8)
    return save_encoder(Encoder(cfg), tmp_path_factory.mktemp("enc") / "enc.safetensors"), cfg


def _rewrite(path, dest, change):
    from safetensors.torch import load_file
    from stylegan.files import read_safetensors_header
    header = json.loads(read_safetensors_header(path)["__metadata__"][META_KEY])
    change(header)
    save_file(load_file(str(path)), str(dest), metadata={META_KEY: json.dumps(header)})
    return dest


def test_a_saved_encoder_loads_back(encoder_file):
    path, cfg = encoder_file
    E, meta = load_encoder(path)
    assert E.config == cfg and meta == {}


@pytest.mark.parametrize("change, message", [
    (lambda h: h["config"].update(channel_max=1 << 19), "do not match|allowance|has shape"),
    (lambda h: h["config"].update(num_ws="abc"), "num_ws must be an integer"),
    (lambda h: h["config"].update(head_resolutions=5), "head_resolutions must be a list"),
    (lambda h: h.update(format_version="x"), "format_version is 'x'"),
    (lambda h: h.update(config=[1, 2]), "has no config"),
    (lambda h: h["config"].update(fpn_channels=-3), "fpn_channels must be an integer"),
])
def test_hostile_encoder_configs_are_refused(encoder_file, tmp_path, change, message):
    bad = _rewrite(encoder_file[0], tmp_path / "bad.safetensors", change)
    with pytest.raises(CheckpointError, match=message):
        load_encoder(bad)


def test_a_huge_config_is_refused_within_a_small_memory_limit(encoder_file, tmp_path):
    """A 2**19-channel backbone would need terabytes; refused in a child limited to 1.5 GB of memory."""
    bad = _rewrite(encoder_file[0], tmp_path / "huge.safetensors",
                   lambda h: h["config"].update(channel_base=1 << 20, channel_max=1 << 19))
    code = (f"import resource; resource.setrlimit(resource.RLIMIT_AS, ({3 << 29}, {3 << 29}))\n"
            f"from stylegan.checkpoints.encoder import load_encoder\n"
            f"from stylegan.errors import CheckpointError\n"
            f"try:\n    load_encoder({str(bad)!r})\nexcept CheckpointError as e:\n    print('refused:', e)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("refused:") and len(proc.stdout.strip().splitlines()) == 1
