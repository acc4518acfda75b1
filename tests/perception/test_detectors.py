import hashlib
import pickle
import shutil

import pytest
import torch

from stylegan.checkpoints.download import cached_path_for
from stylegan.errors import CheckpointError, UserInputError
from stylegan.perception.detectors import INCEPTION_URL, load_detector, parse_detector_args


def test_torchscript_detector_loads_and_is_named_by_file_and_hash(inception_file):
    det = load_detector(inception_file, kind="inception")
    digest = hashlib.sha256(inception_file.read_bytes()).hexdigest()
    assert det.name == f"inception-tiny.pt (sha256:{digest[:12]})"
    images = torch.randint(0, 256, [5, 3, 32, 32], dtype=torch.uint8)
    feats = det.features(images)
    assert feats.shape == (5, 16) and feats.dtype == torch.float32
    grey = images[:, :1]
    assert torch.allclose(det.features(grey), det.features(grey.repeat(1, 3, 1, 1)))
    probs = det.probabilities(images)
    assert probs.shape == (5, 10) and torch.allclose(probs.sum(1), torch.ones(5))


def test_file_url_and_cached_http_url_load_the_same_detector(inception_file, private_cache):
    by_uri = load_detector(inception_file.as_uri(), kind="inception")
    cached = cached_path_for("https://example.invalid/metrics/inception.pt")
    cached.parent.mkdir(parents=True)
    shutil.copy(inception_file, cached)
    by_url = load_detector("https://example.invalid/metrics/inception.pt", kind="inception")
    assert by_url.path == cached and by_url.sha256 == by_uri.sha256
    assert by_url.name == f"inception.pt (sha256:{by_uri.sha256[:12]})"
    assert by_uri.name.startswith("inception-tiny.pt (sha256:")


def test_default_detector_is_nvidias_published_file_from_the_cache(inception_file):
    cached = cached_path_for(INCEPTION_URL)
    cached.parent.mkdir(parents=True)
    shutil.copy(inception_file, cached)
    det = load_detector(None, kind="inception")
    assert det.path == cached and det.name.startswith("inception-2015-12-05.pt (sha256:")


def test_unreachable_url_explains_how_to_pass_a_local_file():
    with pytest.raises(CheckpointError, match="--detector inception=PATH"):
        load_detector("http://127.0.0.1:9/inception.pt", kind="inception")


def test_refuses_pickled_detectors(tmp_path):
    for name in ("inception-2015-12-05.pkl", "renamed.pt"):
        path = tmp_path / name
        path.write_bytes(pickle.dumps({"network": "would run code"}))
        with pytest.raises(CheckpointError, match="pickle.*arbitrary code"):
            load_detector(path)


def test_refuses_corrupt_and_non_torchscript_files(tmp_path, inception_file):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00\x01not a model" * 10)
    with pytest.raises(CheckpointError, match="not a TorchScript archive"):
        load_detector(junk)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(inception_file.read_bytes()[:2000])
    with pytest.raises(CheckpointError, match="cannot load detector truncated.pt"):
        load_detector(truncated)
    state_dict = tmp_path / "weights.pt"
    torch.save({"w": torch.zeros(3)}, state_dict)
    with pytest.raises(CheckpointError, match="cannot load detector weights.pt"):
        load_detector(state_dict)
    with pytest.raises(CheckpointError, match="not found"):
        load_detector(tmp_path / "missing.pt")


def test_a_detector_with_another_call_signature_fails_clearly(vgg_file):
    det = load_detector(vgg_file, kind="inception")   # the VGG file has no `no_output_bias` argument
    with pytest.raises(CheckpointError, match="failed to compute class probabilities"):
        det.probabilities(torch.zeros([2, 3, 32, 32], dtype=torch.uint8))
    with pytest.raises(UserInputError, match="uint8"):
        det.features(torch.zeros([2, 3, 32, 32]))


def test_detector_arguments_name_their_kind_or_fill_the_only_one_needed():
    assert parse_detector_args(["a.pt"], {"inception"}) == {"inception": "a.pt"}
    assert parse_detector_args(["vgg16=v.pt", "i.pt"], {"inception", "vgg16"}) == {"vgg16": "v.pt", "inception": "i.pt"}
    assert parse_detector_args(["inception=C:/x=y.pt"], {"inception"}) == {"inception": "C:/x=y.pt"}
    with pytest.raises(UserInputError, match="say which"):
        parse_detector_args(["a.pt"], {"inception", "vgg16"})
