"""Our FID/KID/PR pipeline against an independent re-computation of NVIDIA's definition, written
from docs/metrics.md in plain numpy/scipy: the same uint8 images reach the detector, the same
features come out, and the same FID/KID/precision/recall values follow (to float round-off)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.linalg
import torch
from PIL import Image
from support.detectors import write_images
from support.models import make_tiny_checkpoint

from stylegan.metrics import compute_metric
from stylegan.perception.detectors import load_detector

NUM_GEN, BATCH, SEED = 22, 8, 7     # three detector batches, the last one partial


def reference_images(G, num, batch, seed, labels):
    """docs/metrics.md, "Generated images": batch b draws z, labels and noise from three seeds of
    SeedSequence([seed, b]); G runs 4 samples at a time; x * 127.5 + 128, clipped, truncated."""
    out = []
    for b, start in enumerate(range(0, num, batch)):
        n = min(batch, num - start)
        z_seed, label_seed, noise_seed = np.random.SeedSequence([seed, b]).generate_state(3)
        z = torch.randn([n, G.z_dim], generator=torch.Generator().manual_seed(int(z_seed)))
        rows = np.random.RandomState(label_seed).randint(len(labels), size=n)
        c = torch.from_numpy(labels[rows])
        torch.manual_seed(int(noise_seed))
        for i in range(0, n, 4):
            with torch.no_grad():
                x = G(z[i:i + 4], c[i:i + 4], noise_mode="random").numpy()
            out.append(np.clip(x * np.float32(127.5) + np.float32(128), 0, 255).astype(np.uint8))
    return np.concatenate(out)


def reference_fid(gen, real):
    mu_g, mu_r = gen.astype(np.float64).mean(0), real.astype(np.float64).mean(0)
    sigma_g = np.cov(gen.astype(np.float64), rowvar=False, bias=True)
    sigma_r = np.cov(real.astype(np.float64), rowvar=False, bias=True)
    s = scipy.linalg.sqrtm(sigma_g @ sigma_r)
    return float(np.real(np.square(mu_g - mu_r).sum() + np.trace(sigma_g + sigma_r - 2 * s)))


def reference_kid(gen, real, num_subsets, max_subset_size, seed):
    """Unbiased MMD² with (x·y/d + 1)³ over subsets: generated indices first, then real ones."""
    rng = np.random.RandomState(seed)
    d = gen.shape[1]
    m = min(len(gen), len(real), max_subset_size)
    t = 0.0
    for _ in range(num_subsets):
        x = gen[rng.choice(len(gen), m, replace=False)].astype(np.float64)
        y = real[rng.choice(len(real), m, replace=False)].astype(np.float64)
        a = (x @ x.T / d + 1) ** 3 + (y @ y.T / d + 1) ** 3
        b = (x @ y.T / d + 1) ** 3
        t += (a.sum() - np.diag(a).sum()) / (m - 1) - b.sum() * 2 / m
    return t / num_subsets / m


def reference_pr(real, gen, k=3):
    """fp16 features; fp16 distances; a probe is inside if within some manifold vector's fp16
    k-th-neighbour distance."""
    def dist(a, b):
        a, b = a.astype(np.float16).astype(np.float64), b.astype(np.float16).astype(np.float64)
        return np.sqrt(((a[:, None] - b[None]) ** 2).sum(-1)).astype(np.float16)

    def coverage(probe, manifold):
        radii = np.sort(dist(manifold, manifold), axis=1)[:, k]
        return float(np.float32((dist(probe, manifold) <= radii[None]).any(axis=1).mean()))   # reported as float32

    return coverage(gen, real), coverage(real, gen)


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """31 real images with class labels 0-3 that are far from uniform (as drawn labels must follow)."""
    folder = write_images(tmp_path_factory.mktemp("data") / "labelled", 31, seed=4)
    names = sorted(p.name for p in folder.glob("*.png"))
    classes = [0] * 20 + [1] * 6 + [2] * 4 + [3]
    (folder / "dataset.json").write_text(json.dumps({"labels": [[n, c] for n, c in zip(names, classes)]}))
    images = np.ascontiguousarray(np.stack([np.asarray(Image.open(folder / n)) for n in names]).transpose(0, 3, 1, 2))
    return folder, images, np.eye(4, dtype=np.float32)[classes]


def features(module, images, batch=BATCH):
    """The detector's output, called on batches of ``batch`` images as the pipeline calls it (its
    float32 round-off depends on the batch)."""
    with torch.no_grad():
        return np.concatenate([module(torch.from_numpy(images[i:i + batch]), return_features=True).numpy()
                               for i in range(0, len(images), batch)])


def recorded(detector):
    """The detector with every uint8 batch it receives recorded."""
    seen = []
    original = detector.features

    def features(images):
        seen.append(images.cpu().numpy().copy())
        return original(images)
    detector.features = features
    return seen


def test_fid_and_kid_follow_the_definition_image_for_image(labelled, inception_file):
    folder, real_images, labels = labelled
    G = make_tiny_checkpoint("stylegan2", c_dim=4, seed=3).G_ema
    det = load_detector(inception_file)
    module = torch.jit.load(str(inception_file))
    expected = reference_images(G, NUM_GEN, BATCH, SEED, labels)
    real_feats = features(module, real_images)
    gen_feats = features(module, expected)

    fresh = load_detector(inception_file, device="cpu")
    seen = recorded(fresh)
    try:
        fid = compute_metric("fid50k_full", G, folder, num_gen=NUM_GEN, batch_size=BATCH, seed=SEED,
                             detector=fresh, cache=False)
    finally:
        del fresh.features
    fed = np.concatenate(seen)
    assert fed.dtype == np.uint8 and [len(s) for s in seen] == [8, 8, 8, 7, 8, 8, 6]   # real, then generated
    np.testing.assert_array_equal(fed[:31], real_images)
    np.testing.assert_array_equal(fed[31:], expected)
    assert fid.results["fid22_full"] == pytest.approx(reference_fid(gen_feats, real_feats), rel=1e-9, abs=1e-12)

    kid = compute_metric("kid50k_full", G, folder, num_gen=NUM_GEN, batch_size=BATCH, seed=SEED, detector=det,
                         cache=False)
    assert kid.results["kid22_full"] == pytest.approx(reference_kid(gen_feats, real_feats, 100, 1000, SEED),
                                                      rel=1e-9, abs=1e-15)
    assert kid.num_real == 31 and kid.seed == SEED and kid.precision == "fp32"


def test_the_features_are_the_detectors_own_output(labelled, inception_file):
    """Features are taken exactly as the detector returns them (float32, no rescaling or resizing
    of ours): the accumulated statistics equal numpy's of the detector's output."""
    from stylegan.metrics.data import open_images
    from stylegan.metrics.features import generated_features, real_features
    folder, real_images, labels = labelled
    G = make_tiny_checkpoint("stylegan2", c_dim=4, seed=3).G_ema
    module = torch.jit.load(str(inception_file))
    det = load_detector(inception_file)
    src = open_images(folder, resolution=32, channels=3, use_labels=True)
    real = real_features(src, det, capture_all=True, capture_mean_cov=True, batch_size=BATCH, cache=False)
    np.testing.assert_array_equal(real.get_all(), features(module, real_images))
    mean, cov = real.get_mean_cov()
    np.testing.assert_allclose(mean, real.get_all().astype(np.float64).mean(0), rtol=1e-12)
    np.testing.assert_allclose(cov, np.cov(real.get_all().astype(np.float64), rowvar=False, bias=True),
                               rtol=1e-9, atol=1e-15)
    gen = generated_features(G, det, num_gen=NUM_GEN, capture_all=True, batch_size=BATCH, seed=SEED, labels=src.labels)
    expected = reference_images(G, NUM_GEN, BATCH, SEED, labels)
    np.testing.assert_array_equal(gen.get_all(), features(module, expected))


def test_precision_recall_follow_the_definition(labelled, vgg_file):
    folder, real_images, labels = labelled
    G = make_tiny_checkpoint("stylegan2", c_dim=4, seed=3).G_ema
    module = torch.jit.load(str(vgg_file))
    real_feats = features(module, real_images)
    gen_feats = features(module, reference_images(G, NUM_GEN, BATCH, SEED, labels))
    result = compute_metric("pr50k3_full", G, folder, num_gen=NUM_GEN, batch_size=BATCH, seed=SEED,
                            detector={"vgg16": vgg_file}, cache=False)
    p, r = reference_pr(real_feats, gen_feats)
    assert result.metric == "pr0.022k3_full"
    assert (result.results["pr0.022k3_full_precision"], result.results["pr0.022k3_full_recall"]) == (p, r)
    assert 0 < p < 1 and 0 < r < 1      # a case where the radii matter


def test_precision_recall_of_random_sets_match_the_reference_exactly():
    from stylegan.metrics.precision_recall import precision_recall
    rng = np.random.RandomState(0)
    for n_real, n_gen, dim in ((53, 41, 6), (120, 90, 24)):
        real = (rng.randn(n_real, dim) * 3).astype(np.float32)
        gen = (rng.randn(n_gen, dim) * 3.5 + 0.4).astype(np.float32)
        assert precision_recall(real, gen, k=3, block=16) == reference_pr(real, gen)
