"""``stylegan serve --encoder [MODEL=]FILE``: the page's photo upload for any model with an encoder file (a tiny
encoder trained here for a random 32x32 model), through the real command; an encoder made for another model,
an unknown model name or an unreadable file is refused in one line before anything is served."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from stylegan.checkpoints import load_generator
from stylegan.checkpoints.encoder import load_encoder
from stylegan.cli.main import main
from stylegan.latent.inversion import encode
from stylegan.networks.encoder import EncoderConfig
from stylegan.perception.lpips import NoDownloadLoss
from stylegan.train.encoder import EncoderTraining, EncoderTrainingOptions

EMOJI = Path(__file__).resolve().parents[1] / "assets" / "emoji-unseen"


@pytest.fixture(scope="module")
def tiny_encoder(sg2_model, tmp_path_factory):
    """A small encoder for the 32x32 test model, trained for a few steps (it only has to be its own)."""
    G = load_generator(sg2_model)
    out = tmp_path_factory.mktemp("enc") / "enc.safetensors"
    config = EncoderConfig.for_generator(G, input_resolution=16, channel_max=32, fpn_channels=32)
    EncoderTraining(G, NoDownloadLoss(), out, EncoderTrainingOptions(kimg=0.008, batch=4, warmup_steps=2),
                    config=config).run()
    return out


@pytest.fixture
def served(monkeypatch, capsys):
    """Runs ``stylegan serve ARGS`` with uvicorn replaced: (exit code, app or None, stderr)."""
    import uvicorn
    apps = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: apps.append(app))

    def serve(*args):
        with pytest.raises(SystemExit) as done:
            main(["serve", *map(str, args)])
        return done.value.code, (apps.pop() if apps else None), capsys.readouterr().err
    return serve


def api(app, method: str, path: str, **kw):
    async def call():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://localhost") as c:
            return await c.request(method, path, **kw)
    return asyncio.run(call())


def upload(app, model: str, name: str = "cat.png"):
    r = api(app, "POST", "/api/upload/photo", params={"model": model, "filename": name},
            content=(EMOJI / name).read_bytes(), headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 200, r.text
    ws = api(app, "POST", "/api/ws", json={"model": model, "latent": {"kind": "upload", "id": r.json()["id"]}})
    assert ws.status_code == 200, ws.text
    import io
    return r.json(), np.load(io.BytesIO(ws.content))["ws"]


def test_serve_encoder_for_a_model_of_the_folder_and_for_the_network(served, sg2_model, tiny_encoder, tmp_path):
    G, E = load_generator(sg2_model), load_encoder(tiny_encoder)[0]
    expected = encode(G, np.array(Image.open(EMOJI / "cat.png").convert("RGB")), E).ws.numpy()
    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copy(sg2_model, folder / "sg2.safetensors")
    # MODEL=FILE for a model of --model-dir; the built-in --network model keeps its shipped encoder.
    code, app, err = served("--network", "builtin", "--model-dir", folder, "--encoder", f"sg2.safetensors={tiny_encoder}")
    assert code == 0, err
    status = api(app, "GET", "/api/model", params={"name": "sg2.safetensors"}).json()["photo_encoder"]
    assert status["available"] is True and status["encoder"] == "enc.safetensors"
    assert api(app, "GET", "/api/model").json()["photo_encoder"]["encoder"] == "builtin"
    info, ws = upload(app, "sg2.safetensors")
    assert info["encoder"] == "enc.safetensors" and info["steps"] == 0
    assert np.array_equal(ws, expected)                              # the named encoder's w, exactly
    # FILE alone: the --network model's encoder.
    code, app, err = served("--network", sg2_model, "--encoder", tiny_encoder)
    assert code == 0, err
    _, ws = upload(app, "default")
    assert np.array_equal(ws, expected)


def test_serve_refuses_a_mismatching_encoder_in_one_line(served, sg2_model, tiny_encoder, tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copy(sg2_model, folder / "sg2.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not an encoder")
    cases = [
        (["--network", sg2_model, "--encoder", "builtin"], "--encoder default=builtin: "),     # another model's
        (["--network", "builtin", "--encoder", tiny_encoder], f"--encoder default={tiny_encoder}: the encoder"),
        (["--model-dir", folder, "--encoder", f"nope.pkl={tiny_encoder}"], "no model named 'nope.pkl'"),
        (["--network", sg2_model, "--encoder", tmp_path / "junk.safetensors"], "junk.safetensors"),
        (["--network", sg2_model, "--encoder", tiny_encoder, "--encoder", f"default={tiny_encoder}"],
         "two encoders for the model 'default'"),
    ]
    for args, message in cases:
        code, app, err = served(*args)
        assert code == 1 and app is None, (args, err)
        assert err.startswith("error: ") and message in err and err.count("\n") == 1, (args, err)
