import json

import numpy as np
import pytest
import torch
from support.detectors import write_images
from support.models import make_tiny_checkpoint

from stylegan.errors import DatasetError
from stylegan.metrics.data import ImageArray, ImageBatches, open_images
from stylegan.metrics.features import (
    FeatureStats,
    generated_batch,
    generated_images,
    random_labels,
    real_features,
    to_uint8,
)
from stylegan.perception.detectors import load_detector


def test_feature_stats_mean_and_covariance_match_numpy(tmp_path):
    x = (np.random.RandomState(0).randn(250, 6) * [1, 2, 3, 4, 5, 6] + 7).astype(np.float32)
    stats = FeatureStats(capture_all=True, capture_mean_cov=True, max_items=200)
    for chunk in np.array_split(x, 7):
        stats.append(chunk)
    assert stats.num_items == 200 and stats.is_full()
    mean, cov = stats.get_mean_cov()
    np.testing.assert_allclose(mean, x[:200].mean(0), rtol=1e-6)
    np.testing.assert_allclose(cov, np.cov(x[:200].astype(np.float64), rowvar=False, bias=True), rtol=1e-5, atol=1e-8)
    np.testing.assert_array_equal(stats.get_all(), x[:200])
    stats.save(tmp_path / "s.npz")
    again = FeatureStats.load(tmp_path / "s.npz", True, True, 200)
    np.testing.assert_array_equal(again.get_mean_cov()[1], cov)
    assert again.from_cache and again.num_items == 200


def test_real_statistics_are_cached_per_dataset_detector_and_options(inception_file, tmp_path, private_cache):
    det = load_detector(inception_file)
    folder = write_images(tmp_path / "faces", 12, seed=3)
    first = real_features(open_images(folder), det, capture_mean_cov=True, batch_size=5)
    assert not first.from_cache and first.num_items == 12
    files = list((private_cache / "metrics").glob("faces-inception-tiny-*.npz"))
    assert files == [first.cache_path]
    second = real_features(open_images(folder), det, capture_mean_cov=True, batch_size=5)
    assert second.from_cache
    np.testing.assert_array_equal(second.get_mean_cov()[0], first.get_mean_cov()[0])
    # Other options and a changed dataset are different statistics.
    assert not real_features(open_images(folder), det, capture_mean_cov=True, max_items=6).from_cache
    write_images(tmp_path / "extra", 1, seed=9)
    (tmp_path / "extra" / "img00000.png").rename(folder / "img99999.png")
    changed = real_features(open_images(folder), det, capture_mean_cov=True)
    assert not changed.from_cache and changed.num_items == 13
    assert not real_features(open_images(folder), det, capture_mean_cov=True, cache=False).from_cache


def test_real_features_match_the_detector_applied_directly(inception_file, real_folder):
    det = load_detector(inception_file)
    stats = real_features(open_images(real_folder), det, capture_all=True, batch_size=7, cache=False)
    from PIL import Image
    first = np.array(Image.open(min(real_folder.glob("*.png")))).transpose(2, 0, 1)[None].copy()
    np.testing.assert_allclose(stats.get_all()[0], det.features(torch.from_numpy(first))[0].numpy(), rtol=1e-5)


def test_generated_images_are_reproducible_uint8_from_the_seed_batch_by_batch():
    G = make_tiny_checkpoint("stylegan2").G_ema
    a = torch.cat(list(generated_images(G, 6, batch_size=4, seed=5)))
    b = torch.cat(list(generated_images(G, 6, batch_size=4, seed=5)))
    c = torch.cat(list(generated_images(G, 6, batch_size=4, seed=6)))
    assert a.shape == (6, 3, 32, 32) and a.dtype == torch.uint8
    assert torch.equal(a, b) and not torch.equal(a, c)
    # Each batch is made from its own seeds alone (what lets processes share the batches out).
    assert torch.equal(generated_batch(G, 2, batch=1, seed=5), a[4:])
    assert torch.equal(generated_batch(G, 4, batch=0, seed=5), a[:4])
    assert torch.equal(generated_batch(G, 2, batch=0, seed=5), a[:2])     # a shorter last batch: a prefix


def test_uint8_conversion_is_nvidias_truncation_of_x_times_127_5_plus_128():
    x = torch.tensor([-1.5, -1.0, -0.999, -0.1 / 127.5, 0.0, 0.5 / 127.5, 1 / 127.5, 0.9999, 1.0, 2.0])
    # 127.9 -> 127 (truncated, not rounded); 128.5 -> 128; clamped to [0, 255].
    assert to_uint8(x).tolist() == [0, 0, 0, 127, 128, 128, 129, 255, 255, 255]


def test_conditional_labels_come_from_the_dataset():
    labels = np.eye(4, dtype=np.float32)[[2, 2, 2, 3]]
    c = random_labels(4, 200, np.random.RandomState(0), labels)
    assert set(c.argmax(1).tolist()) == {2, 3} and (c.argmax(1) == 2).float().mean() > 0.6
    uniform = random_labels(4, 400, np.random.RandomState(0), None)
    assert set(uniform.argmax(1).tolist()) == {0, 1, 2, 3}
    with pytest.raises(DatasetError, match="labels"):
        random_labels(5, 2, np.random.RandomState(0), labels)


def test_image_sources_check_size_and_read_labels(tmp_path, real_folder):
    with pytest.raises(DatasetError, match="32x32 but the model makes 64x64"):
        open_images(real_folder, resolution=64)
    labelled = write_images(tmp_path / "labelled", 4, seed=1)
    names = sorted(p.name for p in labelled.glob("*.png"))
    (labelled / "dataset.json").write_text(json.dumps({"labels": [[n, i % 2] for i, n in enumerate(names)]}))
    src = open_images(labelled, resolution=32, channels=3, use_labels=True)
    np.testing.assert_array_equal(src.labels.argmax(1), [0, 1, 0, 1])
    assert open_images(labelled).labels is None
    nhwc = np.zeros([5, 32, 32, 3], np.uint8)
    arr = open_images(nhwc)
    assert isinstance(arr, ImageArray) and next(arr.batches(4)).shape == (4, 3, 32, 32)
    stream = open_images([np.zeros([3, 3, 8, 8], np.uint8)] * 3)
    assert isinstance(stream, ImageBatches) and stream.fingerprint() is None
    assert sum(len(b) for b in stream.batches(64, max_items=7)) == 7
    with pytest.raises(DatasetError, match="not found"):
        open_images(tmp_path / "nowhere")


def test_an_opened_training_dataset_is_read_without_its_mirrored_copies(real_folder, inception_file):
    from stylegan.data.dataset import ImageDataset
    mirrored = ImageDataset(real_folder, mirror=True)
    src = open_images(mirrored, resolution=32)
    assert len(mirrored) == 80 and len(src) == 40
    stats = real_features(src, load_detector(inception_file), capture_all=True)
    direct = real_features(open_images(real_folder), load_detector(inception_file), capture_all=True, cache=False)
    np.testing.assert_array_equal(stats.get_all(), direct.get_all())
    # Same files, same cached statistics, however the dataset was opened.
    assert real_features(open_images(real_folder), load_detector(inception_file), capture_all=True).from_cache
