"""Shared fixtures: real model files written through the real writers, and the reference data."""

from __future__ import annotations

import os

import pytest
import torch

from support.detectors import save_detector
from support.web import CHROMIUM_ARGS, chromium_path
from support.models import REFERENCE_DIR, reference_checkpoint, save_tiny

# Tiny test models are dominated by threading overhead; one thread is faster and avoids oversubscription.
torch.set_num_threads(1)
os.environ.setdefault("STYLEGAN_QUIET", "1")
os.environ.setdefault("STYLEGAN_THREADS", "1")     # what the CLI sets when a test runs a command


def pytest_collection_modifyitems(config, items):
    """Modules with a slow test first, each module's own order kept: with ``-n 2`` (the README's command;
    pyproject's addopts add ``--dist loadfile --no-loadscope-reorder``) workers take whole modules in this
    order, so the longest start at once instead of leaving one worker busy at the end."""
    slow_modules = {item.module.__name__ for item in items if item.get_closest_marker("slow")}
    first_seen = {}
    for item in items:
        first_seen.setdefault(item.module.__name__, len(first_seen))
    items.sort(key=lambda item: (item.module.__name__ not in slow_modules, first_seen[item.module.__name__]))


@pytest.fixture(scope="session")
def reference_dir():
    if not REFERENCE_DIR.is_dir():
        pytest.skip(f"official reference outputs not found at {REFERENCE_DIR} (a checkout without tests/reference?)")
    return REFERENCE_DIR


@pytest.fixture(scope="session")
def sg2_model(tmp_path_factory):
    """A 32x32 StyleGAN2 model file (random weights), native format."""
    return save_tiny(tmp_path_factory.mktemp("models") / "sg2.safetensors", "stylegan2")


@pytest.fixture(scope="session")
def sg3_model(tmp_path_factory):
    """A 32x32 StyleGAN3-T model file (random weights), native format."""
    return save_tiny(tmp_path_factory.mktemp("models") / "sg3t.safetensors", "stylegan3")


@pytest.fixture(scope="session")
def cond_model(tmp_path_factory):
    """A 32x32 conditional StyleGAN2 model file with 4 classes."""
    return save_tiny(tmp_path_factory.mktemp("models") / "cond.safetensors", "stylegan2", c_dim=4)


@pytest.fixture(scope="session")
def reference_sg2_model(reference_dir, tmp_path_factory):
    """The official StyleGAN2 reference network (64x64) in our native format."""
    from stylegan.checkpoints import save_network
    return save_network(reference_checkpoint("sg2"), tmp_path_factory.mktemp("models") / "ref-sg2.safetensors")


@pytest.fixture
def private_cache(tmp_path, monkeypatch):
    """Downloads and cached statistics go to a fresh folder for the test."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("STYLEGAN_CACHE", str(cache))
    return cache


@pytest.fixture(scope="session")
def inception_file(tmp_path_factory):
    """A tiny TorchScript network with the call signature of NVIDIA's Inception detector."""
    return save_detector("inception", tmp_path_factory.mktemp("detectors") / "inception-tiny.pt")


@pytest.fixture(scope="session")
def vgg_file(tmp_path_factory):
    """A tiny TorchScript network with the call signature of NVIDIA's VGG16/LPIPS detector."""
    return save_detector("vgg16", tmp_path_factory.mktemp("detectors") / "vgg16-tiny.pt")


@pytest.fixture(scope="module")
def chromium():
    """The Chromium binary the browser tests drive (skips without it or without Playwright)."""
    path = chromium_path()
    if path is None:
        pytest.skip("no Chromium binary (apt-get install chromium, or set STYLEGAN_CHROMIUM=/path/to/chrome)")
    pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed (pip install playwright)")
    return path


@pytest.fixture(scope="module")
def browser(chromium):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
