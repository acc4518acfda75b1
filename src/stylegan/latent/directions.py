"""Latent directions: found without labels (SeFa, GANSpace-style PCA) or from labels (InterFaceGAN-style boundaries).

* SeFa (Shen & Zhou 2021, "Closed-Form Factorization of Latent Semantics in GANs", Eq. 5-6): the directions
  n that change the styles most, ``argmax ||A n||`` with ``A`` the stacked style-affine weights of the
  chosen layers (each row normalised), are the eigenvectors of ``A^T A`` with the largest eigenvalues.
* PCA (Härkönen et al. 2020, "GANSpace", Sec. 2): principal components of w over sampled z.
* Boundary (Shen et al. 2020, "InterFaceGAN", Sec. 2.2): the unit normal of a linear classifier
  separating ws with and without an attribute; labels come from the user, or from a classifier's
  scores on generated images (the top and bottom fractions serve as positives and negatives).

Everything is stored with :func:`stylegan.latent.io.save_directions` as unit vectors in W.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..distributed import current_shard, sharded_map
from ..errors import UserInputError
from ..networks import Generator
from .io import load_directions, save_directions
from .sampling import GenerationRequest
from .seeds import z_samples


@dataclass
class Directions:
    """K unit directions in W ([K, w_dim]) with what found them."""
    vectors: np.ndarray                    # [K, w_dim] float32 (or [K, num_ws, w_dim] per layer)
    method: str                            # 'sefa', 'pca', 'boundary', ...
    values: np.ndarray | None = None       # [K] eigenvalue / explained variance / validation accuracy
    names: list[str] | None = None
    layers: list[int] | None = None        # layers the directions were found for (and edit by default)

    def __len__(self) -> int:
        return len(self.vectors)

    def save(self, path: str | os.PathLike) -> Path:
        return save_directions(path, self.vectors, self.method, values=self.values,
                               names=self.names or [f"{self.method} {i}" for i in range(len(self))],
                               layers=self.layers)

    @classmethod
    def load(cls, path: str | os.PathLike, G: Generator | None = None) -> Directions:
        d = load_directions(path, w_dim=G.w_dim if G is not None else None,
                            num_ws=G.num_ws if G is not None else None)
        layers = None if d["layers"] is None else [int(x) for x in np.asarray(d["layers"]).reshape(-1)]
        if G is not None and layers and max(layers) >= G.num_ws:
            raise UserInputError(f"{Path(path).name}: directions were found for layer {max(layers)}, "
                                 f"this model has layers 0-{G.num_ws - 1}")
        values = None if d["values"] is None else np.asarray(d["values"], np.float32)
        return cls(d["directions"], d["method"], values, d["names"], layers)

    def pick(self, index: int | str) -> np.ndarray:
        """One direction by index or name."""
        if isinstance(index, str) and not index.lstrip("-").isdigit():
            if self.names and index in self.names:
                return self.vectors[self.names.index(index)]
            raise UserInputError(f"no direction named {index!r}; names: {', '.join((self.names or [])[:10])}")
        i = int(index)
        if not -len(self) <= i < len(self):
            raise UserInputError(f"direction {i} is out of range: the file holds {len(self)} (0-{len(self) - 1})")
        return self.vectors[i]


def sefa(G: Generator, layers: list[int] | None = None, num: int | None = None,
         include_torgb: bool = False) -> Directions:
    """Closed-form factorisation: eigenvectors of ``A^T A`` (largest first), ``A`` = the row-normalised
    style-affine weights of the layers driven by ``layers`` (default: all)."""
    style_layers = G.synthesis.style_layers(include_torgb)
    chosen = [s for s in style_layers if layers is None or s.w_index in layers]
    if not chosen:
        raise UserInputError(f"no style layers among layers {layers}: layers with styles are "
                             f"{sorted({s.w_index for s in style_layers})}")
    A = torch.cat([s.affine.weight.detach().to(torch.float64).cpu() for s in chosen]).numpy()
    A = A / np.maximum(np.linalg.norm(A, axis=1, keepdims=True), 1e-12)
    eigvals, eigvecs = np.linalg.eigh(A.T @ A)               # symmetric: real values, orthonormal vectors
    order = np.argsort(eigvals)[::-1]
    num = G.w_dim if num is None else num
    if not 1 <= num <= G.w_dim:
        raise UserInputError(f"--num must be 1..{G.w_dim} (w_dim), got {num}")
    order = order[:num]
    used = sorted({s.w_index for s in chosen})
    return Directions(vectors=eigvecs[:, order].T.astype(np.float32), method="sefa",
                      values=eigvals[order].astype(np.float32),
                      names=[f"sefa {k}" for k in range(num)], layers=used)


def sample_ws(G: Generator, num_samples: int, seed: int = 0, class_idx: int | None = None,
              batch_size: int = 4096) -> torch.Tensor:
    """w [num_samples, w_dim] (CPU) for z drawn from ``RandomState(seed)`` (one label for conditional
    models). Under torchrun the processes share the batches; every process gets every w."""
    request = GenerationRequest(G, class_idx=class_idx)
    z = z_samples(num_samples, G.z_dim, seed)

    def batch(b: int) -> torch.Tensor:
        return request.map_z(z[b * batch_size:(b + 1) * batch_size])[:, 0]
    return torch.cat(list(sharded_map(batch, -(-num_samples // batch_size), current_shard(), everywhere=True)))


def pca(G: Generator, num: int = 20, num_samples: int = 20000, seed: int = 0,
        class_idx: int | None = None) -> Directions:
    """Principal components of w (GANSpace in W); ``values`` are the variances along them."""
    if num_samples < 2:
        raise UserInputError("--samples must be at least 2 for PCA")
    if not 1 <= num <= min(G.w_dim, num_samples):
        raise UserInputError(f"--num must be 1..{min(G.w_dim, num_samples)}, got {num}")
    w = sample_ws(G, num_samples, seed, class_idx).to(torch.float64)
    w = w - w.mean(0)
    _, s, vh = torch.linalg.svd(w, full_matrices=False)
    var = (s.square() / (num_samples - 1))[:num]
    return Directions(vectors=vh[:num].numpy().astype(np.float32), method="pca", values=var.numpy().astype(np.float32),
                      names=[f"pca {k}" for k in range(num)])


def w_sigma(G: Generator, direction: np.ndarray, num_samples: int = 5000, seed: int = 0,
            class_idx: int | None = None) -> float:
    """Standard deviation of sampled ws along ``direction`` (unit vector [w_dim]): the natural step size."""
    d = torch.as_tensor(np.asarray(direction, np.float32).reshape(-1))
    if d.numel() != G.w_dim:
        raise UserInputError("--sigma needs a direction of size w_dim (not per-layer)")
    w = sample_ws(G, num_samples, seed, class_idx)
    return float((w @ (d / d.norm())).std())


def fit_boundary(ws, labels, val_fraction: float = 0.3, l2: float = 1.0, seed: int = 0,
                 name: str = "boundary") -> Directions:
    """Unit normal of an L2-regularised logistic regression separating ``ws`` [N, w_dim] with label 1
    from label 0 (pointing to 1); ``values`` holds the accuracy on a held-out ``val_fraction``."""
    from scipy.optimize import minimize

    X = np.asarray(ws, np.float64)
    X = X[:, 0] if X.ndim == 3 else X
    y = np.asarray(labels, np.float64).reshape(-1)
    if X.ndim != 2 or len(X) != len(y):
        raise UserInputError(f"need one label per latent: {len(X)} latents, {len(y)} labels")
    if not np.isin(y, (0, 1)).all():
        raise UserInputError("boundary labels must be 0 or 1 (use scores_to_labels for scores)")
    if y.sum() < 2 or (1 - y).sum() < 2:
        raise UserInputError(f"need at least 2 examples of each class, got {int(y.sum())} positive and "
                             f"{int((1 - y).sum())} negative")
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(X))
    n_val = round(len(X) * val_fraction) if len(X) >= 10 else 0
    val, train = idx[:n_val], idx[n_val:]
    Xs = X - X[train].mean(0)                                  # centred, not rescaled: the normal lives in W

    def objective(p):
        w, b = p[:-1], p[-1]
        z = Xs[train] @ w + b
        # log(1 + exp(-s z)) with s = +-1, stable; gradient from the sigmoid.
        s = 2 * y[train] - 1
        loss = np.logaddexp(0, -s * z).mean() + 0.5 * l2 / len(train) * w @ w
        g = -s * (1 / (1 + np.exp(s * z))) / len(train)
        return loss, np.concatenate([Xs[train].T @ g + l2 / len(train) * w, [g.sum()]])

    res = minimize(objective, np.zeros(X.shape[1] + 1), jac=True, method="L-BFGS-B")
    normal = res.x[:-1] / max(np.linalg.norm(res.x[:-1]), 1e-12)
    pred = (Xs @ res.x[:-1] + res.x[-1]) > 0
    acc = float((pred[val] == (y[val] > 0.5)).mean()) if n_val else float((pred[train] == (y[train] > 0.5)).mean())
    return Directions(vectors=normal[None].astype(np.float32), method="boundary",
                      values=np.array([acc], np.float32), names=[name])


def scores_to_labels(scores, fraction: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """InterFaceGAN's selection from continuous scores: the top ``fraction`` are positives, the bottom
    ``fraction`` negatives. Returns (indices, 0/1 labels)."""
    s = np.asarray(scores, np.float64).reshape(-1)
    if not 0 < fraction <= 0.5:
        raise UserInputError(f"--fraction must be in (0, 0.5], got {fraction}")
    k = max(2, int(len(s) * fraction))
    if 2 * k > len(s):
        raise UserInputError(f"need at least {2 * k} scored samples, got {len(s)}")
    order = np.argsort(s, kind="stable")
    idx = np.concatenate([order[:k], order[-k:]])
    return idx, np.concatenate([np.zeros(k), np.ones(k)])


def orthogonalize(direction: np.ndarray, others) -> np.ndarray:
    """InterFaceGAN's conditional manipulation: remove the components along ``others`` (Gram-Schmidt)."""
    d = np.asarray(direction, np.float64).reshape(-1).copy()
    basis: list[np.ndarray] = []
    for o in np.asarray(others, np.float64).reshape(-1, d.size):
        for b in basis:
            o = o - (o @ b) * b
        if np.linalg.norm(o) > 1e-8:
            basis.append(o / np.linalg.norm(o))
    for b in basis:
        d = d - (d @ b) * b
    n = np.linalg.norm(d)
    if n < 1e-8:
        raise UserInputError("the direction lies in the span of the directions to keep fixed")
    return (d / n).astype(np.float32)


def read_labels(path: str | os.PathLike) -> dict[str, float]:
    """Labels or scores a user wrote: CSV/TSV lines ``key,value`` (a header line is skipped) or JSON
    ``{key: value}``. Keys are seeds, image names (``seed0042.png``) or row numbers."""
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"labels file not found: {path}")
    text = path.read_text()
    if path.suffix.lower() == ".json":
        try:
            data = {str(k): float(v) for k, v in __import__("json").loads(text).items()}
        except (ValueError, AttributeError, TypeError) as exc:
            raise UserInputError(f"{path.name}: expected a JSON object {{key: number}}: {exc}") from None
        return data
    out: dict[str, float] = {}
    for n, line in enumerate(text.splitlines()):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = [p.strip() for p in re.split(r"[,\t;]", line) if p.strip()] if re.search(r"[,\t;]", line) \
            else line.split()
        if len(parts) != 2:
            raise UserInputError(f"{path.name}, line {n + 1}: expected 'key,value', got {line!r}")
        try:
            out[parts[0]] = float(parts[1])
        except ValueError:
            if not out:
                continue                                      # header line
            raise UserInputError(f"{path.name}, line {n + 1}: {parts[1]!r} is not a number") from None
    if not out:
        raise UserInputError(f"{path.name} holds no labels")
    return out


def match_labels(labels: dict[str, float], seeds=None, names=None, count: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of a latents file and their values for each labelled key (seed, name or row number)."""
    seed_rows = {int(s): i for i, s in enumerate(seeds)} if seeds is not None else {}
    name_rows = {}
    for i, nm in enumerate(names if names is not None else []):
        name_rows[str(nm)] = i
        name_rows[Path(str(nm)).name] = i
        name_rows[Path(str(nm)).stem] = i
    rows, values, unknown = [], [], []
    for key, v in labels.items():
        row = name_rows.get(key, name_rows.get(Path(key).name, name_rows.get(Path(key).stem)))
        if row is None:
            m = re.fullmatch(r"(?:.*?seed)?0*(\d+)(?:\.\w+)?", Path(key).name)
            if m and seed_rows:
                row = seed_rows.get(int(m.group(1)))
            elif m and count is not None and int(m.group(1)) < count:
                row = int(m.group(1))
        if row is None:
            unknown.append(key)
        else:
            rows.append(row)
            values.append(v)
    if unknown:
        raise UserInputError(f"{len(unknown)} labelled key(s) match no latent (e.g. {unknown[0]!r}); keys must be "
                             f"seeds, image names or row numbers of the latents file")
    return np.asarray(rows, np.int64), np.asarray(values, np.float64)


def labelled_seeds(labels: dict[str, float]) -> tuple[list[int], np.ndarray]:
    """Seeds and values of labels keyed by seed (``12``) or by image name (``seed0012.png``)."""
    seeds, values = [], []
    for key, v in labels.items():
        m = re.fullmatch(r"(?:.*?seed)?0*(\d+)(?:\.\w+)?", Path(key).name)
        if m is None:
            raise UserInputError(f"label key {key!r} names no seed; without --ws the keys must be seeds (12) or "
                                 f"image names with the seed (seed0012.png)")
        seeds.append(int(m.group(1)))
        values.append(v)
    return seeds, np.asarray(values, np.float64)


def load_classifier(path: str | os.PathLike, device: torch.device | str = "cpu"):
    """A TorchScript attribute classifier: images [N, C, H, W] in [-1, 1] -> scores [N] or [N, K]."""
    from ..checkpoints.download import resolve
    from ..perception.torchscript import load_torchscript
    return load_torchscript(resolve(str(path), what="classifier"), "classifier", device)


def classifier_scores(G: Generator, classifier, num_samples: int, seed: int = 0, output: int = 0,
                      class_idx: int | None = None, truncation_psi: float = 1.0, resolution: int | None = None,
                      batch_size: int = 16, show_progress: bool = False) -> tuple[torch.Tensor, np.ndarray]:
    """Sample ``num_samples`` ws, generate their images and score them: (ws [N, num_ws, w_dim], scores [N]).
    Under torchrun the processes share the batches; every process gets every row.

    ``resolution`` N: the classifier gets N x N images. A non-square model's image is first centre-cropped
    to the square of its shorter side (nothing is distorted; the ends of the longer side are not seen),
    then resized; None: the classifier gets the model's own images, whatever their shape."""
    from ..progress import progress
    request = GenerationRequest(G, truncation_psi, class_idx=class_idx)
    z = z_samples(num_samples, G.z_dim, seed)
    shard = current_shard()

    def batch(b: int) -> torch.Tensor:
        ws = request.map_z(z[b * batch_size:(b + 1) * batch_size])
        img = request.synthesize(ws, batch_size=len(ws)).to(request.device).clamp(-1, 1)
        if resolution is not None:
            img = _classifier_square(img, resolution)
        s = classifier(img)
        s = s[0] if isinstance(s, (tuple, list)) else s
        s = s.reshape(len(ws), -1).float()
        if not 0 <= output < s.shape[1]:
            raise UserInputError(f"--output {output} is out of range: the classifier gives {s.shape[1]} score(s)")
        return torch.cat([ws.reshape(len(ws), -1).cpu(), s[:, output:output + 1].cpu()], dim=1)
    num_batches = -(-num_samples // batch_size)
    with torch.no_grad():
        rows = torch.cat(list(progress(sharded_map(batch, num_batches, shard, everywhere=True), total=num_batches,
                                       desc="scoring", unit="batch", disable=not (show_progress and shard.is_main))))
    return rows[:, :-1].reshape(num_samples, G.num_ws, G.w_dim), rows[:, -1].numpy()


def _classifier_square(img: torch.Tensor, size: int) -> torch.Tensor:
    """``img`` [N, C, H, W] as ``size`` x ``size``: centre-cropped to a square, then area-downsampled or
    bilinearly upsampled."""
    import torch.nn.functional as F

    from ..networks.synthesis import centre_crop
    side = min(img.shape[-2:])
    img = centre_crop(img, (side, side))
    if side == size:
        return img
    down = size < side
    return F.interpolate(img, size=(size, size), mode="area" if down else "bilinear",
                         align_corners=None if down else False)
