"""Resolve a model argument to a local file: a path, a ``file://`` URL, an ``http(s)://`` URL
(downloaded once into a cache), or the name of a published model."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from ..errors import CheckpointError
from ..progress import progress

NGC_SG3 = "https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan3/versions/1/files/"
NGC_SG2 = "https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan2/versions/1/files/"
ADA = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/"

#: Published models by short name (file names as NVIDIA publishes them).
PUBLISHED: dict[str, str] = {}
for _v in ("t", "r"):
    for _name in ("ffhq-1024x1024", "ffhqu-1024x1024", "ffhqu-256x256", "metfaces-1024x1024",
                  "metfacesu-1024x1024", "afhqv2-512x512"):
        PUBLISHED[f"stylegan3-{_v}-{_name}"] = f"{NGC_SG3}stylegan3-{_v}-{_name}.pkl"
for _name in ("ffhq-1024x1024", "ffhq-512x512", "ffhq-256x256", "ffhqu-1024x1024", "ffhqu-256x256",
              "metfaces-1024x1024", "metfacesu-1024x1024", "afhqv2-512x512", "afhqcat-512x512",
              "afhqdog-512x512", "afhqwild-512x512", "brecahad-512x512", "cifar10-32x32",
              "celebahq-256x256", "lsundog-256x256"):
    PUBLISHED[f"stylegan2-{_name}"] = f"{NGC_SG2}stylegan2-{_name}.pkl"
for _name in ("ffhq", "metfaces", "afhqcat", "afhqdog", "afhqwild", "brecahad", "cifar10"):
    PUBLISHED[f"ada-{_name}"] = f"{ADA}{_name}.pkl"


def cache_dir() -> Path:
    root = os.environ.get("STYLEGAN_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "stylegan")
    return Path(root)


def cached_path_for(url: str) -> Path:
    name = os.path.basename(urllib.parse.urlparse(url).path) or "download"
    digest = hashlib.sha256(url.encode()).hexdigest()[:16]
    return cache_dir() / "downloads" / f"{digest}_{name}"


def resolve(source: str | os.PathLike, *, what: str = "model") -> Path:
    """Return a local path for ``source``; downloads URLs once into :func:`cache_dir`."""
    s = str(source)
    if s in PUBLISHED:
        s = PUBLISHED[s]
    parsed = urllib.parse.urlparse(s)
    if parsed.scheme == "file":
        s = urllib.request.url2pathname(parsed.path)
    elif parsed.scheme in ("http", "https"):
        return download(s, what=what)
    path = Path(s).expanduser()
    if not path.exists():
        hint = " (a published model name, a path, or a URL)" if what == "model" else ""
        raise CheckpointError(f"{what} not found: {s}{hint}")
    return path


def download(url: str, *, what: str = "file", timeout: float = 60.0) -> Path:
    dest = cached_path_for(url)
    if dest.exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".download.", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            total = int(resp.headers.get("Content-Length") or 0) or None
            with progress(total=total, desc=f"downloading {dest.name.split('_', 1)[-1]}", unit="B",
                          unit_scale=True) as bar:
                while chunk := resp.read(1 << 20):
                    out.write(chunk)
                    bar.update(len(chunk))
        shutil.move(tmp, dest)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise CheckpointError(f"could not download {what} from {url}: {exc}") from exc
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dest
