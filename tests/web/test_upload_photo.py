"""The explorer's "upload a photo -> encoder inversion" on the built-in model and its shipped encoder, with real
emoji the model never saw: the API on a real uvicorn server (the stored w is the encoder's, exactly; refinement
improves it; every explorer control acts on it; hostile uploads get one line and the server carries on), and the
page in headless Chromium (upload, reconstruction shown, w download, the error line, the control disabled with
its reason on a model without an encoder)."""

from __future__ import annotations

import base64
import io
import shutil
import struct
import zlib
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from support.models import REPO
from support.web import download, serve_in_thread, wait_image

from stylegan.checkpoints import load_generator
from stylegan.checkpoints.encoder import load_encoder
from stylegan.cli.main import main
from stylegan.latent.directions import sefa
from stylegan.latent.editing import direction_offsets
from stylegan.latent.inversion import encode
from stylegan.latent.io import load_npz_extra
from stylegan.latent.projection import psnr
from stylegan.web.app import create_app
from stylegan.web.photos import MAX_PHOTO_STEPS

EMOJI = Path(__file__).resolve().parents[1] / "assets" / "emoji-unseen"
ARTIFACTS = REPO / "test-artifacts" / "web"
OCTETS = {"Content-Type": "application/octet-stream"}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, sg2_model):
    root = tmp_path_factory.mktemp("served")
    shutil.copy(sg2_model, root / sg2_model.name)
    return root


@pytest.fixture(scope="module")
def server(model_dir):
    """The explorer for the built-in model (which has an encoder) and a folder with a model that has none."""
    with serve_in_thread(create_app("builtin", model_dir, device="cpu")) as base:
        yield base


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server, timeout=60) as c:
        yield c


@pytest.fixture(scope="module")
def builtin():
    G = load_generator(None)
    E, _ = load_encoder("builtin")
    return G, E


def emoji(name: str) -> np.ndarray:
    return np.array(Image.open(EMOJI / name).convert("RGB"))


def upload_photo(client, data: bytes, filename="cat.png", **params):
    return client.post("/api/upload/photo", params={"filename": filename, **params}, content=data, headers=OCTETS)


def ws_of(client, upload_id: str, **req) -> np.ndarray:
    r = client.post("/api/ws", json={"latent": {"kind": "upload", "id": upload_id}, **req})
    assert r.status_code == 200, r.text
    return np.load(io.BytesIO(r.content))["ws"]


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def test_photo_upload_sets_the_explorers_w_to_the_encoders(client, builtin):
    G, E = builtin
    assert client.get("/api/model").json()["photo_encoder"]["available"] is True
    r = upload_photo(client, (EMOJI / "cat.png").read_bytes())
    assert r.status_code == 200, r.text
    up = r.json()
    assert up["labels"] == ["cat"] and up["count"] == 1 and up["steps"] == 0
    assert up["target"].startswith("data:image/png;base64,")
    expected = encode(G, emoji("cat.png"), E)
    assert np.array_equal(ws_of(client, up["id"]), expected.ws.numpy())          # the encoder's w, exactly
    assert up["psnr"] == pytest.approx(float(expected.psnr[0]), abs=1e-4)
    render = client.post("/api/render", json={"latent": {"kind": "upload", "id": up["id"]}})
    assert render.status_code == 200
    shown = np.asarray(Image.open(io.BytesIO(render.content)))
    assert psnr(shown[None], emoji("cat.png")[None])[0] > expected.initial_psnr[0] + 2   # mean w: 8.7 dB
    # The other controls act on it: a SeFa direction moves the stored w, style mixing replaces layers.
    sefa = client.post("/api/directions/sefa", json={"layers": "all", "num": 2}).json()
    edited = ws_of(client, up["id"], edits=[{"directions": sefa["id"], "index": 0, "strength": 3.0}])
    assert not np.allclose(edited, expected.ws.numpy())
    mixed, ws = ws_of(client, up["id"], mix={"seed": 5, "layers": [6, 7]}), expected.ws.numpy()
    assert np.array_equal(mixed[0, :6], ws[0, :6]) and not np.allclose(mixed[0, 6:], ws[0, 6:])
    # Refinement steps improve on the encoder (measured 13.0 -> 14.8 dB with 5 steps).
    refined = upload_photo(client, (EMOJI / "cat.png").read_bytes(), steps=5).json()
    assert refined["encoder_psnr"] == pytest.approx(up["psnr"], abs=1e-4)
    assert refined["psnr"] > up["psnr"] + 1.0, refined


def test_align_face_uploads_the_kth_face_aligned_as_project_face_does(client, builtin):
    from support.photos import two_face_photo

    from stylegan.latent.align import align_face
    from stylegan.perception import faces
    if not faces.detector_available():
        pytest.skip(f"no MTCNN weights: {faces.INSTALL_HINT}")
    G, E = builtin
    canvas = two_face_photo()
    buf = io.BytesIO()
    Image.fromarray(canvas).save(buf, format="PNG")
    assert client.get("/api/model").json()["photo_encoder"]["align_faces"] is True
    r = upload_photo(client, buf.getvalue(), filename="group.png", face=1)
    assert r.status_code == 200, r.text
    small_face = faces.detect_faces(canvas)[1]
    assert small_face.box[0] > 690                                      # the smaller face, on the right
    expected = align_face(canvas, small_face.landmarks, G.img_resolution)
    shown = np.asarray(Image.open(io.BytesIO(base64.b64decode(r.json()["target"].split(",", 1)[1]))))
    assert np.array_equal(shown, expected)                              # the target `project --face 1` makes
    assert np.array_equal(ws_of(client, r.json()["id"]), encode(G, expected, E).ws.numpy())
    for face, message in [(2, "group: --face 2: the image has 2 face(s)"), ("x", "face must be a whole number")]:
        r = upload_photo(client, buf.getvalue(), filename="group.png", face=face)
        assert r.status_code == 400 and message in r.json()["detail"], r.text
    r = upload_photo(client, (EMOJI / "cat.png").read_bytes(), face=0)
    assert r.status_code == 400 and r.json()["detail"] == "cat: no face found in the image", r.text


def test_hostile_photo_uploads_get_one_line_and_the_server_carries_on(client, tmp_path):
    header_only = (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0))
                   + png_chunk(b"IDAT", zlib.compress(b"\0" * 64)) + png_chunk(b"IEND", b""))
    big = io.BytesIO()
    Image.new("L", (6000, 6000)).save(big, format="PNG")                # 36 megapixels of zeros, ~40 KB packed
    assert len(big.getvalue()) < 2**20
    good = (EMOJI / "cat.png").read_bytes()
    cases = [
        (b"", "cat is empty"),
        (b"just some text", "cat is not a photo the explorer reads (PNG, JPEG, WEBP, GIF, BMP)"),
        (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n", "not a photo the explorer reads"),   # never Ghostscript
        (header_only, "image too large"),                                      # PIL's bomb limit, at the header
        (big.getvalue(), "6000x6000 is 36.0 megapixels, more than the explorer's limit of 25"),
        (good[:len(good) // 2], "cat: cannot decode the PNG image"),
    ]
    for data, message in cases:
        r = upload_photo(client, data)
        assert r.status_code == 400 and message in r.json()["detail"], (message, r.text)
        assert "\n" not in r.json()["detail"]
    r = upload_photo(client, good, steps=MAX_PHOTO_STEPS + 1)
    assert r.status_code == 400 and "from 0 to 50" in r.json()["detail"]
    r = upload_photo(client, good, steps="1e9")
    assert r.status_code == 400 and "whole number" in r.json()["detail"]
    r = upload_photo(client, b"\0" * (8 * 2**20 + 1))
    assert r.status_code == 413 and r.json()["detail"] == "file larger than 8 MB"
    r = client.post("/api/upload/photo", content=good, headers={"Content-Type": "image/png"})
    assert r.status_code == 415
    r = upload_photo(client, good, model="sg2.safetensors")                    # a model without an encoder
    assert r.status_code == 400 and "no encoder for this model" in r.json()["detail"]
    assert client.get("/api/model", params={"name": "sg2.safetensors"}).json()["photo_encoder"]["available"] is False
    assert upload_photo(client, good).status_code == 200                      # still serving
    assert client.post("/api/render", json={}).status_code == 200


@pytest.fixture(scope="module")
def page(server, browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    problems = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.goto(server)
    wait_image(page, timeout=60, **{"latent.kind": "seed"})
    yield page
    context.close()
    assert not problems, problems


@pytest.mark.browser
def test_upload_a_photo_in_the_page(page, builtin, tmp_path):
    G, E = builtin
    assert page.is_enabled("#upload-photo")
    from stylegan.perception import faces
    assert page.is_enabled("#photo-align") is faces.detector_available()       # the page's "align face" box
    page.set_input_files("#upload-photo", str(EMOJI / "dog.png"))
    wait_image(page, timeout=60, **{"latent.kind": "upload"})
    assert page.is_checked("#source-upload") and page.is_visible("#photo-target")
    assert "dog: " in page.text_content("#photo-status")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "upload-photo.png"), full_page=True)
    shown = np.asarray(Image.open(download(page, "#download-png", tmp_path)))
    ws_file = download(page, "#download-ws", tmp_path)
    expected = encode(G, emoji("dog.png"), E)
    assert np.allclose(np.load(ws_file)["ws"], expected.ws.numpy(), atol=1e-6)
    assert psnr(shown[None], emoji("dog.png")[None])[0] > expected.initial_psnr[0] + 2
    with pytest.raises(SystemExit) as done:                             # the downloaded w draws what the page shows
        main(["generate", "--ws", str(ws_file), "--outdir", str(tmp_path / "again")])
    assert done.value.code == 0
    assert np.array_equal(np.asarray(Image.open(tmp_path / "again" / f"{ws_file.stem}.png")), shown)
    assert "labels" in load_npz_extra(ws_file)

    page.click("#sefa")                                                # a direction slider moves the photo's w
    page.wait_for_selector("#direction-0")
    page.press("#direction-0", "End")                                  # the range end: +3 (as `stylegan edit --strength -3:3`)
    wait_image(page, timeout=60, **{"latent.kind": "upload", "edits.0.index": 0, "edits.0.strength": 3})
    found = sefa(G, None, 8)
    offset = direction_offsets(found.vectors[0], G.num_ws, G.w_dim, found.layers).numpy()
    edited = np.load(download(page, "#download-ws", tmp_path / "edited"))["ws"]
    np.testing.assert_allclose(edited, expected.ws.numpy() + 3 * offset, atol=1e-5)

    if faces.detector_available():                                     # "align face": the largest face, aligned
        from support.photos import two_face_photo

        from stylegan.latent.align import align_face
        canvas = two_face_photo()
        Image.fromarray(canvas).save(tmp_path / "group.png")
        page.check("#photo-align")
        page.set_input_files("#upload-photo", str(tmp_path / "group.png"))
        page.wait_for_selector("#photo-status:has-text('group: ')", timeout=60_000)
        src = page.get_attribute("#photo-target", "src")
        shown_target = np.asarray(Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))))
        assert np.array_equal(shown_target, align_face(canvas, faces.detect_faces(canvas)[0].landmarks, 32))
        page.uncheck("#photo-align")

    (tmp_path / "bad.png").write_bytes(b"not a picture")             # a hostile upload: one line in the page
    page.set_input_files("#upload-photo", str(tmp_path / "bad.png"))
    page.wait_for_selector("#error:not([hidden])")
    assert page.text_content("#error") == "bad is not a photo the explorer reads (PNG, JPEG, WEBP, GIF, BMP)"

    page.select_option("#model", "sg2.safetensors")                    # no encoder there: the control says why
    page.wait_for_selector("#photo-panel[data-available=no]")
    assert not page.is_enabled("#upload-photo") and not page.is_enabled("#photo-align")
    assert "no encoder for this model" in page.text_content("#photo-status")
