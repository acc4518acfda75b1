"""Each class of hostile model file of issue #13, crafted (fuzz/crafted.py), refused through the API with one
line, in a memory-limited child process, without a crash and without allocating what the file asks for."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from fuzz import crafted
from stylegan.checkpoints import load_network
from stylegan.checkpoints.isolation import Worker
from stylegan.errors import CheckpointError

MB = 1 << 20

#: name -> (file name, bytes, what the one-line refusal says). Every one of these crashed the process, made
#: it allocate gigabytes, or gave a traceback before the hardening.
CLASSES = {
    "numpy dtype rebuilt after an array used it (segfault)": (
        "dtype.pkl", lambda: crafted.dtype_rebuilt_after_use("f4"), "changes a numpy dtype after it was put into"),
    "string dtype whose size is rebuilt (heap bytes)": (
        "dtype_s8.pkl", lambda: crafted.dtype_rebuilt_after_use("S8"), "numpy dtype 'S8'"),
    "dtype built twice": ("dtype2.pkl", crafted.dtype_built_twice, "numpy dtype a second time"),
    "array given its state after it was used": ("array.pkl", crafted.array_built_after_use,
                                                "changes a numpy array after"),
    "dict key nested a million deep (segfault)": ("deep.pkl", crafted.deep_tuple_key, "nests containers more than 100"),
    "progress nested 200000 deep": ("progress.pkl", crafted.deep_progress, "nests containers more than 100"),
    "a list inside itself": ("self.pkl", crafted.self_containing_list, "puts a list inside itself"),
    "a dict changed after it was handed on": ("late.pkl", crafted.changed_after_handoff, "changes a dict after"),
    "200 zero-stride views of one storage (12 GB)": ("zero.pkl", crafted.zero_stride_views, "of tensor data from"),
    "400 strided views of one storage": ("views.pkl", crafted.many_views_of_one_storage, "of tensor data from"),
    "one storage blob parsed 300 times": ("blobs.pkl", crafted.one_blob_parsed_many_times, "of tensor data from"),
    "official attributes asking for z_dim 65536 (8 GiB)": ("dims.pkl", crafted.official_claims_huge_dims,
                                                          "expected (8, 65536)"),
    "zero-size conv weights": ("empty.pkl", crafted.official_zero_size_weights, "non-zero dimensions"),
    "native config asking for 16384 channels (9.6 GB per layer)": ("huge.safetensors",
                                                                   crafted.native_huge_architecture,
                                                                   "tensors do not match the rebuilt architecture"),
    "TF variable of shape [3, 3, 0, 2**30]": ("tf.pkl", crafted.tf_zero_size_variable, "non-zero dimensions"),
    "rosinality data.pkl nested a million deep (segfault in torch.load)": ("deep.pt", crafted.rosinality_deep_nesting,
                                                                          "nests containers more than 100"),
    "rosinality zero-stride 2.4 GB weight": ("zero.pt", crafted.rosinality_zero_stride, "of tensor data from"),
    "rosinality deflated storage lying about its size": ("lying.pt", crafted.rosinality_lying_sizes,
                                                         "compression method 8"),
}


@pytest.fixture(scope="module")
def worker():
    with Worker() as w:
        yield w


@pytest.mark.parametrize("label", sorted(CLASSES))
def test_hostile_file_is_refused_in_one_line_without_a_crash_or_a_memory_bomb(label, worker, tmp_path):
    name, make, message = CLASSES[label]
    path = tmp_path / name
    path.write_bytes(make())
    out = worker.call("stylegan.checkpoints:load_network", [str(path)], memory_bytes=1 << 30, timeout=300)
    assert out.kind == "refused" and out.error == "CheckpointError", (out.kind, out.message[-500:])
    assert message in out.message and name in out.message and "\n" not in out.message
    assert out.peak_bytes < 3 * path.stat().st_size + 128 * MB, out.peak_bytes
    assert out.stderr == ""


@pytest.mark.parametrize("where, value, message", [
    (":z_dim", "abc", "official Generator.z_dim must be an integer, not 'abc'"),
    (":z_dim", ..., "official Generator has no attribute 'z_dim'"),
    (":img_resolution", -4, "official Generator.img_resolution is -4"),
    (":img_resolution", 2**30, "official Generator.img_resolution is 1073741824"),
    (":img_resolution", np.float64(np.nan), "official Generator.img_resolution must be an integer, not nan"),
    ("synthesis:block_resolutions", 5, "official SynthesisNetwork.block_resolutions must be a list"),
    ("synthesis:block_resolutions", [4, 8, "x"], "block_resolutions must be an integer, not 'x'"),
    ("synthesis.b4.conv1:conv_clamp", "high", "official SynthesisLayer.conv_clamp must be a finite number"),
    ("synthesis.b4.conv1:activation", 7, "official SynthesisLayer.activation must be a string"),
    ("mapping:num_layers", 10**9, "official MappingNetwork.num_layers is 1000000000"),
    ("mapping.fc0:bias_gain", float("inf"), "bias_gain must be a finite number, not inf"),
])
def test_wrongly_typed_or_absurd_official_attributes_name_the_field(tmp_path, where, value, message):
    path = tmp_path / "g.pkl"
    path.write_bytes(crafted.official_with(where, value))
    with pytest.raises(CheckpointError, match=re.escape(message)) as info:
        load_network(path)
    assert str(info.value).startswith("g.pkl: G_ema: ") and "\n" not in str(info.value)


@pytest.mark.parametrize("change, message", [
    ({"networks": [1]}, "'networks' must be a JSON object of networks, not a list"),
    ({"format_version": "x"}, "format_version must be a whole number, not 'x'"),
    ({"format_version": 99}, "written by a newer stylegan (format version 99)"),
    ({"format": 3}, "unknown format '3'"),
    ({"networks": {"G_ema": {"kind": "generator", "config": [1]}}}, "networks.G_ema must be"),
    ({"networks": {"G_ema": {"kind": 5, "config": {}}}}, "networks.G_ema must be"),
])
def test_malformed_native_headers_name_the_field(tmp_path, change, message):
    path = tmp_path / "m.safetensors"
    path.write_bytes(crafted.native_file({**crafted.native_header(), **change}))
    with pytest.raises(CheckpointError, match=re.escape(message)):
        load_network(path)


@pytest.mark.parametrize("config, message", [
    ({"z_dim": "abc"}, "GeneratorConfig.z_dim must be an integer, not 'abc'"),
    ({"z_dim": None}, "GeneratorConfig.z_dim is missing (null)"),
    ({"img_resolution": -4}, "GeneratorConfig.img_resolution is -4; it must lie between 4 and 16384"),
    ({"img_resolution": 2**30}, "GeneratorConfig.img_resolution is 1073741824"),
    ({"img_resolution": 12}, "stylegan2 needs a power of two"),
    ({"generation": "stylegan9"}, "generation is 'stylegan9'"),
    ({"mapping": {"lr_multiplier": 0}}, "MappingConfig.lr_multiplier is 0"),
    ({"mapping": {"activation": "gelu-ish"}}, "MappingConfig.activation is 'gelu-ish'"),
    ({"synthesis": {"resample_filter": [0, 0]}}, "resample_filter must be a list of 1 to 32 finite numbers"),
    ({"synthesis": {"channel_max": True}}, "StyleGAN2SynthesisConfig.channel_max must be an integer, not True"),
    ({"synthesis": {"nonsense": 1}}, "unknown StyleGAN2SynthesisConfig fields: ['nonsense']"),
    ({"img_shape": "8x4"}, "GeneratorConfig.img_shape must be two integers [height, width], not '8x4'"),
    ({"img_shape": [4, 8, 8]}, "GeneratorConfig.img_shape must be two integers"),
    ({"img_shape": [4.0, 8]}, "GeneratorConfig.img_shape must be two integers"),
    ({"img_shape": [True, 8]}, "GeneratorConfig.img_shape must be two integers"),
    ({"img_shape": [6, 8]}, "GeneratorConfig.img_shape is [6, 8]; both sides must be powers of two"),
    ({"img_shape": [0, 8]}, "GeneratorConfig.img_shape is [0, 8]; both sides must be powers of two"),
    ({"img_shape": [4, 16]}, "GeneratorConfig.img_shape is [4, 16]; its longer side must be img_resolution (8)"),
    ({"img_shape": [1, 8]}, "GeneratorConfig.img_shape is [1, 8]; the aspect must lie between 1:4 and 4:1"),
    ({"img_shape": [8, 4], "generation": "stylegan1"}, "non-square models are StyleGAN2 or StyleGAN3"),
])
def test_wrongly_typed_or_absurd_native_configs_name_the_field(tmp_path, config, message):
    path = tmp_path / "m.safetensors"
    path.write_bytes(crafted.native_file(crafted.native_header(**config)))
    with pytest.raises(CheckpointError, match=re.escape(message)) as info:
        load_network(path)
    assert str(info.value).startswith("m.safetensors: invalid config for G_ema: ")


@pytest.mark.parametrize("kwargs, message", [
    ({"resolution": "abc"}, "TensorFlow option resolution must be an integer, not 'abc'"),
    ({"resolution": 2**30}, "resolution is 1073741824"),
    ({"resample_kernel": [[1, 2], [3]]}, "resample_kernel="),
    ({"num_fp16_res": -1}, "num_fp16_res is -1"),
    ({"conv_clamp": "x"}, "conv_clamp must be a finite number"),
    ({"mapping_lrmul": np.zeros(3)}, "mapping_lrmul must be a finite number"),
])
def test_wrongly_typed_tensorflow_options_name_the_option(tmp_path, kwargs, message):
    path = tmp_path / "tf.pkl"
    path.write_bytes(crafted.tf_with_kwargs(**kwargs))
    with pytest.raises(CheckpointError, match=re.escape(message)):
        load_network(path)


def test_a_valid_file_still_loads_and_the_budgets_do_not_bite(tmp_path):
    path = tmp_path / "ok.pkl"
    path.write_bytes(crafted.tiny_official_pickle("stylegan3"))
    G = load_network(path).G_ema
    with torch.no_grad():
        assert G(torch.zeros([1, 8]), None).shape == (1, 3, 16, 16)
