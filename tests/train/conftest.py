"""Fixtures of the training tests."""

from __future__ import annotations

import pytest
from support.training import make_blobs_dataset


@pytest.fixture(scope="session")
def blobs_dataset(tmp_path_factory):
    """64 16x16 RGB images of coloured blobs, converted by the real dataset tool (a zip)."""
    return make_blobs_dataset(tmp_path_factory.mktemp("blobs"))
