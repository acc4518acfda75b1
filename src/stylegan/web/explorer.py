"""The explorer's work, free of HTTP: turn a :class:`~stylegan.web.schemas.RenderRequest` into a latent and an
image through the same functions ``stylegan generate`` uses, and keep what the page uploaded or computed
(latents files, direction sets) in a small bounded store."""

from __future__ import annotations

import secrets
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UserInputError
from ..latent.directions import Directions
from ..latent.editing import direction_offsets
from ..latent.mixing import mix_ws
from ..latent.sampling import GenerationRequest
from ..latent.seeds import MAX_SEED, saved_label, z_from_seed
from .models import LoadedModel, ModelLibrary
from .photos import PhotoEncoders
from .schemas import (MAX_CANVAS_PIXELS, MAX_DIRECTIONS, MAX_UNPACKED_BYTES, MAX_UPLOAD_BYTES, MAX_UPLOAD_ROWS,
                      RenderRequest, SefaRequest, UploadLatent)

SEED_ROW = 100      # the seed plane: moving one step in y adds 100 to the seed (NVIDIA's visualizer layout)


class NotFound(UserInputError):
    """An upload or direction set the server does not hold (unknown id, or evicted)."""


@dataclass
class UploadedLatents:
    ws: np.ndarray                  # [N, num_ws, w_dim] float32
    labels: list[str]
    seeds: list[int | None]


@dataclass
class Rendered:
    image: np.ndarray               # [H, W, C] uint8, the pixels `stylegan generate` writes
    ws: np.ndarray                  # [1, num_ws, w_dim] float32
    name: str                       # file stem for downloads: seed0042, projected_w, seed0042-mix7, ...
    extra: dict                     # arrays saved beside ws in the .npz (seeds, z, psi, c, labels)
    seconds: float
    canvas_note: str | None = None  # the rounding note `--size` prints (GenerationRequest.canvas_note)


class Store:
    """Uploaded latents and direction sets by random id; the oldest go first beyond ``capacity``."""

    def __init__(self, capacity: int = 64):
        self.capacity = capacity
        self._items: OrderedDict[str, object] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, item) -> str:
        key = secrets.token_urlsafe(12)
        with self._lock:
            self._items[key] = item
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
        return key

    def get(self, key: str, kind: type, what: str):
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
        if not isinstance(item, kind):
            raise NotFound(f"unknown {what} (the server restarted or dropped it): upload or compute it again")
        return item

    def has(self, key: str | None) -> bool:
        with self._lock:
            return key in self._items


def _safe_stem(filename: str | None, default: str) -> str:
    stem = Path(str(filename or "")).stem
    stem = "".join(ch for ch in stem if ch.isalnum() or ch in "-_.")[:80].strip(".")
    return stem or default


def npz_upload(data: bytes, filename: str | None, default: str, max_bytes: int = MAX_UPLOAD_BYTES,
               max_unpacked: int = MAX_UNPACKED_BYTES) -> tuple[tempfile.TemporaryDirectory, Path]:
    """Check an uploaded ``.npz`` completely (size, a zip of ``.npy`` arrays of numbers or strings, true sizes
    and CRCs, headers, bounded unpacked size: :func:`stylegan.latent.io.read_npz`) and write it to a private
    temporary folder so the shared readers in :mod:`stylegan.latent.io` can open it. Every problem is a
    :class:`UserInputError` (a 400 with its message)."""
    from ..latent.io import read_npz
    name = _safe_stem(filename, default)
    if not data:
        raise UserInputError(f"{name}.npz is empty")
    if len(data) > max_bytes:
        raise UserInputError(f"{name}.npz is larger than {max_bytes / 2**20:g} MB")
    if not data.startswith(b"PK\x03\x04"):
        raise UserInputError(f"{name} is not an .npz file (numpy's zip of arrays)")
    read_npz(data, max_unpacked=max(0, max_unpacked - len(data)), name=f"{name}.npz")
    tmp = tempfile.TemporaryDirectory(prefix="stylegan-web-")
    path = Path(tmp.name) / f"{name}.npz"
    path.write_bytes(data)
    return tmp, path


class Explorer:
    """Renders requests against the models of a :class:`ModelLibrary` and holds the page's uploads
    (``max_upload_bytes`` each; they may unpack to 8x that, at least 64 MB); ``encoders``: model name ->
    encoder file for the photo upload (:class:`~stylegan.web.photos.PhotoEncoders`)."""

    #: The most pixels a canvas may be rendered at (``serve --max-canvas-mp``; :func:`create_app` sets it).
    max_canvas_pixels: int = MAX_CANVAS_PIXELS

    def __init__(self, library: ModelLibrary, store_capacity: int = 64, max_upload_bytes: int = MAX_UPLOAD_BYTES,
                 encoders: dict[str, str | Path] | None = None):
        self.library = library
        self.store = Store(store_capacity)
        self.max_upload_bytes = max_upload_bytes
        self.max_unpacked_bytes = max(MAX_UNPACKED_BYTES, 8 * max_upload_bytes)
        self.photo_encoders = PhotoEncoders(library.device, encoders)

    def _npz(self, data: bytes, filename: str | None, default: str):
        return npz_upload(data, filename, default, self.max_upload_bytes, self.max_unpacked_bytes)

    def model(self, name: str | None) -> LoadedModel:
        """The loaded model, with its photo-encoder status worked out (once, with the load) for the page."""
        m = self.library.get(name)
        self.photo_encoders.status(m)
        return m

    def upload_latents(self, model: str | None, data: bytes, filename: str | None = None) -> dict:
        """A latents ``.npz`` (projected_w.npz, ``--save-ws`` output, ...) checked against the model."""
        from ..latent.sources import latents_from_file
        m = self.model(model)
        tmp, path = self._npz(data, filename, "latents")
        with tmp:
            lat = latents_from_file(m.G, path)
        if len(lat) > MAX_UPLOAD_ROWS:
            raise UserInputError(f"{path.name} holds {len(lat)} latents; the explorer takes at most {MAX_UPLOAD_ROWS}")
        key = self.store.add(UploadedLatents(ws=lat.ws.astype(np.float32), labels=lat.labels, seeds=lat.seeds))
        return {"id": key, "count": len(lat), "labels": lat.labels, "seeds": lat.seeds}

    def upload_directions(self, model: str | None, data: bytes, filename: str | None = None) -> dict:
        """A directions ``.npz`` (``stylegan directions`` output) checked against the model."""
        m = self.model(model)
        tmp, path = self._npz(data, filename, "directions")
        with tmp:
            d = Directions.load(path, m.G)
        if len(d) > MAX_DIRECTIONS:
            raise UserInputError(f"{path.name} holds {len(d)} directions; the explorer takes at most {MAX_DIRECTIONS}")
        return self._register(d, source=path.stem)

    def upload_photo(self, model: str | None, data: bytes, filename: str | None = None, steps: str | None = None,
                     face: str | None = None) -> dict:
        """A photo (face number ``face`` FFHQ-aligned, or centre-cropped) -> the encoder's w (+ ``steps``
        refinement steps), stored as an uploaded latent: the page renders, edits, mixes and downloads it like a
        projected_w.npz. The model must have an encoder."""
        from .photos import decode_photo, invert_photo, parse_face, parse_steps, png_data_url
        m = self.model(model)
        n_steps, face_index = parse_steps(steps), parse_face(face)
        encoder = self.photo_encoders.encoder(m)
        name = _safe_stem(filename, "photo")
        if len(data) > self.max_upload_bytes:
            raise UserInputError(f"{name} is larger than {self.max_upload_bytes / 2**20:g} MB")
        target = decode_photo(data, name, m.G.img_resolution, m.G.img_channels, face=face_index)
        with m.lock:
            res = invert_photo(m, encoder, target, n_steps)
        key = self.store.add(UploadedLatents(ws=res.ws.numpy().astype(np.float32), labels=[name], seeds=[None]))
        return {"id": key, "count": 1, "labels": [name], "seeds": [None], "steps": n_steps,
                "psnr": float(res.psnr[0]), "encoder_psnr": float(res.extra["encoder_psnr"][0]),
                "target": png_data_url(target), "encoder": self.photo_encoders.status(m)["encoder"]}

    def sefa(self, req: SefaRequest) -> dict:
        """SeFa directions of the model's style layers (closed form, computed once per model and layers)."""
        from ..latent.directions import sefa
        from ..latent.mixing import parse_layers
        m = self.model(req.model)
        layers = None if req.layers.strip().lower() == "all" else parse_layers(req.layers, m.G)
        num = min(req.num, m.G.w_dim)
        cache_key = ("sefa", tuple(layers) if layers else None, num)
        cached = m.cache.get(cache_key)
        if cached is not None and self.store.has(cached["id"]):
            return cached
        info = self._register(sefa(m.G, layers, num), source=f"sefa {req.layers.strip()}")
        m.cache[cache_key] = info
        return info

    def _register(self, d: Directions, source: str) -> dict:
        key = self.store.add(d)
        values = None if d.values is None else [float(v) for v in np.asarray(d.values).reshape(-1)]
        return {"id": key, "source": source, "method": d.method, "count": len(d),
                "names": list(d.names or [f"{d.method} {i}" for i in range(len(d))]), "values": values,
                "layers": d.layers}

    def generation(self, G, req: RenderRequest) -> GenerationRequest:
        """The page's settings as the generation request every command uses (checked there, once: the
        canvas as ``--size`` takes it), and the canvas held to this server's pixel budget."""
        gen = GenerationRequest(G, req.psi, req.cutoff, req.class_idx, req.noise_mode, tuple(req.translate),
                                req.rotate, canvas=req.canvas, extension=req.extension)
        self._check_canvas_budget(gen)
        return gen

    def _check_canvas_budget(self, gen: GenerationRequest) -> None:
        """Refuse a canvas whose *rendered* size (rounded up to the model's step, so a coarse step cannot
        inflate it) has more than ``max_canvas_pixels`` pixels, before anything is drawn."""
        if gen.canvas is None:
            return
        (h, w), (rh, rw) = gen.canvas, gen.G.synthesis.canvas_size(gen.canvas)
        if rh * rw > self.max_canvas_pixels:
            rendered = f" (rendered at {rw}x{rh})" if (rh, rw) != (h, w) else ""
            raise UserInputError(f"canvas {w}x{h}{rendered} is {rh * rw / 1e6:.3g} megapixels; this server renders "
                                 f"at most {self.max_canvas_pixels / 1e6:g} (stylegan serve --max-canvas-mp)")

    def latents(self, m: LoadedModel, req: RenderRequest) -> tuple[np.ndarray, str, dict, int, bool]:
        """(ws [1, num_ws, w_dim], file stem, npz extras, noise seed, plain) for a request; ``plain`` means
        exactly one seed's latent, the case ``stylegan generate --seeds`` makes."""
        G = m.G
        gen = self.generation(G, req)
        if isinstance(req.latent, UploadLatent):
            ws, name, noise_seed = self._uploaded(G, req.latent)
            extra, plain = {}, False
        else:
            ws, name, noise_seed, extra, plain = self._seed_plane(gen, req)
        if req.mix is not None and req.mix.layers:
            ws = self._mixed(gen, ws, req.mix)
            name += f"-mix{req.mix.seed}"
            plain = False
        edited = [e for e in req.edits if e.strength != 0]
        for e in edited:
            ws = ws + np.float32(e.strength) * self._edit_offset(G, e)[None]
        if edited:
            name += "-edit"
            plain = False
        if not gen.identity_transform:
            name += "-tr"
        if not plain and "z" in extra:
            extra.pop("z"), extra.pop("psi")
        extra["seeds"] = np.asarray([noise_seed], np.int64)
        extra["labels"] = np.asarray([name])
        return ws.astype(np.float32), name, extra, noise_seed, plain

    def _uploaded(self, G, lat: UploadLatent) -> tuple[np.ndarray, str, int]:
        up = self.store.get(lat.id, UploadedLatents, "latents file")
        if up.ws.shape[1:] != (G.num_ws, G.w_dim):
            raise UserInputError(f"the uploaded latents are [{up.ws.shape[1]}, {up.ws.shape[2]}]; this model "
                                 f"needs [{G.num_ws}, {G.w_dim}]")
        if lat.index >= len(up.ws):
            raise UserInputError(f"the uploaded file holds {len(up.ws)} latents (0-{len(up.ws) - 1})")
        seed = up.seeds[lat.index]
        return up.ws[lat.index:lat.index + 1].copy(), up.labels[lat.index], seed if seed is not None else lat.index

    @staticmethod
    def _seed_plane(gen: GenerationRequest, req: RenderRequest):
        """A point of the seed plane: one seed's ws, or the bilinear blend of the four around (dx, dy)."""
        lat, G = req.latent, gen.G
        corners = [(lat.seed, 1.0)]
        if lat.dx or lat.dy:
            seeds = [(lat.seed + k) % (MAX_SEED + 1) for k in (0, 1, SEED_ROW, SEED_ROW + 1)]  # wraps around
            weights = [(1 - lat.dx) * (1 - lat.dy), lat.dx * (1 - lat.dy), (1 - lat.dx) * lat.dy, lat.dx * lat.dy]
            corners = [(s, wt) for s, wt in zip(seeds, weights) if wt > 0]
        ws = sum(wt * gen.seed_latents([s]).ws for s, wt in corners).astype(np.float32)
        name = f"seed{lat.seed:04d}" + (f"-x{lat.dx:.2f}-y{lat.dy:.2f}" if len(corners) > 1 else "")
        plain = len(corners) == 1
        extra: dict = {}
        if plain:
            extra.update(z=z_from_seed(lat.seed, G.z_dim)[None].astype(np.float32), psi=req.psi)
        if req.class_idx is not None:
            extra["c"] = saved_label(G.c_dim, req.class_idx)                      # as generate --save-ws
        return ws, name, lat.seed, extra, plain

    @staticmethod
    def _mixed(gen: GenerationRequest, ws: np.ndarray, mix) -> np.ndarray:
        G = gen.G
        bad = [i for i in mix.layers if i >= G.num_ws]
        if bad:
            raise UserInputError(f"layer {bad[0]} is out of range: this model has {G.num_ws} ws (0-{G.num_ws - 1})")
        return mix_ws(ws, gen.seed_latents([mix.seed]).ws, sorted(set(mix.layers)))

    def _edit_offset(self, G, e) -> np.ndarray:
        d = self.store.get(e.directions, Directions, "direction set")
        if e.index >= len(d):
            raise UserInputError(f"direction {e.index} is out of range: the set holds {len(d)} (0-{len(d) - 1})")
        if d.vectors.shape[-1] != G.w_dim or (d.vectors.ndim == 3 and d.vectors.shape[1] != G.num_ws):
            raise UserInputError("these directions were made for a model of another size; load them again")
        if d.layers and max(d.layers) >= G.num_ws:
            raise UserInputError(f"these directions edit layer {max(d.layers)}; this model has 0-{G.num_ws - 1}")
        return direction_offsets(d.vectors[e.index], G.num_ws, G.w_dim, d.layers).numpy()

    def render(self, req: RenderRequest, m: LoadedModel | None = None) -> Rendered:
        """The image for ``req``, drawn by the same generation request ``stylegan generate`` uses (random
        noise is seeded by the image's seed, as there)."""
        start = time.perf_counter()
        m = m or self.model(req.model)
        with m.lock:
            ws, name, extra, noise_seed, _ = self.latents(m, req)
            gen = self.generation(m.G, req)
            image = gen.images(ws, noise_seeds=[noise_seed])[0]
        if gen.canvas is not None:
            name += f"-{gen.canvas[1]}x{gen.canvas[0]}"
        return Rendered(image=image, ws=np.asarray(ws, np.float32), name=name, extra=extra,
                        seconds=time.perf_counter() - start, canvas_note=gen.canvas_note)
