"""The explorer's HTTP API on a real uvicorn server: images equal ``stylegan generate``/``mix`` output for the
same settings, latents downloads round-trip, uploads and parameters are bounded, the model folder is
closed, and a slow render never holds up other requests."""

import io
import shutil
import threading
import time
import zipfile

import httpx
import numpy as np
import pytest
from PIL import Image

from stylegan.checkpoints import load_generator
from stylegan.cli.main import main
from stylegan.latent.directions import sefa
from stylegan.latent.io import load_npz_extra, save_directions
from stylegan.latent.sampling import GenerationRequest
from stylegan.web.app import create_app
from support.web import serve_in_thread


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, sg2_model, sg3_model, cond_model):
    root = tmp_path_factory.mktemp("served")
    for src in (sg2_model, sg3_model, cond_model):
        shutil.copy(src, root / src.name)
    return root


@pytest.fixture(scope="module")
def app(model_dir):
    return create_app(model_dir / "sg2.safetensors", model_dir, device="cpu")


@pytest.fixture(scope="module")
def server(app):
    with serve_in_thread(app) as base:
        yield base


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server, timeout=30) as c:
        yield c


def stylegan(*args):
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in args])
    assert exit_info.value.code == 0


def png(data) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data) if isinstance(data, bytes) else data))


def render(client, **req) -> np.ndarray:
    r = client.post("/api/render", json=req)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    return png(r.content)


def ws_npz(client, **req) -> dict:
    r = client.post("/api/ws", json=req)
    assert r.status_code == 200, r.text
    return {k: v for k, v in np.load(io.BytesIO(r.content)).items()}


def test_seed_images_equal_stylegan_generate(client, model_dir, tmp_path):
    sg2, sg3, cond = (model_dir / n for n in ("sg2.safetensors", "sg3t.safetensors", "cond.safetensors"))
    stylegan("generate", "--network", sg2, "--seeds", "3", "--trunc", "0.7", "--outdir", tmp_path / "a")
    stylegan("generate", "--network", sg2, "--seeds", "3", "--trunc", "0.5", "--trunc-cutoff", "2",
             "--noise-mode", "random", "--outdir", tmp_path / "b")
    stylegan("generate", "--network", sg3, "--seeds", "11", "--translate", "0.2,-0.1", "--rotate", "30",
             "--outdir", tmp_path / "c")
    stylegan("generate", "--network", cond, "--seeds", "5", "--class", "2", "--outdir", tmp_path / "d")

    a = render(client, latent={"seed": 3}, psi=0.7)
    assert np.array_equal(a, png(tmp_path / "a" / "seed0003.png"))
    assert np.array_equal(render(client, latent={"seed": 3}, psi=0.5, cutoff=2, noise_mode="random"),
                          png(tmp_path / "b" / "seed0003.png"))
    assert np.array_equal(render(client, model="sg3t.safetensors", latent={"seed": 11}, translate=[0.2, -0.1],
                                 rotate=30), png(tmp_path / "c" / "seed0011.png"))
    assert np.array_equal(render(client, model="cond.safetensors", latent={"seed": 5}, class_idx=2),
                          png(tmp_path / "d" / "seed0005.png"))
    assert not np.array_equal(a, render(client, latent={"seed": 3}, psi=0.6))


def test_ws_download_is_what_generate_saves(client, model_dir, tmp_path):
    stylegan("generate", "--network", model_dir / "sg2.safetensors", "--seeds", "8", "--trunc", "0.6", "--save-ws",
             "--outdir", tmp_path)
    ours = ws_npz(client, latent={"seed": 8}, psi=0.6)
    theirs = load_npz_extra(tmp_path / "seed0008.npz")
    for key in ("ws", "w", "z", "seeds", "psi"):
        np.testing.assert_array_equal(ours[key], theirs[key], err_msg=key)


def test_dragging_blends_the_four_neighbouring_seeds(client, model_dir, tmp_path):
    G = load_generator(model_dir / "sg2.safetensors")
    ws = GenerationRequest(G, 0.8).seed_latents([40, 41, 140, 141]).ws
    weights = np.array([0.75 * 0.5, 0.25 * 0.5, 0.75 * 0.5, 0.25 * 0.5])
    got = ws_npz(client, latent={"seed": 40, "dx": 0.25, "dy": 0.5}, psi=0.8)
    np.testing.assert_allclose(got["ws"][0], np.tensordot(weights, ws, axes=1), rtol=1e-6, atol=1e-6)
    assert str(got["labels"][0]) == "seed0040-x0.25-y0.50"
    # the downloaded latent renders to the page's image with `stylegan generate --ws`
    path = tmp_path / "drag.npz"
    path.write_bytes(client.post("/api/ws", json={"latent": {"seed": 40, "dx": 0.25, "dy": 0.5}, "psi": 0.8}).content)
    stylegan("generate", "--network", model_dir / "sg2.safetensors", "--ws", path, "--outdir", tmp_path)
    image = render(client, latent={"seed": 40, "dx": 0.25, "dy": 0.5}, psi=0.8)
    assert np.array_equal(image, png(tmp_path / "drag.png"))
    # crossing into the next cell is continuous: x = 1 of seed 40 is x = 0 of seed 41
    np.testing.assert_allclose(ws_npz(client, latent={"seed": 40, "dx": 1.0})["ws"],
                               ws_npz(client, latent={"seed": 41})["ws"], atol=1e-6)


def test_style_mixing_equals_stylegan_mix(client, model_dir, tmp_path):
    stylegan("mix", "--network", model_dir / "sg2.safetensors", "--rows", "7", "--cols", "5", "--styles", "0-3",
             "--trunc", "0.9", "--batch", "1", "--outdir", tmp_path)
    mixed = render(client, latent={"seed": 7}, psi=0.9, mix={"seed": 5, "layers": [0, 1, 2, 3]})
    assert np.array_equal(mixed, png(tmp_path / "7-5.png"))
    assert not np.array_equal(mixed, png(tmp_path / "7-7.png"))


def test_direction_edits_move_w_on_the_directions_layers(client, model_dir, tmp_path):
    G = load_generator(model_dir / "sg2.safetensors")
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal([3, G.w_dim]).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    path = save_directions(tmp_path / "dirs.npz", vectors, "test", names=["a", "b", "c"], layers=[2, 3, 4])
    r = client.post("/api/upload/directions", params={"filename": "dirs.npz"}, content=path.read_bytes(),
                    headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 200, r.text
    info = r.json()
    assert info["names"] == ["a", "b", "c"] and info["layers"] == [2, 3, 4]
    base = ws_npz(client, latent={"seed": 1})["ws"]
    edits = [{"directions": info["id"], "index": 1, "strength": 2.5},
             {"directions": info["id"], "index": 2, "strength": -1}]
    edited = ws_npz(client, latent={"seed": 1}, edits=edits)["ws"]
    expected = base.copy()
    expected[0, 2:5] += 2.5 * vectors[1] - vectors[2]
    np.testing.assert_allclose(edited, expected, atol=1e-5)
    assert not np.array_equal(render(client, latent={"seed": 1}, edits=edits), render(client, latent={"seed": 1}))

    r = client.post("/api/directions/sefa", json={"layers": "coarse", "num": 4})
    assert r.status_code == 200, r.text
    found, ref = r.json(), sefa(G, [0, 1, 2, 3], 4)
    assert found["layers"] == ref.layers and np.allclose(found["values"], ref.values)
    edited = ws_npz(client, latent={"seed": 1}, edits=[{"directions": found["id"], "index": 0, "strength": 3}])["ws"]
    expected = base.copy()
    expected[0, :4] += 3 * ref.vectors[0]
    np.testing.assert_allclose(edited, expected, atol=1e-5)


def upload(client, kind, data, filename="w.npz", model=None):
    params = {"filename": filename} | ({"model": model} if model else {})
    return client.post(f"/api/upload/{kind}", params=params, content=data,
                       headers={"Content-Type": "application/octet-stream"})


def test_projected_w_upload_renders_like_generate_ws(client, model_dir, tmp_path):
    stylegan("generate", "--network", model_dir / "sg2.safetensors", "--seeds", "9,10", "--trunc", "0.5", "--save-ws",
             "--outdir", tmp_path)
    r = upload(client, "latents", (tmp_path / "seed0010.npz").read_bytes(), "seed0010.npz")
    assert r.status_code == 200, r.text
    up = r.json()
    assert up["count"] == 1 and up["labels"] == ["seed0010"]
    image = render(client, latent={"kind": "upload", "id": up["id"], "index": 0})
    assert np.array_equal(image, png(tmp_path / "seed0010.png"))
    # psi applies to seeds only: an uploaded w is drawn exactly as saved
    assert np.array_equal(render(client, latent={"kind": "upload", "id": up["id"]}, psi=0.1), image)
    r = client.post("/api/render", json={"latent": {"kind": "upload", "id": up["id"], "index": 1}})
    assert r.status_code == 400 and "holds 1 latents" in r.json()["detail"]
    r = client.post("/api/render", json={"latent": {"kind": "upload", "id": "nosuchid"}})
    assert r.status_code == 404


def npz_bytes(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def test_uploads_are_checked_and_bounded(client, app):
    r = upload(client, "latents", npz_bytes(ws=np.zeros([1, 8, 7], np.float32)))
    assert r.status_code == 400 and "w_dim 7" in r.json()["detail"]
    r = upload(client, "latents", b"not a zip file")
    assert r.status_code == 400 and "not an .npz" in r.json()["detail"]
    r = upload(client, "directions", npz_bytes(ws=np.zeros([1, 8, 32], np.float32)))
    assert r.status_code == 400 and "no directions" in r.json()["detail"]
    bomb = npz_bytes(ws=np.zeros([600, 8, 4096], np.float32))            # ~80 MB of zeros, a few hundred KB packed
    assert len(bomb) < 8 * 2**20
    r = upload(client, "latents", bomb)
    assert r.status_code == 400 and "unpacks to more than" in r.json()["detail"]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("evil.sh", "rm -rf /")
    assert upload(client, "latents", buf.getvalue()).status_code == 400
    r = upload(client, "latents", b"\0" * (8 * 2**20 + 1))
    assert r.status_code == 413 and r.json()["detail"] == "file larger than 8 MB"
    r = upload(client, "latents", iter([b"\0" * 2**20] * 9))      # chunked, no Content-Length: cut off while reading
    assert r.status_code == 413
    r = client.post("/api/upload/latents", content=b"PK", headers={"Content-Type": "multipart/form-data"})
    assert r.status_code == 415


@pytest.mark.parametrize("body, status, message", [
    ({"psi": 2.5}, 422, "psi"),
    ({"latent": {"seed": 2**32}}, 422, "latent.seed"),
    ({"latent": {"seed": 1, "dx": 1.5}}, 422, "latent.dx"),
    ({"cutoff": 9}, 400, "cutoff 9 is out of range"),
    ({"rotate": 10}, 400, "StyleGAN3"),
    ({"class_idx": 1}, 400, "unconditional"),
    ({"mix": {"seed": 1, "layers": [8]}}, 400, "layer 8 is out of range"),
    ({"edits": [{"directions": "x", "index": 0, "strength": 1}] * 33}, 422, "edits"),
    ({"edits": [{"directions": "x", "index": 0, "strength": 1e9}]}, 422, "strength"),
    ({"model": "../sg2.safetensors"}, 403, "no model named"),
    ({"model": "/etc/passwd"}, 403, "no model named"),
    ({"seeds": "0-99999"}, 422, "seeds"),
])
def test_parameters_are_bounded(client, body, status, message):
    r = client.post("/api/render", json=body)
    assert r.status_code == status, r.text
    assert message in r.json()["detail"]


def test_requests_are_bounded_and_local_only(client, server):
    r = client.post("/api/render", content=b"{" + b" " * 70000 + b"}", headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    r = client.post("/api/render", content=b'{"psi": 1}', headers={"Content-Type": "text/plain"})
    assert r.status_code == 415                     # what a cross-site form could send without asking first
    r = httpx.get(f"{server}/api/info", headers={"Host": "attacker.example"})
    assert r.status_code == 400                     # DNS rebinding: only localhost names are served
    r = client.get("/")
    assert r.status_code == 200 and "script-src 'self'" in r.headers["content-security-policy"]
    assert client.get("/api/info").json()["models"][0]["name"] == "default"
    assert client.get("/static/../models.py").status_code == 404


def test_slow_render_does_not_block_other_requests(client, app, monkeypatch):
    explorer = app.state.explorer
    real = explorer.render
    started = threading.Event()

    def slow(req, m=None):
        started.set()
        time.sleep(1.5)
        return real(req, m)

    monkeypatch.setattr(explorer, "render", slow)
    results = {}

    def post(seq):
        results[seq] = client.post("/api/render", json={"latent": {"seed": seq}, "client": "page1", "seq": seq})

    first = threading.Thread(target=post, args=(1,))
    first.start()
    assert started.wait(10)
    t = time.perf_counter()
    assert client.get("/api/info").status_code == 200
    assert client.get("/api/model", params={"name": "default"}).json()["generation"] == "stylegan2"
    assert time.perf_counter() - t < 0.5, "other requests waited for the slow render"
    # while seq 1 renders, seq 2 queues and seq 3 arrives: 2 is stale and dropped, 3 is drawn
    later = [threading.Thread(target=post, args=(s,)) for s in (2, 3)]
    later[0].start()
    time.sleep(0.2)
    later[1].start()
    for th in [first, *later]:
        th.join(30)
    assert results[1].status_code == 200 and results[3].status_code == 200
    assert results[2].status_code == 204
    assert results[3].headers["X-Image-Name"] == "seed0003"
