"""Latent directions: SeFa, PCA and InterFaceGAN-style boundaries, checked for what they promise."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from support.models import make_tiny_checkpoint

from stylegan.checkpoints import load_network
from stylegan.errors import UserInputError
from stylegan.latent import directions as dirs
from stylegan.latent.editing import edit_images
from stylegan.latent.sampling import GenerationRequest
from stylegan.latent.seeds import z_from_seeds


@pytest.fixture(scope="module")
def narrow_G():
    """A StyleGAN2 model whose first layer has 16 style channels for a 32-dim w: that layer's style
    weights have a 16-dimensional null space."""
    return make_tiny_checkpoint("stylegan2", channels=16, w_dim=32, seed=3).G_ema


def _w(G, seed=0):
    return G.mapping(z_from_seeds([seed], G.z_dim), None)[0]


def test_sefa_directions_are_orthonormal_eigenvectors(sg2_model):
    G = load_network(sg2_model, which=("G_ema",)).G_ema
    found = dirs.sefa(G, layers=[0, 1, 2, 3])
    V = found.vectors.astype(np.float64)
    assert V.shape == (G.w_dim, G.w_dim)
    assert np.allclose(V @ V.T, np.eye(G.w_dim), atol=1e-5)
    assert np.all(np.diff(found.values) <= 1e-6)                      # largest first
    # Eigenvectors of A^T A for A = the row-normalised style weights of the layers that ws 0-3 drive.
    rows = [s.affine.weight.detach().double().numpy() for s in G.synthesis.style_layers() if s.w_index in (0, 1, 2, 3)]
    A = np.concatenate(rows)
    A /= np.linalg.norm(A, axis=1, keepdims=True)
    for v, lam in zip(V[:5], found.values[:5]):
        assert np.allclose(A.T @ A @ v, lam * v, atol=1e-4 * max(1, lam))
    assert found.layers == [0, 1, 2, 3]


def test_style_layers_follow_the_ws_wiring(sg2_model, sg3_model):
    G = load_network(sg2_model, which=("G_ema",)).G_ema
    idx = {s.name: s.w_index for s in G.synthesis.style_layers(include_torgb=True)}
    assert idx["b4.conv1"] == 0 and idx["b4.torgb"] == 1 and idx["b8.conv0"] == 1 and idx["b8.conv1"] == 2
    assert idx[f"b{G.img_resolution}.torgb"] == G.num_ws - 1
    G3 = load_network(sg3_model, which=("G_ema",)).G_ema
    idx3 = [s.w_index for s in G3.synthesis.style_layers(include_torgb=True)]
    assert idx3 == list(range(1, G3.num_ws))


def test_top_sefa_direction_changes_the_image_and_a_null_direction_does_not(narrow_G):
    G = narrow_G
    found = dirs.sefa(G, layers=[0])                       # ws 0 drives only b4.conv1 (16 styles)
    assert found.values[15] > 1e-3 and np.all(np.abs(found.values[16:]) < 1e-5)
    w = _w(G)
    top, null = found.vectors[0], found.vectors[-1]
    base = edit_images(GenerationRequest(G), w, top, [0.0], layers=[0])[0].astype(int)
    moved = edit_images(GenerationRequest(G), w, top, [5.0], layers=[0])[0].astype(int)
    still = edit_images(GenerationRequest(G), w, null, [5.0], layers=[0])[0].astype(int)
    assert np.abs(moved - base).mean() > 5
    assert np.abs(still - base).max() <= 1                 # styles unchanged -> same image (uint8 rounding)


def test_edits_touch_only_the_chosen_layers(narrow_G):
    G = narrow_G
    w = _w(G, 1)
    rng = np.random.default_rng(0)
    d = rng.standard_normal(G.w_dim).astype(np.float32)
    d /= np.linalg.norm(d)
    base = edit_images(GenerationRequest(G), w, d, [0.0])[0].astype(int)
    assert np.abs(edit_images(GenerationRequest(G), w, d, [4.0], layers=[0, 1, 2, 3])[0].astype(int) - base).mean() > 5
    # A per-layer direction that lives only on layer 6 does nothing when layers 0-3 are edited ...
    per_layer = np.zeros([G.num_ws, G.w_dim], np.float32)
    per_layer[6] = d
    assert np.array_equal(edit_images(GenerationRequest(G), w, per_layer, [4.0], layers=[0, 1, 2, 3])[0].astype(int), base)
    # ... and changes the image when layer 6 is included.
    assert np.abs(edit_images(GenerationRequest(G), w, per_layer, [4.0], layers=[6])[0].astype(int) - base).mean() > 1


def test_pca_matches_the_covariance_eigenvectors(sg2_model):
    G = load_network(sg2_model, which=("G_ema",)).G_ema
    found = dirs.pca(G, num=5, num_samples=3000, seed=1)
    w = dirs.sample_ws(G, 3000, seed=1).double().numpy()
    vals, vecs = np.linalg.eigh(np.cov(w, rowvar=False))
    vals, vecs = vals[::-1][:5], vecs[:, ::-1][:, :5]
    assert np.allclose(found.values, vals, rtol=1e-4)
    assert np.allclose(np.abs(np.sum(found.vectors * vecs.T, axis=1)), 1, atol=1e-4)   # same up to sign
    assert np.allclose(found.vectors @ found.vectors.T, np.eye(5), atol=1e-5)


def test_boundary_recovers_a_planted_direction():
    rng = np.random.default_rng(0)
    truth = rng.standard_normal(32)
    truth /= np.linalg.norm(truth)
    ws = rng.standard_normal([400, 32]) * rng.uniform(0.5, 2, 32)
    found = dirs.fit_boundary(ws, (ws @ truth > 0).astype(float))
    assert float(found.vectors[0] @ truth) > 0.95            # measured 0.979
    assert found.values[0] > 0.85                            # held-out accuracy (120 of 400), measured 0.89
    scores = ws @ truth + 0.3 * rng.standard_normal(400)
    keep, labels = dirs.scores_to_labels(scores, 0.3)
    assert len(keep) == 240 and labels.sum() == 120
    assert float(dirs.fit_boundary(ws[keep], labels).vectors[0] @ truth) > 0.85
    with pytest.raises(UserInputError, match="0 or 1"):
        dirs.fit_boundary(ws, scores)


def test_orthogonalize_removes_the_fixed_directions():
    rng = np.random.default_rng(1)
    d, others = rng.standard_normal(16), rng.standard_normal([2, 16])
    out = dirs.orthogonalize(d, others)
    assert np.allclose(others @ out, 0, atol=1e-5) and np.linalg.norm(out) == pytest.approx(1, abs=1e-6)
    with pytest.raises(UserInputError):
        dirs.orthogonalize(others[0], others)


class _Brightness(torch.nn.Module):
    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return img.mean(dim=[1, 2, 3])


def test_boundary_from_a_classifier_moves_its_score(sg2_model, tmp_path):
    G = load_network(sg2_model, which=("G_ema",)).G_ema
    path = tmp_path / "brightness.pt"
    torch.jit.save(torch.jit.script(_Brightness()), str(path))
    clf = dirs.load_classifier(path)
    ws, scores = dirs.classifier_scores(G, clf, 200, seed=0)
    keep, labels = dirs.scores_to_labels(scores, 0.3)
    found = dirs.fit_boundary(ws[keep].numpy(), labels)
    w = _w(G, 123)
    strip = edit_images(GenerationRequest(G), w, found.vectors[0], [-3, 0, 3])
    brightness = strip.astype(float).mean(axis=(1, 2, 3))
    assert brightness[0] < brightness[1] < brightness[2]


def test_labels_files_match_seeds_names_and_rows(tmp_path):
    (tmp_path / "l.csv").write_text("image,smiling\nseed0003.png,1\nseed0007.png,0\n12,1\n")
    labels = dirs.read_labels(tmp_path / "l.csv")
    assert labels == {"seed0003.png": 1.0, "seed0007.png": 0.0, "12": 1.0}
    rows, values = dirs.match_labels(labels, seeds=[3, 7, 12])
    assert rows.tolist() == [0, 1, 2] and values.tolist() == [1, 0, 1]
    rows, _ = dirs.match_labels({"a.jpg": 1, "b": 0}, names=["x/b.png", "a.jpg"])
    assert rows.tolist() == [1, 0]
    with pytest.raises(UserInputError, match="match no latent"):
        dirs.match_labels({"seed0099.png": 1}, seeds=[3, 7])
    (tmp_path / "bad.csv").write_text("a,1\nb,x\n")
    with pytest.raises(UserInputError, match="not a number"):
        dirs.read_labels(tmp_path / "bad.csv")


def test_directions_round_trip_through_the_npz_layout(sg2_model, tmp_path):
    G = load_network(sg2_model, which=("G_ema",)).G_ema
    found = dirs.sefa(G, layers=[0, 1], num=4)
    back = dirs.Directions.load(found.save(tmp_path / "d.npz"), G)
    assert np.array_equal(back.vectors, found.vectors) and back.method == "sefa"
    assert back.layers == [0, 1] and back.names == ["sefa 0", "sefa 1", "sefa 2", "sefa 3"]
    assert np.array_equal(back.pick("sefa 2"), found.vectors[2])
    with pytest.raises(UserInputError, match="out of range"):
        back.pick(4)


def test_classifier_gets_a_centre_cropped_square_of_a_non_square_model():
    G = make_tiny_checkpoint("stylegan2", img_shape=(16, 32)).G_ema      # draws 32x16 (W x H)
    seen = []

    def classifier(img):
        seen.append(tuple(img.shape[1:]))
        return img.mean(dim=[1, 2, 3])
    ws, scores = dirs.classifier_scores(G, classifier, 4, seed=0, resolution=32, batch_size=4)
    assert seen == [(3, 32, 32)]
    _, cropped = dirs.classifier_scores(G, classifier, 4, seed=0, resolution=16, batch_size=4)
    img = GenerationRequest(G).synthesize(ws, batch_size=4).clamp(-1, 1)
    assert seen[-1] == (3, 16, 16)
    np.testing.assert_allclose(cropped, img[:, :, :, 8:24].mean(dim=[1, 2, 3]).numpy(), rtol=1e-5, atol=1e-6)
    _, whole = dirs.classifier_scores(G, classifier, 4, seed=0, batch_size=4)
    assert seen[-1] == (3, 16, 32)
