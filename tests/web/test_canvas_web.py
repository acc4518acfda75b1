"""The explorer's canvas (docs/web.md, docs/canvas.md): ``canvas: "WxH"`` on a render draws that size through
the generation request ``stylegan generate --size`` uses (the same pixels, the same rounding note); the
model's own size is the old path byte for byte; hostile sizes are refused with a 400 and one line, within a
pixel budget (``serve --max-canvas-mp``); and in Chromium a 16:9 preset shows a 16:9 image."""

import io
import json
import shutil
import time

import httpx
import numpy as np
import pytest
from PIL import Image
from support.web import download, serve_in_thread, wait_image

from stylegan.checkpoints import load_generator
from stylegan.cli.main import main
from stylegan.latent.sampling import GenerationRequest
from stylegan.web.app import create_app
from stylegan.web.schemas import MAX_CANVAS_PIXELS


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, sg2_model, sg3_model):
    root = tmp_path_factory.mktemp("served")
    for src in (sg2_model, sg3_model):
        shutil.copy(src, root / src.name)
    return root


@pytest.fixture(scope="module")
def server(model_dir):
    with serve_in_thread(create_app(model_dir / "sg2.safetensors", model_dir, device="cpu")) as base:
        yield base


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server, timeout=60) as c:
        yield c


def stylegan(*args) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in args])
    assert exit_info.value.code == 0


def png(data) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data) if isinstance(data, bytes) else data))


def test_a_canvas_renders_what_generate_size_writes(client, model_dir, tmp_path, capsys):
    sg2, sg3 = model_dir / "sg2.safetensors", model_dir / "sg3t.safetensors"
    capsys.readouterr()
    stylegan("generate", "--network", sg2, "--seeds", "3", "--trunc", "0.7", "--size", "64x36", "--outdir", tmp_path / "t")
    cli_says = capsys.readouterr()
    stylegan("generate", "--network", sg2, "--seeds", "3", "--trunc", "0.7", "--size", "64x36", "--extend", "reflect",
             "--outdir", tmp_path / "r")
    stylegan("generate", "--network", sg3, "--seeds", "5", "--size", "80x32", "--translate", "0.5,0",
             "--outdir", tmp_path / "s")

    r = client.post("/api/render", json={"latent": {"seed": 3}, "psi": 0.7, "canvas": "64x36"})
    assert r.status_code == 200, r.text
    tiled = png(r.content)
    assert tiled.shape == (36, 64, 3)                                         # width x height, as --size
    assert np.array_equal(tiled, png(tmp_path / "t" / "seed0003.png"))
    assert r.headers["X-Image-Name"] == "seed0003-64x36"
    note = r.headers["X-Canvas-Note"]                                        # the CLI's rounding line, word for word
    assert note == GenerationRequest(load_generator(sg2), canvas="64x36").canvas_note
    assert note in cli_says.out + cli_says.err and "64x40" in note

    r = client.post("/api/render", json={"latent": {"seed": 3}, "psi": 0.7, "canvas": "64x36", "extension": "reflect"})
    reflected = png(r.content)
    assert np.array_equal(reflected, png(tmp_path / "r" / "seed0003.png")) and not np.array_equal(reflected, tiled)

    # StyleGAN3: translate moves the camera through the wider field, exactly as `generate --size --translate`
    body = {"model": "sg3t.safetensors", "latent": {"seed": 5}, "canvas": "80x32"}
    moved = png(client.post("/api/render", json={**body, "translate": [0.5, 0]}).content)
    assert moved.shape == (32, 80, 3) and np.array_equal(moved, png(tmp_path / "s" / "seed0005.png"))
    still = client.post("/api/render", json=body)
    assert not np.array_equal(png(still.content), moved) and "X-Canvas-Note" not in still.headers  # 80x32: even


def test_the_models_own_size_is_the_old_path_byte_for_byte(client):
    plain = client.post("/api/render", json={"latent": {"seed": 9}, "psi": 0.6})
    own = client.post("/api/render", json={"latent": {"seed": 9}, "psi": 0.6, "canvas": "32x32"})
    assert plain.status_code == own.status_code == 200
    assert plain.content == own.content and png(plain.content).shape == (32, 32, 3)
    assert own.headers["X-Image-Name"] == plain.headers["X-Image-Name"] == "seed0009"
    assert "X-Canvas-Note" not in own.headers


@pytest.mark.parametrize("canvas, extension, message", [
    ("2000x2000", None, "canvas 2000x2000 is 4 megapixels; this server renders at most 3 (stylegan serve "
                        "--max-canvas-mp)"),
    ("2041x1465", None, "canvas 2041x1465 (rendered at 2048x1472) is 3.01 megapixels"),   # 2.99 MP asked
    ("99999x99999", None, "at most 16384 pixels a side"),
    ("-64x36", None, "two positive integers"),
    ("0x36", None, "two positive integers"),
    ("wide", None, "size must be WIDTHxHEIGHT in pixels"),
    ("64x36x2", None, "size must be WIDTHxHEIGHT in pixels"),
    ("1e3x5", None, "size must be WIDTHxHEIGHT in pixels"),
    ("64x36", "diagonal", "canvas extension must be one of tile, reflect, stretch"),
])
def test_hostile_sizes_are_one_line_400s(client, canvas, extension, message):
    r = client.post("/api/render", json={"canvas": canvas, "extension": extension})
    assert r.status_code == 400, r.text
    detail = r.json()["detail"]
    assert message in detail and "\n" not in detail
    assert client.post("/api/render", json={}).status_code == 200                     # still serving


def test_malformed_canvas_fields_and_sg3_extension(client):
    r = client.post("/api/render", json={"model": "sg3t.safetensors", "canvas": "64x36", "extension": "tile"})
    assert r.status_code == 400 and "StyleGAN3 has no constant to extend" in r.json()["detail"]
    r = client.post("/api/render", json={"model": "sg3t.safetensors", "canvas": "2000x2000"})  # opened in the child
    assert r.status_code == 400 and "this server renders at most 3" in r.json()["detail"]
    for canvas in ([64, 36], "9" * 33):                                           # not a string; over 32 characters
        r = client.post("/api/render", json={"canvas": canvas})
        assert r.status_code == 422 and r.json()["detail"].startswith("canvas: "), r.text
    drag = {"render": {"canvas": "64x36"}, "handles": [[8, 15]], "targets": [[4, 14]], "steps": 2, "session": "c1"}
    r = client.post("/api/drag", json=drag)
    assert r.status_code == 400 and r.json()["detail"] == ("drag editing works on the model's own 32x32 image: set "
                                                           "the canvas back to it")


def test_model_info_has_the_shape_and_the_presets(client):
    info = client.get("/api/model").json()
    assert info["img_shape"] == [32, 32]
    assert info["canvas"]["stride"] == 8 and info["canvas"]["extensions"] == ["tile", "reflect", "stretch"]
    presets = {p["key"]: (p["size"], p["rendered"]) for p in info["canvas"]["presets"]}
    assert presets == {"model": ([32, 32], [32, 32]), "wide": ([64, 36], [64, 40]), "tall": ([36, 64], [40, 64]),
                       "hd": ([1920, 1080], [1920, 1080])}
    sg3 = client.get("/api/model", params={"name": "sg3t.safetensors"}).json()["canvas"]
    assert sg3["stride"] == 2 and sg3["extensions"] == []
    assert client.get("/api/info").json()["limits"]["canvas_pixels"] == MAX_CANVAS_PIXELS


def test_serve_max_canvas_mp_sets_the_budget(sg2_model, monkeypatch):
    import uvicorn
    apps = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: apps.append(app))
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--network", str(sg2_model), "--max-canvas-mp", "0.002"])
    assert exit_info.value.code == 0
    with serve_in_thread(apps[0]) as base, httpx.Client(base_url=base, timeout=60) as c:
        r = c.post("/api/render", json={"canvas": "64x36"})                      # rendered at 64x40 = 2560 pixels
        assert r.status_code == 400 and r.json()["detail"] == (
            "canvas 64x36 (rendered at 64x40) is 0.00256 megapixels; this server renders at most 0.002 "
            "(stylegan serve --max-canvas-mp)")
        assert png(c.post("/api/render", json={"canvas": "40x40"}).content).shape == (40, 40, 3)   # 1600 pixels
        assert png(c.post("/api/render", json={}).content).shape == (32, 32, 3)


@pytest.mark.browser
def test_a_16_9_preset_shows_a_16_9_image(server, model_dir, tmp_path, browser):
    stylegan("generate", "--network", model_dir / "sg2.safetensors", "--seeds", "0", "--size", "64x36",
             "--outdir", tmp_path / "cli")
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    problems = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on("console", lambda msg: problems.append(msg.text)                # the refused size's 400 aside
            if msg.type == "error" and "status of 400" not in msg.text else None)
    page.goto(server)
    wait_image(page, timeout=60, **{"latent.seed": 0})
    assert page.is_enabled("#drag-mode") and page.is_hidden("#drag-canvas-note")
    page.select_option("#canvas-preset", "wide")
    wait_image(page, timeout=60, canvas="64x36", extension="tile")
    deadline = time.monotonic() + 10
    while page.locator("#image").evaluate("i => [i.naturalWidth, i.naturalHeight]") != [64, 36]:
        assert time.monotonic() < deadline, page.locator("#image").evaluate("i => [i.naturalWidth, i.naturalHeight]")
        time.sleep(0.05)
    frame = page.locator("#frame").bounding_box()
    assert abs(frame["width"] / frame["height"] - 64 / 36) < 0.02, frame    # not boxed in a square
    assert page.text_content("#canvas-note") == ("canvas 64x36: this model renders sizes in steps of 8 pixels, "
                                                 "so each image is rendered at 64x40 and its centre 64x36 kept")
    assert not page.is_enabled("#drag-mode") and "model's own 32×32" in page.text_content("#drag-canvas-note")
    assert np.array_equal(png(download(page, "#download-png", tmp_path)), png(tmp_path / "cli" / "seed0000.png"))

    page.select_option("#canvas-preset", "custom")
    page.fill("#canvas-w", "-5")
    page.press("#canvas-w", "Tab")
    page.wait_for_selector("#error:not([hidden])")
    assert "two positive integers" in page.text_content("#error")
    page.select_option("#canvas-preset", "model")
    page.wait_for_selector("#error", state="hidden")
    wait_image(page, timeout=60, **{"latent.seed": 0})
    assert page.locator("#image").get_attribute("data-request").find("canvas") < 0
    context.close()
    assert not problems, problems


@pytest.mark.browser
def test_the_drag_panel_works_on_a_non_square_model(tmp_path, browser):
    from support.models import save_tiny
    wide = save_tiny(tmp_path / "wide.safetensors", img_shape=(16, 32))
    with serve_in_thread(create_app(wide, tmp_path, device="cpu")) as base:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        problems = []
        page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
        page.goto(base)
        wait_image(page, timeout=60)
        assert page.is_enabled("#drag-mode") and page.is_enabled("#drag-brush")
        assert not page.is_visible("#drag-canvas-note")
        page.check("#drag-mode")
        box = page.locator("#image").bounding_box()
        for x, y in ((26, 12), (28, 13)):             # a handle right of and below what a 16x16 square would hold
            page.mouse.click(box["x"] + (x + 0.5) / 32 * box["width"], box["y"] + (y + 0.5) / 16 * box["height"])
        page.fill("#drag-steps", "2")
        page.click("#drag-start")
        status = page.locator("#drag-status")
        page.wait_for_function("() => ['done', 'error'].includes(document.getElementById('drag-status')"
                               ".dataset.state)", timeout=60_000)
        assert status.get_attribute("data-state") == "done", status.text_content()
        (x, y), = json.loads(status.get_attribute("data-points"))
        assert abs(x - 26) <= 3 and abs(y - 12) <= 3, (x, y)        # tracked from the clicked handle
        context.close()
    assert not problems, problems
