"""The models a running explorer may show: the one given with ``--network`` plus the model files inside
``--model-dir``. The page names models only by their path relative to that folder; every name is checked
against a fresh listing and resolved (symlinks and ``..`` included) before it is opened, so a client can
never make the server read a file outside the folder.

Files of ``--model-dir`` are untrusted: each is first opened in a child process under a memory limit
(:func:`stylegan.checkpoints.isolation.convert_untrusted`), which writes its generator in our native
format; the server then loads only that file. A file that crashes or exhausts the child is reported
as a one-line error and the server keeps running. Loads of one model are serialised (one per name);
a model already loaded is handed out without waiting for any load.
"""

from __future__ import annotations

import os
import queue
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..errors import CheckpointError, UserInputError
from ..networks import Generator

#: File endings of loadable models (NVIDIA pickles, our safetensors, rosinality / torch.save files).
MODEL_SUFFIXES = (".pkl", ".safetensors", ".pt", ".pth")
#: The name the page uses for the ``--network`` model.
DEFAULT_NAME = "default"
MAX_LISTED = 500
MAX_DEPTH = 3
MAX_NAME_LENGTH = 512


class ModelAccessError(UserInputError):
    """A client asked for a model that is not in the allowed folder."""


@dataclass
class LoadedModel:
    """A generator ready to render, with the facts the page needs about it."""
    name: str
    G: Generator
    label: str
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)  # renders change G's state (SG3 transform)
    cache: dict = field(default_factory=dict, repr=False)                     # per-model results (SeFa directions)

    def info(self) -> dict:
        from ..latent.mixing import layer_groups, layer_resolutions
        from ..latent.sampling import PSI_RANGE, has_transform
        from ..networks.options import CONST_EXTENSIONS
        G = self.G
        return {
            "name": self.name, "label": self.label, "generation": G.generation,
            "img_resolution": G.img_resolution, "img_shape": list(G.img_shape), "img_channels": G.img_channels,
            "z_dim": G.z_dim, "w_dim": G.w_dim, "num_ws": G.num_ws, "c_dim": G.c_dim,
            "has_transform": has_transform(G), "layer_resolutions": layer_resolutions(G),
            "layer_groups": layer_groups(G), "psi_range": PSI_RANGE,
            "canvas": {"stride": G.synthesis.canvas_stride, "presets": canvas_presets(G),
                       "extensions": [] if has_transform(G) else list(CONST_EXTENSIONS)},
        }


def canvas_presets(G: Generator) -> list[dict]:
    """The explorer's canvas choices for ``G``: its own size, 16:9 and 9:16 at about twice its area (both
    sides even, exact 16:9: 1920x1080 for a 1024² model, 64x36 for the built-in 32² one) and 1920x1080;
    each as ``{"key", "label", "size": [W, H], "rendered": [W, H]}`` (``rendered``: after the model's step)."""
    h, w = G.img_shape
    k = 2 * max(1, round((2 * h * w / 144) ** 0.5 / 2))
    choices = [("model", f"model's own ({w}×{h})", (w, h)), ("wide", "16:9", (16 * k, 9 * k)),
               ("tall", "9:16", (9 * k, 16 * k)), ("hd", "1920×1080", (1920, 1080))]
    out, seen = [], set()
    for key, label, (cw, ch) in choices:
        if (cw, ch) in seen:
            continue
        seen.add((cw, ch))
        rh, rw = G.synthesis.canvas_size((ch, cw))
        out.append({"key": key, "label": label if key in ("model", "hd") else f"{label} ({cw}×{ch})",
                    "size": [cw, ch], "rendered": [rw, rh]})
    return out


class ModelLibrary:
    """Lists the allowed models, resolves client names safely and keeps the last few loaded.

    ``network``: the operator's ``--network`` (any path/URL/name ``load_generator`` takes, None for the
    built-in model when there is no ``model_dir``); ``model_dir``: the folder whose model files the page
    may switch among; ``max_loaded``: generators kept in memory at once (least recently used go first).
    """

    def __init__(self, network: str | os.PathLike | None = None, model_dir: str | os.PathLike | None = None,
                 device: torch.device | str = "cpu", half: torch.dtype | None = None, max_loaded: int = 2,
                 isolate: bool = True):
        self.root = None
        if model_dir is not None:
            root = Path(model_dir).expanduser()
            if not root.is_dir():
                raise UserInputError(f"--model-dir {model_dir}: not a folder")
            self.root = root.resolve()
        self.device = torch.device(device)
        self.half = half
        self.max_loaded = max(1, max_loaded)
        self._loaded: OrderedDict[str, LoadedModel] = OrderedDict()
        self._guard = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}
        self.isolate = isolate
        self._workers: queue.LifoQueue = queue.LifoQueue()
        self._closed = False
        if network is not None:
            self.default_source: str | os.PathLike | None = network
            self.default_label = Path(str(network)).name or str(network)
        elif self.root is not None:
            listed = self.list_models()
            if not listed:
                raise UserInputError(f"--model-dir {model_dir} holds no model files "
                                     f"({', '.join(MODEL_SUFFIXES)}, or folders with model.safetensors)")
            self.default_source = self.root / listed[0]
            self.default_label = listed[0]
        else:
            self.default_source, self.default_label = None, "built-in model"
        #: Files of the model folder are untrusted; the operator's --network (or the built-in model) is not.
        self.default_untrusted = network is None and self.root is not None

    def list_models(self) -> list[str]:
        """Model files (and native model folders) inside ``model_dir``, as sorted relative POSIX paths.

        Hidden entries are skipped, symlinked folders are not followed and anything that resolves
        outside the folder is left out."""
        if self.root is None:
            return []
        found: list[str] = []
        for dirpath, dirnames, filenames in os.walk(self.root, followlinks=False):
            here = Path(dirpath)
            depth = len(here.relative_to(self.root).parts)
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            keep = []
            for d in dirnames:
                sub = here / d
                if (sub / "model.safetensors").is_file() and self._inside(sub):
                    found.append(sub.relative_to(self.root).as_posix())
                elif depth + 1 < MAX_DEPTH and not sub.is_symlink():
                    keep.append(d)
            dirnames[:] = keep
            for f in sorted(filenames):
                p = here / f
                if not f.startswith(".") and f.lower().endswith(MODEL_SUFFIXES) and self._inside(p):
                    found.append(p.relative_to(self.root).as_posix())
            if len(found) >= MAX_LISTED:
                break
        return sorted(found)[:MAX_LISTED]

    def _inside(self, path: Path) -> bool:
        try:
            return path.resolve(strict=True).is_relative_to(self.root)
        except (OSError, RuntimeError):
            return False

    def resolve(self, name: str | None) -> str | os.PathLike | None:
        """The source to load for a client's model ``name`` (``None``/``'default'``: the ``--network`` model)."""
        if name in (None, "", DEFAULT_NAME):
            return self.default_source
        if self.root is None:
            raise ModelAccessError("this server shows only its --network model (start it with --model-dir "
                                   "to switch among models)")
        if not isinstance(name, str) or len(name) > MAX_NAME_LENGTH or "\0" in name:
            raise ModelAccessError("invalid model name")
        if name not in self.list_models():
            raise ModelAccessError(f"no model named {name!r} in the model folder")
        path = (self.root / name).resolve()
        if not path.is_relative_to(self.root):           # listed names never are; guards a swap since listing
            raise ModelAccessError(f"model {name!r} is outside the model folder")
        return path

    def models(self) -> list[dict]:
        """What the page's model picker lists."""
        return [{"name": DEFAULT_NAME, "label": self.default_label}] + [
            {"name": n, "label": n} for n in self.list_models()]

    def loaded(self, name: str | None) -> LoadedModel | None:
        """The model for ``name`` if it is in memory now (never waits for a load), else None."""
        key = DEFAULT_NAME if name in (None, "") else name
        with self._guard:
            model = self._loaded.get(key)               # only names that passed resolve() are ever stored
            if model is not None:
                self._loaded.move_to_end(key)
            return model

    def get(self, name: str | None) -> LoadedModel:
        """The loaded model for ``name``; loads it (once, even when asked concurrently) if needed. Blocking."""
        key = DEFAULT_NAME if name in (None, "") else name
        model = self.loaded(key)
        if model is not None:
            return model
        source = self.resolve(key)
        with self._guard:
            lock = self._loading.setdefault(key, threading.Lock())
        with lock:
            with self._guard:
                if key in self._loaded:
                    return self._loaded[key]
            model = self._load(key, source)
            with self._guard:
                self._loaded[key] = model
                while len(self._loaded) > self.max_loaded:
                    self._loaded.popitem(last=False)
                self._loading.pop(key, None)
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            return model

    def _load(self, key: str, source) -> LoadedModel:
        from ..checkpoints import load_generator
        try:
            if self.isolate and (key != DEFAULT_NAME or self.default_untrusted):
                with tempfile.TemporaryDirectory(prefix="stylegan-model-") as tmp:
                    G = load_generator(self._convert(source, tmp), device=self.device)
            else:
                G = load_generator(source, device=self.device)
        except MemoryError:
            raise CheckpointError(f"out of memory while loading {key}") from None
        G = G.eval().requires_grad_(False)
        G.set_half_dtype(self.half)
        label = self.default_label if key == DEFAULT_NAME else key
        return LoadedModel(name=key, G=G, label=label)

    def _convert(self, source, folder: str):
        """The untrusted file ``source`` opened in a child process (a pooled worker), as a native file."""
        from ..checkpoints.isolation import Worker, convert_untrusted
        try:
            worker = self._workers.get_nowait()
        except queue.Empty:
            worker = Worker()
        try:
            return convert_untrusted(source, folder, worker=worker)
        finally:
            if self._closed:
                worker.close()
            else:
                self._workers.put(worker)

    def close(self) -> None:
        """Stop the child processes that open untrusted files."""
        self._closed = True
        while True:
            try:
                self._workers.get_nowait().close()
            except queue.Empty:
                return
