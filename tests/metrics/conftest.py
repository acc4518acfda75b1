"""Fixtures of the metrics tests: tiny TorchScript detectors, a folder of real images, a private cache."""

from __future__ import annotations

import pytest
from support.detectors import save_detector, write_images


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Downloads and cached statistics go to a fresh folder for every test."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("STYLEGAN_CACHE", str(cache))
    return cache


@pytest.fixture(scope="session")
def inception_file(tmp_path_factory):
    return save_detector("inception", tmp_path_factory.mktemp("detectors") / "inception-tiny.pt")


@pytest.fixture(scope="session")
def vgg_file(tmp_path_factory):
    return save_detector("vgg16", tmp_path_factory.mktemp("detectors") / "vgg16-tiny.pt")


@pytest.fixture(scope="session")
def real_folder(tmp_path_factory):
    """40 smooth 32x32 colour images in a folder (a dataset without labels)."""
    return write_images(tmp_path_factory.mktemp("data") / "smooth", 40, seed=0)
