"""The explorer driven in headless Chromium, as a user drives it: ``stylegan serve`` runs in its own process,
the page's controls are typed into, clicked, dragged and keyed, and the image the page shows (its PNG
download) must be the one ``stylegan generate`` / ``stylegan mix`` write for the same settings.
Screenshots land in test-artifacts/web/."""

import shutil

import numpy as np
import pytest
from PIL import Image
from support.models import REPO
from support.web import CHROMIUM_ARGS, chromium_path, download, serve_process, wait_image

from stylegan.checkpoints import load_generator
from stylegan.cli.main import main
from stylegan.latent.directions import sefa
from stylegan.latent.editing import direction_offsets
from stylegan.latent.io import load_npz_extra
from stylegan.latent.sampling import GenerationRequest

pytestmark = pytest.mark.browser
ARTIFACTS = REPO / "test-artifacts" / "web"


@pytest.fixture(scope="module")
def chromium():
    path = chromium_path()
    if path is None:
        pytest.skip("no Chromium binary (apt-get install chromium, or set STYLEGAN_CHROMIUM=/path/to/chrome)")
    pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed (pip install playwright)")
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory, sg2_model, sg3_model, cond_model):
    root = tmp_path_factory.mktemp("served")
    for src in (sg2_model, sg3_model, cond_model):
        shutil.copy(src, root / src.name)
    return root


@pytest.fixture(scope="module")
def server(chromium, models):
    with serve_process("--network", models / "sg2.safetensors", "--model-dir", models, "--device", "cpu") as (base, _):
        yield base


@pytest.fixture(scope="module")
def browser(chromium):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server):
    """A fresh page on the explorer, its first image drawn; at the end, no script error and no CSP violation."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    problems = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.goto(server)
    wait_image(page, **{"latent.seed": 0, "psi": 1})
    yield page
    context.close()
    assert not problems, problems


def stylegan(*args):
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in args])
    assert exit_info.value.code == 0


def png(path) -> np.ndarray:
    return np.asarray(Image.open(path))


def set_number(page, selector, value):
    page.fill(selector, str(value))
    page.press(selector, "Tab")                          # commit (change event), as a user leaving the field


def shown(page, tmp_path) -> np.ndarray:
    """The pixels the page shows, through its own 'Download PNG' button."""
    return png(download(page, "#download-png", tmp_path))


def screenshot(page, name):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def test_seed_and_truncation_match_stylegan_generate(page, models, tmp_path):
    sg2 = models / "sg2.safetensors"
    stylegan("generate", "--network", sg2, "--seeds", "0,7", "--outdir", tmp_path / "psi1")
    stylegan("generate", "--network", sg2, "--seeds", "7", "--trunc", "0.5", "--outdir", tmp_path / "psi05")
    stylegan("generate", "--network", sg2, "--seeds", "7", "--trunc", "0.47", "--outdir", tmp_path / "psi047")
    first = shown(page, tmp_path)
    assert np.array_equal(first, png(tmp_path / "psi1" / "seed0000.png"))

    set_number(page, "#seed", 7)
    wait_image(page, **{"latent.seed": 7})
    seven = shown(page, tmp_path)
    assert not np.array_equal(seven, first)
    assert np.array_equal(seven, png(tmp_path / "psi1" / "seed0007.png"))

    set_number(page, "#psi", 0.5)
    wait_image(page, **{"latent.seed": 7, "psi": 0.5})
    assert page.input_value("#psi-range") == "0.5"
    truncated = shown(page, tmp_path)
    assert not np.array_equal(truncated, seven)
    assert np.array_equal(truncated, png(tmp_path / "psi05" / "seed0007.png"))
    screenshot(page, "seed-truncation.png")

    for _ in range(3):                                   # the slider, by keyboard: 0.50 -> 0.47
        page.press("#psi-range", "ArrowLeft")
    wait_image(page, **{"latent.seed": 7, "psi": 0.47})
    assert page.input_value("#psi") == "0.47"
    path = download(page, "#download-png", tmp_path / "dl")
    assert path.name == "seed0007.png"
    assert np.array_equal(png(path), png(tmp_path / "psi047" / "seed0007.png"))


def test_dragging_the_image_moves_between_seeds(page, models, tmp_path):
    box = page.locator("#image").bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x - 50, y, steps=5)                  # 50 px left = half way to the next seed
    page.mouse.up()
    req = wait_image(page, **{"latent.seed": 0, "latent.dx": 0.5, "latent.dy": 0})
    assert page.input_value("#offset-x") == "0.50"
    npz = download(page, "#download-ws", tmp_path)
    assert npz.name == "seed0000-x0.50-y0.00.npz"
    G = load_generator(models / "sg2.safetensors")
    ws = GenerationRequest(G).seed_latents([0, 1]).ws
    np.testing.assert_allclose(load_npz_extra(npz)["ws"][0], 0.5 * ws[0] + 0.5 * ws[1], atol=1e-6)
    stylegan("generate", "--network", models / "sg2.safetensors", "--ws", npz, "--outdir", tmp_path)
    assert np.array_equal(shown(page, tmp_path / "page"), png(npz.with_suffix(".png")))
    assert req["latent"]["kind"] == "seed"
    screenshot(page, "drag.png")


def test_style_mixing_and_a_direction_slider(page, models, tmp_path):
    sg2 = models / "sg2.safetensors"
    stylegan("mix", "--network", sg2, "--rows", "0", "--cols", "5", "--styles", "coarse", "--batch", "1",
             "--outdir", tmp_path / "mix")
    set_number(page, "#mix-seed", 5)
    page.click("#mix-presets >> text=coarse")            # ticks ws 0-3 and turns mixing on
    assert page.is_checked("#mix-on") and page.is_checked("#mix-layer-3") and not page.is_checked("#mix-layer-4")
    wait_image(page, **{"mix.seed": 5, "mix.layers": [0, 1, 2, 3]})
    mixed = shown(page, tmp_path)
    assert np.array_equal(mixed, png(tmp_path / "mix" / "0-5.png"))

    page.click("#sefa")                                  # SeFa on all layers, 8 directions
    page.wait_for_selector("#direction-7")
    page.press("#direction-0", "End")                    # the slider to its maximum, +3 (the CLI's range)
    req = wait_image(page, **{"mix.seed": 5, "edits.0.index": 0, "edits.0.strength": 3})
    assert len(req["edits"]) == 1
    edited = shown(page, tmp_path / "edited")
    assert not np.array_equal(edited, mixed)
    screenshot(page, "mixing-directions.png")

    npz = download(page, "#download-ws", tmp_path)
    G = load_generator(sg2)
    found = sefa(G, None, 8)
    base = GenerationRequest(G).seed_latents([0]).ws
    base[:, :4] = GenerationRequest(G).seed_latents([5]).ws[:, :4]
    expected = base + 3 * direction_offsets(found.vectors[0], G.num_ws, G.w_dim, found.layers).numpy()
    np.testing.assert_allclose(load_npz_extra(npz)["ws"], expected, atol=1e-5)
    stylegan("generate", "--network", sg2, "--ws", npz, "--outdir", tmp_path / "again")
    assert np.array_equal(edited, png(tmp_path / "again" / f"{npz.stem}.png"))

    page.click("#directions-reset")
    wait_image(page, **{"mix.seed": 5, "edits": []})
    assert np.array_equal(shown(page, tmp_path / "reset"), mixed)


def test_stylegan3_transform_and_class_controls(page, models, tmp_path):
    assert page.is_hidden("#transform-panel") and page.is_hidden("#class-label")
    stylegan("generate", "--network", models / "sg3t.safetensors", "--seeds", "0", "--rotate", "30",
             "--translate", "0.1,0", "--outdir", tmp_path / "sg3")
    stylegan("generate", "--network", models / "cond.safetensors", "--seeds", "0", "--class", "2",
             "--outdir", tmp_path / "cond")

    page.select_option("#model", "sg3t.safetensors")
    page.wait_for_selector("#transform-panel", state="visible")
    wait_image(page, model="sg3t.safetensors")
    set_number(page, "#rotate", 30)
    for _ in range(10):
        page.press("#translate-x-range", "ArrowRight")   # 0.01 per step
    wait_image(page, model="sg3t.safetensors", rotate=30, translate=[0.1, 0])
    assert page.input_value("#translate-x") == "0.1"
    assert np.array_equal(shown(page, tmp_path), png(tmp_path / "sg3" / "seed0000.png"))
    screenshot(page, "stylegan3-transform.png")

    page.select_option("#model", "cond.safetensors")
    page.wait_for_selector("#class-label", state="visible")
    assert page.is_hidden("#transform-panel")
    wait_image(page, model="cond.safetensors", class_idx=0, rotate=0, translate=[0, 0])
    set_number(page, "#class", 2)
    wait_image(page, model="cond.safetensors", class_idx=2)
    assert np.array_equal(shown(page, tmp_path / "c"), png(tmp_path / "cond" / "seed0000.png"))


def test_projected_w_upload(page, models, tmp_path):
    stylegan("generate", "--network", models / "sg2.safetensors", "--seeds", "9", "--trunc", "0.6", "--save-ws",
             "--outdir", tmp_path)
    page.set_input_files("#upload-ws", str(tmp_path / "seed0009.npz"))
    wait_image(page, **{"latent.kind": "upload", "latent.index": 0})
    assert page.is_checked("#source-upload")
    assert np.array_equal(shown(page, tmp_path / "page"), png(tmp_path / "seed0009.png"))
    page.check("#source-seed")                           # back to the seed plane
    wait_image(page, **{"latent.kind": "seed", "latent.seed": 0})
