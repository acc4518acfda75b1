"""Fixtures of the browser tests."""

import pytest
from support.web import CHROMIUM_ARGS, chromium_path


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
