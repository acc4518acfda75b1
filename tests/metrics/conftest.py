"""Fixtures of the metrics tests: a folder of real images, a private cache for every test."""

from __future__ import annotations

import pytest
from support.detectors import write_images


@pytest.fixture(autouse=True)
def _private_cache(private_cache):
    return private_cache


@pytest.fixture(scope="session")
def real_folder(tmp_path_factory):
    """40 smooth 32x32 colour images in a folder (a dataset without labels)."""
    return write_images(tmp_path_factory.mktemp("data") / "smooth", 40, seed=0)
