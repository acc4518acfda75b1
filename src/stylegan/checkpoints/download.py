"""Resolve a model argument to a local file: a path, a ``file://`` URL, an ``http(s)://`` URL (downloaded
once into a cache, resumed after an interruption, checked against its SHA-256), a Hugging Face Hub
reference ``hf://owner/repo/path/file.pkl[@revision]``, or the name of a published model.

Integrity. A download is verified against a SHA-256 when one is known: the pin of a published name
(:data:`PUBLISHED_SHA256`), or one the user gives in the URL's fragment (``...model.pkl#sha256=<hex>``,
as pip accepts). Without a pin, the digest of the first complete download is recorded beside the cached
file and every later use checks the file against it (a cached model that changes on disk is refused).
A broken download keeps its bytes in ``<cache>/downloads/<file>.part`` and the next attempt asks the
server for the rest (HTTP ``Range``); a server that ignores ranges gets a fresh download.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..errors import CheckpointError
from ..files import atomic_write, sha256_file
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

#: SHA-256 pins of published files (URL -> hex digest). NVIDIA publishes no checksums, and this project's
#: machines cannot reach their servers, so a pin is added only from a download the project measured
#: itself; until then a published file is verified trust-on-first-use (see the module docstring).
PUBLISHED_SHA256: dict[str, str] = {}

HF_SCHEME = "hf://"
#: A folder laid out as ``<owner>/<repo>/<path>``: ``hf://`` references are read from it (no network).
HF_MIRROR_ENV = "STYLEGAN_HF_MIRROR"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20


def cache_dir() -> Path:
    root = os.environ.get("STYLEGAN_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "stylegan")
    return Path(root)


def cached_path_for(url: str) -> Path:
    """``<cache>/downloads/<hash of the URL>_<file name>`` (the fragment is not part of the name)."""
    url = urllib.parse.urldefrag(url).url
    name = os.path.basename(urllib.parse.urlparse(url).path) or "download"
    digest = hashlib.sha256(url.encode()).hexdigest()[:16]
    return cache_dir() / "downloads" / f"{digest}_{name}"


def resolve(source: str | os.PathLike, *, what: str = "model") -> Path:
    """Return a local path for ``source``; downloads URLs once into :func:`cache_dir`."""
    s = str(source)
    if s in PUBLISHED:
        s = PUBLISHED[s]
    if s.startswith(HF_SCHEME):
        return hub_file(s, what=what)
    parsed = urllib.parse.urlparse(s)
    if parsed.scheme == "file":
        s = urllib.request.url2pathname(parsed.path)
    elif parsed.scheme in ("http", "https"):
        return download(s, what=what)
    path = Path(s).expanduser()
    if not path.exists():
        hint = " (a published model name, a path, a URL or hf://owner/repo/file)" if what == "model" else ""
        raise CheckpointError(f"{what} not found: {s}{hint}")
    return path


@dataclass(frozen=True)
class HubRef:
    repo_id: str
    filename: str
    revision: str | None = None


def parse_hub_ref(ref: str) -> HubRef:
    """``hf://owner/repo/dir/file.pkl@v1`` -> HubRef('owner/repo', 'dir/file.pkl', 'v1')."""
    body = ref[len(HF_SCHEME):] if ref.startswith(HF_SCHEME) else ref
    body, _, revision = body.partition("@")
    parts = [p for p in body.split("/") if p]
    if len(parts) < 3 or any(p in (".", "..") for p in parts):
        raise CheckpointError(f"{ref!r} is not a Hugging Face reference; use hf://OWNER/REPO/PATH/FILE[@REVISION]")
    return HubRef(f"{parts[0]}/{parts[1]}", "/".join(parts[2:]), revision or None)


def hub_file(ref: str, *, what: str = "model") -> Path:
    """A file of a Hugging Face Hub repository, from ``$STYLEGAN_HF_MIRROR`` if set, else through
    ``huggingface_hub`` (its cache; works offline once cached, e.g. with ``HF_HUB_OFFLINE=1``)."""
    hub = parse_hub_ref(ref)
    mirror = os.environ.get(HF_MIRROR_ENV)
    if mirror:
        root = Path(mirror).expanduser().resolve()
        path = (root / hub.repo_id / hub.filename).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            raise CheckpointError(f"{what} {ref} is not in the mirror folder {root} "
                                  f"(expected {root / hub.repo_id / hub.filename})")
        return path
    try:
        import huggingface_hub
    except ImportError:
        raise CheckpointError(f"{ref}: hf:// references need the huggingface_hub package "
                              f"(pip install 'stylegan[hub]'), or set {HF_MIRROR_ENV} to a local mirror") from None
    try:
        return Path(huggingface_hub.hf_hub_download(hub.repo_id, hub.filename, revision=hub.revision))
    except Exception as exc:  # noqa: BLE001 - the hub raises its own error types for every failure
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"could not get {what} {ref} from the Hugging Face Hub: {first}") from None


def expected_sha256(url: str) -> str | None:
    """The pin for ``url``: a ``#sha256=<hex>`` fragment, else :data:`PUBLISHED_SHA256`, else None."""
    base, fragment = urllib.parse.urldefrag(url)
    pinned = urllib.parse.parse_qs(fragment).get("sha256", [None])[-1] if fragment else None
    if pinned is not None and not _SHA256.match(pinned.lower()):
        raise CheckpointError(f"the #sha256= in {url} is not a 64-digit hex SHA-256")
    return (pinned or PUBLISHED_SHA256.get(base) or "").lower() or None


def download(url: str, *, what: str = "file", timeout: float = 60.0) -> Path:
    """The cached copy of ``url``, downloading (or resuming) it first if needed; always verified."""
    dest = cached_path_for(url)
    pinned = expected_sha256(url)
    if dest.exists():
        _verify_cached(dest, pinned, what)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    try:
        _fetch(urllib.parse.urldefrag(url).url, part, timeout, what)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        kept = f"; {part.stat().st_size} bytes kept, the next run resumes" if part.exists() else ""
        raise CheckpointError(f"could not download {what} from {url}: {exc}{kept}") from exc
    digest = sha256_file(part)
    if pinned is not None and digest != pinned:
        part.unlink(missing_ok=True)
        raise CheckpointError(f"{what} from {url} has SHA-256 {digest}, expected {pinned}: the download is "
                              f"corrupt or not the published file (removed; nothing was used)")
    os.replace(part, dest)
    _record_digest(dest, digest)
    return dest


def _fetch(url: str, part: Path, timeout: float, what: str) -> None:
    """Append the rest of ``url`` to ``part`` (asking for a byte range when ``part`` has some)."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        resp = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:            # the range starts at the end: nothing is missing
            return
        raise
    with resp:
        resumed = have and resp.status == 206
        if have and not resumed:
            have = 0                            # the server ignored the range: start again
        length = int(resp.headers.get("Content-Length") or 0)
        name = part.name.split("_", 1)[-1].removesuffix(".part")
        with open(part, "ab" if resumed else "wb") as out, progress(
                total=(have + length) or None, initial=have, desc=f"downloading {name}", unit="B",
                unit_scale=True) as bar:
            while chunk := resp.read(_CHUNK):
                out.write(chunk)
                bar.update(len(chunk))
            got = out.tell()
    if length and got != have + length:
        raise OSError(f"the connection closed after {got} of {have + length} bytes")


def _sidecar(dest: Path) -> Path:
    return dest.with_name(dest.name + ".sha256.json")


def _record_digest(dest: Path, digest: str) -> None:
    st = dest.stat()
    atomic_write(_sidecar(dest), json.dumps({"sha256": digest, "size": st.st_size, "mtime_ns": st.st_mtime_ns}))


def _verify_cached(dest: Path, pinned: str | None, what: str) -> None:
    """Check a cached download against its pin or the digest recorded when it was downloaded; the file
    is re-hashed only when its size or modification time changed (or a pin asks for it once)."""
    st = dest.stat()
    try:
        record = json.loads(_sidecar(dest).read_text())
    except (OSError, ValueError):
        record = None
    unchanged = isinstance(record, dict) and record.get("size") == st.st_size and record.get("mtime_ns") == st.st_mtime_ns
    if unchanged and (pinned is None or record.get("sha256") == pinned):
        return
    digest = sha256_file(dest)
    expected = pinned or (record.get("sha256") if isinstance(record, dict) else None)
    if expected is not None and digest != expected:
        raise CheckpointError(f"the cached {what} {dest} has SHA-256 {digest}, expected {expected}: it changed "
                              f"after it was downloaded; delete it to download it again")
    _record_digest(dest, digest)
