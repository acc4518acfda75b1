"""The explorer's drag panel in headless Chromium on the built-in model: click a handle and a target, start,
watch the streamed steps, and check the result moved the picture toward the target, downloads as a w that
``stylegan generate`` draws the same, and is undone by Undo; then paint a mask and drag again."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from PIL import Image
from support.models import REPO
from support.web import serve_process, watched_page

from stylegan.checkpoints import load_generator
from stylegan.latent.io import load_ws
from stylegan.latent.sampling import GenerationRequest
from stylegan.web.drag import brush_mask

pytestmark = pytest.mark.browser
HANDLE, TARGET = (8, 15), (4, 14)
ARTIFACTS = REPO / "test-artifacts" / "web"


@pytest.fixture(scope="module")
def page(browser):
    with serve_process("--device", "cpu") as (base, _), watched_page(browser, base) as page:
        yield page


def _wait(page, check, timeout=60.0, what="the page"):
    deadline = time.monotonic() + timeout
    while not check():
        assert page.locator("#image").get_attribute("data-error") is None, page.locator("#error").text_content()
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        time.sleep(0.05)


def _shown_latent(page) -> dict:
    img = page.locator("#image")
    if img.get_attribute("data-state") != "ready" or not img.get_attribute("data-request"):
        return {}
    return json.loads(img.get_attribute("data-request"))["latent"]


def _download(page, button, tmp_path):
    with page.expect_download() as info:
        page.click(button)
    path = tmp_path / info.value.suggested_filename
    info.value.save_as(path)
    return path


def _click_pixel(page, x, y):
    box = page.locator("#image").bounding_box()
    page.mouse.click(box["x"] + (x + 0.5) / 32 * box["width"], box["y"] + (y + 0.5) / 32 * box["height"])


def _patch(image, point, r=2):
    return image[point[1] - r:point[1] + r + 1, point[0] - r:point[0] + r + 1].astype(np.float64)


def test_drag_a_point_in_the_browser(page, tmp_path):
    _wait(page, lambda: _shown_latent(page).get("seed") == 0, what="the first image")
    start = np.asarray(Image.open(_download(page, "#download-png", tmp_path)))
    page.check("#drag-mode")
    _click_pixel(page, *HANDLE)
    _click_pixel(page, *TARGET)
    assert page.locator(".drag-mark.handle").count() == 1 and page.locator(".drag-mark.target").count() == 1
    assert _shown_latent(page).get("seed") == 0 and _shown_latent(page).get("dx") == 0   # clicks did not move w
    page.click("#drag-start")
    status = page.locator("#drag-status")
    _wait(page, lambda: status.get_attribute("data-state") == "done" and _shown_latent(page).get("kind") == "upload",
          what="the drag")
    assert "arrived after" in status.text_content()
    reached = json.loads(status.get_attribute("data-points"))[0]
    assert np.hypot(reached[0] - TARGET[0], reached[1] - TARGET[1]) <= 1.0
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "drag.png"))

    dragged = np.asarray(Image.open(_download(page, "#download-png", tmp_path)))
    moved = np.abs(_patch(dragged, TARGET) - _patch(start, HANDLE)).mean()
    stayed = np.abs(_patch(dragged, HANDLE) - _patch(start, HANDLE)).mean()
    assert moved < 0.85 * stayed, (moved, stayed)          # the picture at the handle went to the target
    G = load_generator("builtin")
    ws = load_ws(_download(page, "#download-ws", tmp_path), G.num_ws, G.w_dim)
    assert np.array_equal(GenerationRequest(G).images(ws)[0], dragged)

    page.click("#drag-undo")
    _wait(page, lambda: _shown_latent(page).get("kind") == "seed", what="undo")
    assert np.array_equal(np.asarray(Image.open(_download(page, "#download-png", tmp_path))), start)
    assert page.locator(".drag-mark.handle").count() == 1          # undo brought the original pair back

    page.check("#drag-brush")                                    # paint the region that may change, then drag
    box = page.locator("#image").bounding_box()
    page.mouse.move(box["x"] + 2.5 / 32 * box["width"], box["y"] + 9.5 / 32 * box["height"])
    page.mouse.down()
    for y in range(9, 21, 2):
        for x in (2, 12):
            page.mouse.move(box["x"] + (x + 0.5) / 32 * box["width"], box["y"] + (y + 0.5) / 32 * box["height"],
                            steps=4)
    page.mouse.up()
    dabs = json.loads(page.locator("#drag-mask").get_attribute("data-brush"))
    assert len(dabs) > 10 and _shown_latent(page).get("dx") == 0
    page.click("#drag-start")
    _wait(page, lambda: status.get_attribute("data-state") == "done" and _shown_latent(page).get("kind") == "upload",
          what="the masked drag")
    masked = np.asarray(Image.open(_download(page, "#download-png", tmp_path))).astype(np.float64)
    inside = brush_mask(dabs, (32, 32)) == 1
    change = np.abs(masked - start).mean(axis=2)
    assert change[~inside].mean() < 0.5 * change[inside].mean()
