"""Running the web explorer for tests: uvicorn in a thread (API tests) or ``stylegan serve`` in a fresh
process (browser tests), each on a free port of 127.0.0.1."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import torch

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(base_url: str, timeout: float = 60.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the server exited with code {proc.returncode}:\n{proc.stderr.read()}")
        try:
            if httpx.get(f"{base_url}/api/info", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"no server answered at {base_url} within {timeout} s")


@contextmanager
def serve_in_thread(app):
    """``app`` served by uvicorn in a daemon thread; yields the base URL (http://localhost:PORT)."""
    import uvicorn
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://localhost:{port}"
    try:
        wait_until_up(base, timeout=30)
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def serve_process(*args, cwd=None):
    """``stylegan serve ARGS --port P`` as a user starts it; yields (base URL, process)."""
    port = free_port()
    # Same thread count as this process, so the server's convolutions round exactly like in-process ones.
    env = dict(os.environ, STYLEGAN_QUIET="1", OMP_NUM_THREADS=str(torch.get_num_threads()))
    proc = subprocess.Popen([sys.executable, "-m", "stylegan.cli.main", "serve", *map(str, args), "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, cwd=cwd)
    base = f"http://localhost:{port}"
    try:
        wait_until_up(base, timeout=90, proc=proc)
        yield base, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def chromium_path() -> str | None:
    """Debian's chromium (CI installs it), or another Chrome binary on PATH; None if there is none."""
    env = os.environ.get("STYLEGAN_CHROMIUM")
    if env and Path(env).exists():
        return env
    for p in CHROMIUM_CANDIDATES:
        if Path(p).exists():
            return p
    return shutil.which("chromium") or shutil.which("chromium-browser")


def lookup(obj, dotted):
    """``lookup(req, 'edits.0.strength')``."""
    for key in dotted.split("."):
        if isinstance(obj, list) and key.isdigit():
            obj = obj[int(key)] if int(key) < len(obj) else None
        else:
            obj = obj.get(key) if isinstance(obj, dict) else None
    return obj


def wait_image(page, timeout=30.0, **expect) -> dict:
    """Wait until the page shows the image of a request with ``expect`` (dotted keys: ``latent.seed``) and
    nothing newer is pending; returns that request. Polls DOM attributes only (the page's CSP forbids eval)."""
    img = page.locator("#image")
    deadline = time.monotonic() + timeout
    while True:
        error = img.get_attribute("data-error")
        assert error is None, f"the page shows an error: {error}"
        raw = img.get_attribute("data-request")
        if img.get_attribute("data-state") == "ready" and raw:
            req = json.loads(raw)
            if all(lookup(req, k) == v for k, v in expect.items()):
                return req
        if time.monotonic() > deadline:
            raise AssertionError(f"the page did not show {expect} within {timeout} s; it shows {raw}")
        time.sleep(0.05)


def download(page, button, tmp_path) -> Path:
    with page.expect_download() as info:
        page.click(button)
    d = info.value
    path = tmp_path / d.suggested_filename
    d.save_as(path)
    return path
