"""Every perception test gets a private download cache."""

import pytest


@pytest.fixture(autouse=True)
def _private_cache(private_cache):
    return private_cache
