"""The explorer's layout in headless Chromium: on a 1280x900 window (a common laptop browser) the Download
buttons are visible without scrolling, under an image that still fills most of the height; the direction
sliders' default range is the CLI's (``stylegan edit --strength -3:3:7``)."""

import time

import pytest
from support.web import serve_in_thread

from stylegan.cli.main import cli
from stylegan.web.app import create_app

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def page_at(sg2_model, browser):
    with serve_in_thread(create_app(sg2_model, None, device="cpu")) as base:
        def open_page(width: int, height: int):
            page = browser.new_context(viewport={"width": width, "height": height}).new_page()
            page.goto(base)
            deadline = time.monotonic() + 30
            while page.locator("#image").get_attribute("data-state") != "ready":
                assert time.monotonic() < deadline, "the page drew no image within 30 s"
                time.sleep(0.05)
            return page
        yield open_page


@pytest.mark.parametrize("width,height", [(1280, 900), (1280, 720), (1920, 1080)])
def test_download_buttons_are_above_the_fold(page_at, width, height):
    page = page_at(width, height)
    for button in ("#download-png", "#download-ws"):
        box = page.locator(button).bounding_box()
        assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= height, (button, box)
    frame = page.locator("#frame").bounding_box()
    assert frame["height"] >= 0.55 * height and abs(frame["width"] - frame["height"]) < 2, frame


def test_direction_range_defaults_to_the_cli_strength(page_at):
    edit = cli.get_command(None, "edit")
    default = next(p.default for p in edit.params if p.name == "strength")
    start, stop, _ = (float(v) for v in default.split(":"))
    page = page_at(1280, 900)
    assert float(page.locator("#strength-range").input_value()) == max(abs(start), abs(stop)) == 3.0
