"""Downloads: cached, resumed after a dropped connection, verified by SHA-256; hf:// references from a
local mirror and from huggingface_hub's offline cache. Every server here is a real HTTP server on
127.0.0.1 started by the test."""

from __future__ import annotations

import hashlib
import http.server
import threading

import pytest

from stylegan.checkpoints import load_generator
from stylegan.checkpoints.download import cached_path_for, download, resolve
from stylegan.errors import CheckpointError


class _Server:
    """Serves one payload at /model.pkl; honours Range (or not); can cut the first response short."""

    def __init__(self, payload: bytes, ranges: bool = True, cut_first_at: int | None = None):
        self.payload, self.ranges, self.cut = payload, ranges, cut_first_at
        self.requests: list[str | None] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                rng = self.headers.get("Range")
                server.requests.append(rng)
                start = int(rng.split("=")[1].split("-")[0]) if (rng and server.ranges) else 0
                body = server.payload[start:]
                self.send_response(206 if start else 200)
                self.send_header("Content-Length", str(len(body)))
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(server.payload) - 1}/{len(server.payload)}")
                self.end_headers()
                if server.cut is not None:
                    body, server.cut = body[:server.cut], None
                    self.wfile.write(body)
                    self.wfile.flush()
                    self.connection.close()
                    return
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/model.pkl"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve(private_cache):
    servers = []

    def start(payload, **kwargs):
        servers.append(_Server(payload, **kwargs))
        return servers[-1]
    yield start
    for s in servers:
        s.close()


PAYLOAD = bytes(range(256)) * 4096   # 1 MiB


def test_a_dropped_download_resumes_where_it_stopped(serve):
    srv = serve(PAYLOAD, cut_first_at=300_000)
    with pytest.raises(CheckpointError, match="300000 bytes kept, the next run resumes"):
        download(srv.url)
    path = download(srv.url)
    assert path.read_bytes() == PAYLOAD
    assert srv.requests == [None, "bytes=300000-"]
    assert download(srv.url) == path and len(srv.requests) == 2      # cached: no third request


def test_a_server_without_ranges_gets_a_fresh_download(serve):
    srv = serve(PAYLOAD, ranges=False, cut_first_at=1000)
    with pytest.raises(CheckpointError):
        download(srv.url)
    assert download(srv.url).read_bytes() == PAYLOAD


def test_a_pinned_checksum_is_verified(serve):
    srv = serve(PAYLOAD)
    good = hashlib.sha256(PAYLOAD).hexdigest()
    with pytest.raises(CheckpointError, match="expected 0{64}.*nothing was used"):
        download(srv.url + "#sha256=" + "0" * 64)
    assert not cached_path_for(srv.url).exists()
    assert download(srv.url + "#sha256=" + good).read_bytes() == PAYLOAD
    with pytest.raises(CheckpointError, match="64-digit hex"):
        download(srv.url + "#sha256=abc")


def test_a_cached_file_that_changes_is_refused(serve):
    srv = serve(PAYLOAD)
    path = download(srv.url)
    path.write_bytes(PAYLOAD[:-1] + b"\x00")
    with pytest.raises(CheckpointError, match="changed after it was downloaded"):
        download(srv.url)


def test_a_model_loads_from_a_url(serve, sg2_model):
    srv = serve(sg2_model.read_bytes())
    G = load_generator(srv.url)
    assert G.img_resolution == 32


def test_hf_reference_from_a_local_mirror(tmp_path, monkeypatch, sg2_model):
    folder = tmp_path / "mirror" / "someone" / "models" / "sub"
    folder.mkdir(parents=True)
    (folder / "sg2.safetensors").write_bytes(sg2_model.read_bytes())
    monkeypatch.setenv("STYLEGAN_HF_MIRROR", str(tmp_path / "mirror"))
    assert load_generator("hf://someone/models/sub/sg2.safetensors").img_resolution == 32
    with pytest.raises(CheckpointError, match="not in the mirror folder"):
        resolve("hf://someone/models/missing.pkl")
    for bad in ("hf://someone/models/../../../etc/passwd", "hf://someone/file.pkl"):
        with pytest.raises(CheckpointError, match="not a Hugging Face reference"):
            resolve(bad)


def test_hf_reference_offline_from_the_hub_cache(tmp_path, monkeypatch, sg2_model):
    """huggingface_hub's own cache layout, populated as a download would leave it; no network."""
    pytest.importorskip("huggingface_hub")
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--someone--models"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    (repo / "snapshots" / commit).mkdir(parents=True)
    (repo / "snapshots" / commit / "sg2.safetensors").write_bytes(sg2_model.read_bytes())
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import importlib

    import huggingface_hub.constants
    importlib.reload(huggingface_hub.constants)
    try:
        assert load_generator("hf://someone/models/sg2.safetensors").img_resolution == 32
        with pytest.raises(CheckpointError, match="could not get model hf://someone/models/missing.pkl"):
            resolve("hf://someone/models/missing.pkl")
    finally:
        monkeypatch.undo()
        importlib.reload(huggingface_hub.constants)
