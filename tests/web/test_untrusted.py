"""The explorer against hostile input: a hostile or crashing file in --model-dir is a 400 and the server keeps
serving; loads of new models never hold up renders of loaded ones; every bad upload is a 400 with a message."""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from fuzz import crafted
from stylegan.web.app import create_app
from support.web import serve_in_thread

HOSTILE = {
    "deep.pkl": crafted.deep_tuple_key,
    "dtype.pkl": lambda: crafted.dtype_rebuilt_after_use("f4"),
    "zero-stride.pkl": crafted.zero_stride_views,
    "huge.safetensors": crafted.native_huge_architecture,
    "deep.pt": crafted.rosinality_deep_nesting,
    "claims.pkl": crafted.official_claims_huge_dims,
}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, sg2_model, sg3_model):
    root = tmp_path_factory.mktemp("untrusted")
    shutil.copy(sg2_model, root / "good.safetensors")
    shutil.copy(sg3_model, root / "other.safetensors")
    shutil.copy(sg3_model, root / "third.safetensors")
    shutil.copy(sg2_model, root / "fourth.safetensors")
    for name, make in HOSTILE.items():
        (root / name).write_bytes(make())
    return root


@pytest.fixture(scope="module")
def server(model_dir, sg2_model):
    app = create_app(sg2_model, model_dir, device="cpu")
    with serve_in_thread(app) as base:
        yield base, app


def _children() -> set[int]:
    """Our living isolation child processes (they open the model folder's files)."""
    out = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            state, ppid = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:2]
            cmd = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(ppid) == os.getpid() and state != "Z" and b"stylegan.checkpoints.isolation" in cmd:
            out.add(int(entry.name))
    return out


def _without_idle_children() -> None:
    """SIGKILL every child now alive: the pooled workers start fresh children for the next loads."""
    for pid in _children():
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while _children() and time.monotonic() < deadline:
        time.sleep(0.01)


def _wait_for(count: int) -> set[int]:
    deadline = time.monotonic() + 120
    while len(found := _children()) < count and time.monotonic() < deadline:
        time.sleep(0.005)
    return found


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hostile_model_file_is_a_400_and_the_server_keeps_serving(server, name):
    base, _ = server
    with httpx.Client(base_url=base, timeout=300) as client:
        r = client.get("/api/model", params={"name": name})
        assert r.status_code == 400, r.text
        detail = r.json()["detail"]
        assert name in detail and "\n" not in detail
        r = client.post("/api/render", json={"model": "good.safetensors", "latent": {"seed": 1}})
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"


def test_a_load_whose_child_crashes_is_a_400_and_the_next_load_works(server):
    base, _ = server
    done = {}

    def ask():
        with httpx.Client(base_url=base, timeout=300) as client:
            done["r"] = client.get("/api/model", params={"name": "other.safetensors"})

    _without_idle_children()
    thread = threading.Thread(target=ask)
    thread.start()
    (pid,) = _wait_for(1)                              # the fresh child that is to open the file ...
    os.kill(pid, signal.SIGSEGV)                       # ... crashes, as if the file had crashed its reader
    thread.join(300)
    assert done["r"].status_code == 400, done["r"].text
    assert "could not be loaded safely" in done["r"].json()["detail"]
    with httpx.Client(base_url=base, timeout=300) as client:
        assert client.get("/api/model", params={"name": "other.safetensors"}).json()["generation"] == "stylegan3"


def test_renders_of_a_loaded_model_never_wait_for_loads(server):
    base, _ = server
    with httpx.Client(base_url=base, timeout=300) as client:
        assert client.post("/api/render", json={"latent": {"seed": 0}}).status_code == 200   # default: loaded
    results = {}

    def load(name):
        with httpx.Client(base_url=base, timeout=300) as client:
            results[name] = client.get("/api/model", params={"name": name})

    _without_idle_children()
    loads = [threading.Thread(target=load, args=(n,)) for n in ("third.safetensors", "fourth.safetensors")]
    for t in loads:
        t.start()
    stopped = _wait_for(2)
    for pid in stopped:                                           # both loads held inside their children
        os.kill(pid, signal.SIGSTOP)
    try:
        assert len(stopped) == 2 and not results                  # both load slots are busy ...
        with httpx.Client(base_url=base, timeout=60) as client:   # ... and a render of the loaded model is drawn
            r = client.post("/api/render", json={"latent": {"seed": 3}})
            assert r.status_code == 200 and not results
            assert client.get("/api/model").json()["generation"] == "stylegan2" and not results
    finally:
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)
    for t in loads:
        t.join(300)
    assert all(r.status_code == 200 for r in results.values()), {k: v.text for k, v in results.items()}


UPLOADS = {
    "npy header of 100 KB": (crafted.npz_huge_header, "is not a valid .npy array"),
    "false CRC": (crafted.npz_false_crc, "Bad CRC-32"),
    "false sizes": (crafted.npz_false_size, "cannot read"),
    "shape claiming 37 GB": (crafted.npz_shape_lies, "its header says (1048576, 18, 512)"),
    "object array": (crafted.npz_object_array, "holds object data; only numbers and strings"),
    "deflate bomb (true sizes)": (lambda: crafted.npz({"ws": np.zeros([600, 8, 4096], np.float32)}, compress=True),
                                  "unpacks to more than"),
    "random bytes": (lambda: b"PK\x03\x04" + os.urandom(3000), "cannot read"),
    "a directory entry": (lambda: _zip_with({"ws.npy/": b""}), "not a numpy .npz"),
}


def _zip_with(members: dict) -> bytes:
    import io
    import zipfile
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


@pytest.mark.parametrize("label", sorted(UPLOADS))
@pytest.mark.parametrize("kind", ["latents", "directions"])
def test_every_bad_upload_is_a_400_with_a_message(server, label, kind):
    base, _ = server
    make, message = UPLOADS[label]
    with httpx.Client(base_url=base, timeout=120) as client:
        r = client.post(f"/api/upload/{kind}", content=make(), params={"filename": "bad.npz"},
                        headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 400, r.text
    assert message in r.json()["detail"] and "\n" not in r.json()["detail"]
