"""Reading NVIDIA's network pickles as inert data: exact tensors back, nothing from the file ever runs."""

from __future__ import annotations

import io
import os
import pickle
import pickletools
import re

import numpy as np
import pytest
import torch

from stylegan.checkpoints.safe_pickle import PersistentRecord, TFNetworkRecord, read_pickle
from stylegan.errors import CheckpointError
from support.official_pickle import (HOSTILE_MARKER, MODULE_SRC, Record, TFNetwork, augment_pipe_record,
                                     hostile_pickles, legacy_storage_blob, official_records_from_flat,
                                     reference_records, write_official_pickle, write_reference_pickle,
                                     write_tf_pickle)


def toy_generator() -> Record:
    """A small official-looking G holding every tensor layout and attribute type real files contain."""
    g = torch.Generator().manual_seed(0)
    sg2, sg3 = MODULE_SRC["stylegan3-sg2"], MODULE_SRC["stylegan3"]
    shared_storage = torch.randn(20, generator=g)
    affine = Record("FullyConnectedLayer", module_src=sg2,
                    attrs={"activation": "linear", "weight_gain": np.float64(0.25), "bias_gain": 1},
                    parameters={"weight": torch.randn(4, 16, generator=g), "bias": torch.ones(4)})
    conv0 = Record("SynthesisLayer", module_src=sg2,
                   attrs={"resolution": 8, "up": 2, "use_noise": True, "activation": "lrelu", "conv_clamp": None,
                          "padding": 1, "act_gain": np.float64(np.sqrt(2))},
                   parameters={"weight": torch.randn(8, 4, 3, 3, generator=g).to(memory_format=torch.channels_last),
                               "noise_strength": torch.tensor(0.25),
                               "bias": shared_storage[5:13]},                      # a view at a storage offset
                   buffers={"resample_filter": torch.ones(4, 4) / 16, "noise_const": torch.randn(8, 8, generator=g)},
                   modules={"affine": affine})
    torgb = Record("SynthesisLayer", module_src=sg3,
                   attrs={"is_torgb": True, "use_fp16": np.bool_(True), "in_size": np.array([36, 36], dtype=np.int64),
                          "in_cutoff": np.float64(2.0), "padding": [0, 0, 0, 0], "magnitude_ema_beta": 0.999},
                   parameters={"weight": torch.randn(3, 8, 1, 1, generator=g)},
                   buffers={"magnitude_ema": torch.tensor(1.5), "up_filter": None, "down_filter": None})
    frozen = Record("Conv2dLayer", module_src=sg2, attrs={"activation": "lrelu", "bias": None},
                    buffers={"resample_filter": torch.ones(4, 4) / 16,         # freeze-D keeps weights in buffers
                             "weight": torch.randn(8, 3, 1, 1, generator=g)})
    odd_dtypes = Record("MinibatchStdLayer", module_src=sg2, attrs={"group_size": 4, "num_channels": 1},
                        buffers={"half": torch.randn(5, generator=g).half(), "bf16": torch.randn(3).bfloat16(),
                                 "count": torch.arange(6).view(2, 3), "mask": torch.tensor([True, False, True]),
                                 "empty": torch.empty(0, 4), "transposed": torch.randn(3, 5, generator=g).t()})
    synthesis = Record("SynthesisNetwork", module_src=sg2, attrs={"block_resolutions": [4, 8], "num_ws": 4},
                       modules={"conv0": conv0, "torgb": torgb, "frozen": frozen, "odd": odd_dtypes, "unused": None})
    mapping = Record("MappingNetwork", module_src=sg2, attrs={"w_avg_beta": 0.998, "embed": None},
                     buffers={"w_avg": torch.randn(16, generator=g)})
    return Record("Generator", module_src=sg2,
                  attrs={"z_dim": 16, "c_dim": 0, "w_dim": 16, "img_resolution": 8, "img_channels": 3, "num_ws": 4},
                  modules={"synthesis": synthesis, "mapping": mapping},
                  init_kwargs={"z_dim": 16, "c_dim": 0, "mapping_kwargs": {"num_layers": 2}, "conv_clamp": 256})


def assert_same_tensors(got: dict, want: dict) -> None:
    assert list(got) == list(want)
    for name, tensor in want.items():
        assert got[name].dtype == tensor.dtype, name
        assert got[name].shape == tensor.shape, name
        assert got[name].is_contiguous(), name
        assert torch.equal(got[name], tensor), name


@pytest.mark.parametrize("protocol, numpy_core, newer_torch", [
    (2, "numpy.core", False), (3, "numpy.core", False), (4, "numpy.core", False), (4, "numpy._core", True)])
def test_round_trip_restores_every_tensor_and_attribute(tmp_path, protocol, numpy_core, newer_torch):
    G = toy_generator()
    path = write_official_pickle(tmp_path / "net.pkl", {"G": G, "D": None, "G_ema": G,
                                                        "augment_pipe": augment_pipe_record(p=0.25),
                                                        "training_set_kwargs": None},
                                 protocol=protocol, numpy_core=numpy_core, newer_torch=newer_torch)

    data = read_pickle(path)

    assert list(data) == ["G", "D", "G_ema", "augment_pipe", "training_set_kwargs"]
    rec = data["G_ema"]
    assert isinstance(rec, PersistentRecord) and rec.class_name == "Generator"
    assert_same_tensors(rec.named_tensors(), G.named_tensors())
    assert "synthesis.frozen.weight" in rec.named_tensors()
    conv0 = rec.child("synthesis.conv0")
    assert conv0.parameters["noise_strength"].shape == ()
    assert torch.equal(conv0.parameters["weight"], G.modules["synthesis"].modules["conv0"].parameters["weight"])
    torgb = rec.child("synthesis.torgb")
    assert torgb.none_buffers == {"up_filter", "down_filter"} and "up_filter" not in torgb.buffers
    assert type(torgb.attrs["use_fp16"]) is np.bool_ and type(conv0.attrs["act_gain"]) is np.float64
    assert torgb.attrs["in_size"].dtype == np.int64 and list(torgb.attrs["in_size"]) == [36, 36]
    assert torgb.module_kind == "stylegan3" and rec.module_kind == "stylegan3-sg2"
    assert rec.child("synthesis.frozen").parameters == {} and rec.child("synthesis.frozen").attrs["bias"] is None
    assert "unused" not in rec.child("synthesis").modules
    assert rec.init_kwargs == {"z_dim": 16, "c_dim": 0, "mapping_kwargs": {"num_layers": 2}, "conv_clamp": 256}
    assert type(rec.init_kwargs["mapping_kwargs"]) is dict    # EasyDict comes back as a plain dict
    assert rec.training is False
    assert not any(k.startswith("_") for _, r in rec.named_records() for k in r.attrs)
    augment = data["augment_pipe"]
    assert augment.module_kind == "augment" and augment.buffers["p"].shape == () and float(augment.buffers["p"]) == 0.25
    assert augment.attrs["imgfilter_bands"] == [1, 1, 1, 1]


def test_reads_pickles_written_by_real_torch():
    base = torch.arange(30, dtype=torch.float32)
    tensors = {
        "param": torch.nn.Parameter(torch.randn(4, 3, 3, 3).to(memory_format=torch.channels_last), requires_grad=False),
        "offset_view": base[7:19].view(3, 4), "scalar": torch.tensor(0.5), "half": torch.randn(6).half(),
        "bf16": torch.randn(2).bfloat16(), "mask": torch.tensor([True, False]), "int64": torch.arange(5),
        "empty": torch.zeros(0, 2), "uint16": torch.zeros(3, dtype=torch.uint16),
    }
    data = read_pickle(io.BytesIO(pickle.dumps(tensors, protocol=4)))
    assert_same_tensors(data, {k: v.detach() for k, v in tensors.items()})


def test_storage_blob_is_byte_identical_to_what_torch_writes():
    t = torch.randn(2, 3)
    ops = pickletools.genops(pickle.dumps(t, protocol=4))
    torch_blob = next(arg for op, arg, _ in ops if op.name in ("BINBYTES", "SHORT_BINBYTES"))
    key = re.search(rb"X.{4}(\d+)q\x02", torch_blob, re.S).group(1).decode()
    assert legacy_storage_blob(t.numpy().tobytes(), torch.float32, key=key) == torch_blob


REFUSED = {
    "os_system": "'posix.system'",
    "builtins_eval": "'builtins.eval'",
    "subprocess_popen": "'subprocess.Popen'",
    "builtins_getattr": "'builtins.getattr'",
    "copyreg_reconstructor": "'copyreg._reconstructor'",
    "hostile_in_state": "'posix.system'",
    "easydict_reduce": "'posix.system'",
    "unknown_class": "network class 'StyleGANXLGenerator'",
    "bad_persistence_version": "persistence format version 7",
    "lying_numel": "tensor storage is corrupt",
    "lying_count": "tensor storage is corrupt",
    "tensor_out_of_bounds": "reads element 9999 of a storage holding 6",
    "zero_stride_bomb": "of tensor data from",
    "zip_storage_blob": "storage is in torch's zip format",
    "numpy_object_dtype": "numpy dtype 'O'",
    "state_on_dict": "sets the state of an object of type dict",
    "outer_persistent_id": "persistent-id reference",
    "mixed_tf_torch": "mixes TensorFlow and PyTorch",
    "huge_length_field": "truncated or not a pickle",
    "truncated": "truncated or not a pickle",
    "random_bytes": "truncated or not a pickle",
    "empty": "is empty",
    "zip_file": "is a zip archive",
    "not_a_network": "holds a list, not a network pickle",
}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    return folder, hostile_pickles(folder)


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_hostile_or_broken_files_are_refused_with_one_clear_line(hostile, case):
    folder, files = hostile
    with pytest.raises(CheckpointError, match=re.escape(REFUSED[case])) as info:
        read_pickle(files[case])
    message = str(info.value)
    assert f"{case}.pkl" in message and "\n" not in message
    assert not (folder / HOSTILE_MARKER).exists()


def test_refusal_also_happens_when_reading_from_an_open_file(hostile):
    folder, files = hostile
    with open(files["os_system"], "rb") as f, pytest.raises(CheckpointError, match="'posix.system'"):
        read_pickle(f)
    assert not (folder / HOSTILE_MARKER).exists()


@pytest.mark.skipif(os.name != "posix", reason="the payload calls posix.system")
def test_the_os_system_payload_is_live_under_plain_pickle(tmp_path):
    """Guards the marker checks above: a plain pickle.load really would run the payload."""
    files = hostile_pickles(tmp_path)
    with open(files["os_system"], "rb") as f:
        pickle.load(f)
    assert (tmp_path / HOSTILE_MARKER).exists()


def test_module_src_is_kept_as_text_and_never_run(hostile):
    folder, files = hostile
    rec = read_pickle(files["module_src_exec"])["G_ema"]
    assert rec.class_name == "Generator" and rec.module_kind == "unknown"
    assert torch.equal(rec.parameters["weight"], torch.ones(2, 2))
    assert not (folder / HOSTILE_MARKER).exists()


def test_training_set_class_name_stays_a_string(hostile):
    folder, files = hostile
    data = read_pickle(files["training_set_class_name"])
    assert data["training_set_kwargs"]["class_name"] == "os.system"
    assert not (folder / HOSTILE_MARKER).exists()


def test_missing_file_and_missing_submodule_are_checkpoint_errors(tmp_path):
    with pytest.raises(CheckpointError, match="cannot open"):
        read_pickle(tmp_path / "nope.pkl")
    path = write_official_pickle(tmp_path / "g.pkl", {"G_ema": toy_generator()})
    with pytest.raises(CheckpointError, match="no submodule 'synthesis.b1024'"):
        read_pickle(path)["G_ema"].child("synthesis.b1024")


def test_tensorflow_pickle_reads_as_inert_network_records(tmp_path):
    dense = np.arange(12, dtype=np.float32).reshape(3, 4)
    mapping = TFNetwork("G_mapping", variables=[("Dense0/weight", dense), ("Dense0/bias", np.zeros(4, np.float32))])
    synthesis = TFNetwork("G_synthesis", variables=[("4x4/Const/const", np.ones((1, 8, 4, 4), np.float32))])
    G = TFNetwork("G", static_kwargs={"resolution": 64, "fmap_base": 4096}, version=4,
                  components={"mapping": mapping, "synthesis": synthesis},
                  variables=[("dlatent_avg", np.full(4, 0.5, np.float32)), ("lod", np.float32(0.0))])
    path = write_tf_pickle(tmp_path / "tf.pkl", (G, TFNetwork("D"), G))

    tf_G, tf_D, tf_Gs = read_pickle(path)

    assert all(isinstance(net, TFNetworkRecord) for net in (tf_G, tf_D, tf_Gs))
    assert (tf_G.name, tf_G.version, tf_D.name) == ("G", 4, "D")
    assert tf_G.static_kwargs == {"resolution": 64, "fmap_base": 4096}
    assert set(tf_G.components) == {"mapping", "synthesis"}
    (name, value), _ = tf_G.components["mapping"].variables
    assert name == "Dense0/weight" and value.dtype == np.float32 and np.array_equal(value, dense)
    assert type(dict(tf_G.variables)["lod"]) is np.float32


@pytest.mark.parametrize("reference, generation", [
    ("sg2", None), ("sg2", "stylegan2-ada"), ("sg3t", None), ("sg3r", None)])
def test_reference_networks_round_trip_with_consistent_attributes(reference_dir, tmp_path, reference, generation):
    npz = reference_dir / f"official-{reference}-64.npz"
    path = write_reference_pickle(npz, tmp_path / "net.pkl", generation, augment_p=0.5)

    data = read_pickle(path)

    ada = generation == "stylegan2-ada"
    assert path.read_bytes()[:2] == (b"\x80\x03" if ada else b"\x80\x04")      # ADA era: Python 3.7, protocol 3
    assert list(data) == (["training_set_kwargs", "G", "D", "G_ema", "augment_pipe"] if ada
                          else ["G", "D", "G_ema", "augment_pipe", "training_set_kwargs"])
    recs = reference_records(npz, generation)

    for key, flat_key in (("G_ema", "G_ema"), ("G", "G_ema"), ("D", "D")):
        got = data[key].named_tensors()
        want = recs["flat"][flat_key]
        assert set(got) == set(want)
        for name, array in want.items():
            assert torch.equal(got[name], torch.from_numpy(array)), name
    G, D = data["G_ema"], data["D"]
    assert G.module_kind == (generation or ("stylegan3" if reference != "sg2" else "stylegan3-sg2"))
    syn = G.child("synthesis")
    if reference == "sg2":
        assert syn.attrs["num_ws"] == G.attrs["num_ws"] == 10
        for res in syn.attrs["block_resolutions"][1:]:
            block = syn.child(f"b{res}")
            assert block.attrs["in_channels"] == block.child("conv0").parameters["weight"].shape[1]
            assert block.child("conv0").attrs["up"] == 2 and block.attrs["use_fp16"] is True
            assert block.child("conv1").attrs["conv_clamp"] == 256
    else:
        assert syn.attrs["num_ws"] == 16 and len(syn.attrs["layer_names"]) == 15
        assert syn.child("input").attrs["size"].tolist() == [36, 36]
        for name in syn.attrs["layer_names"]:
            layer = syn.child(name)
            weight = layer.parameters["weight"]
            assert (layer.attrs["out_channels"], layer.attrs["in_channels"]) == tuple(weight.shape[:2])
            assert f"L{name[1:].split('_')[0]}_{int(layer.attrs['out_size'][0])}_{weight.shape[0]}" == name
            assert type(layer.attrs["use_fp16"]) is np.bool_ and layer.attrs["in_size"].dtype == np.int64
            up = layer.buffers.get("up_filter")
            assert (up.shape[0] if up is not None else 1) == layer.attrs["up_taps"]
            assert all(type(p) is int for p in layer.attrs["padding"])
    epilogue = D.child("b4")
    assert D.module_kind == ("stylegan2-ada" if generation == "stylegan2-ada" else "stylegan3-sg2")
    assert epilogue.child("mbstd").named_tensors() == {}
    assert epilogue.child("mbstd").attrs == {"group_size": 4, "num_channels": 1}
    firsts = [D.child(f"b{r}").attrs["first_layer_idx"] for r in D.attrs["block_resolutions"]]
    assert firsts == [0, 4, 7, 10]


def test_frozen_discriminator_layers_keep_their_weights_as_buffers(reference_dir, tmp_path):
    flat = reference_records(reference_dir / "official-sg2-64.npz")["flat"]["D"]
    D = official_records_from_flat(flat, "Discriminator", {"c_dim": 0, "img_resolution": 64, "img_channels": 3,
                                                           "channel_base": 2048, "channel_max": 64},
                                   "stylegan2-ada", freeze_layers=3)
    rec = read_pickle(write_official_pickle(tmp_path / "d.pkl", {"D": D}, protocol=3))["D"]
    assert set(rec.child("b64.conv1").buffers) == {"resample_filter", "weight", "bias"}
    assert set(rec.child("b64.skip").parameters) == {"weight"}
    assert set(rec.named_tensors()) == set(flat)
