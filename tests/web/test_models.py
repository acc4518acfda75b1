"""The model folder: what the page may list and open, and everything it must refuse."""

import os
import shutil

import pytest

from stylegan.web.models import DEFAULT_NAME, ModelAccessError, ModelLibrary


@pytest.fixture
def model_dir(tmp_path, sg2_model, sg3_model):
    root = tmp_path / "models"
    (root / "runs" / "00001-faces").mkdir(parents=True)
    shutil.copy(sg2_model, root / "sg2.safetensors")
    shutil.copy(sg3_model, root / "runs" / "00001-faces" / "network-snapshot-000100.safetensors")
    (root / "notes.txt").write_text("not a model")
    (root / ".hidden.pkl").write_bytes(b"x")
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copy(sg2_model, outside / "secret.safetensors")
    (root / "link.safetensors").symlink_to(outside / "secret.safetensors")
    (root / "linkdir").symlink_to(outside, target_is_directory=True)
    return root


def test_lists_model_files_inside_the_folder_only(model_dir):
    lib = ModelLibrary(model_dir=model_dir)
    assert lib.list_models() == ["runs/00001-faces/network-snapshot-000100.safetensors", "sg2.safetensors"]
    assert [m["name"] for m in lib.models()] == [DEFAULT_NAME, *lib.list_models()]
    # without --network the first listed model is the default
    assert str(lib.resolve(None)).endswith("network-snapshot-000100.safetensors")


@pytest.mark.parametrize("name", ["../outside/secret.safetensors", "link.safetensors", "linkdir/secret.safetensors",
                                  "notes.txt", ".hidden.pkl", "missing.pkl", "/etc/passwd", "sg2.safetensors\0",
                                  "runs/../sg2.safetensors", "x" * 600])
def test_refuses_names_outside_the_listing(model_dir, name):
    lib = ModelLibrary(model_dir=model_dir)
    with pytest.raises(ModelAccessError):
        lib.resolve(name)


def test_a_listed_model_swapped_for_a_symlink_is_refused(model_dir, tmp_path):
    lib = ModelLibrary(model_dir=model_dir)
    target = model_dir / "sg2.safetensors"
    assert lib.resolve("sg2.safetensors") == target.resolve()
    os.replace(model_dir / "link.safetensors", target)          # now points outside the folder
    with pytest.raises(ModelAccessError):
        lib.resolve("sg2.safetensors")


def test_without_model_dir_only_the_network_model_is_served(sg2_model):
    lib = ModelLibrary(network=sg2_model)
    assert lib.resolve(DEFAULT_NAME) == sg2_model
    with pytest.raises(ModelAccessError, match="--model-dir"):
        lib.resolve("sg2.safetensors")


def test_loads_once_and_keeps_the_last_few(model_dir, sg2_model):
    lib = ModelLibrary(network=sg2_model, model_dir=model_dir, max_loaded=1)
    a = lib.get(None)
    assert lib.get(DEFAULT_NAME) is a                            # cached
    b = lib.get("sg2.safetensors")
    assert b is not a and b.info()["generation"] == "stylegan2"
    assert lib.get(None) is not a                                # evicted (max_loaded=1) and reloaded
    info = lib.get("runs/00001-faces/network-snapshot-000100.safetensors").info()
    assert info["has_transform"] and info["generation"] == "stylegan3"
