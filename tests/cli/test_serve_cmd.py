"""``stylegan serve``: what it listens on, and bad arguments failing before anything is served."""

import asyncio

import httpx
import pytest

from stylegan.cli.main import main
from stylegan.cli.serve import is_loopback


def run(args):
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in args])
    return exit_info.value.code


@pytest.fixture
def fake_uvicorn(monkeypatch):
    """Capture what ``serve`` would run instead of opening a port."""
    import uvicorn
    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append((app, kw)))
    return calls


@pytest.mark.parametrize("host, local", [("127.0.0.1", True), ("localhost", True), ("::1", True), ("127.0.0.2", True),
                                         ("0.0.0.0", False), ("::", False), ("192.168.1.5", False), ("gpu01", False)])
def test_is_loopback(host, local):
    assert is_loopback(host) is local


def test_binds_localhost_by_default(sg2_model, fake_uvicorn, capsys):
    assert run(["serve", "--network", sg2_model, "--port", "8123"]) == 0
    (app, kw), = fake_uvicorn
    assert kw["host"] == "127.0.0.1" and kw["port"] == 8123
    err = capsys.readouterr().err
    assert "warning" not in err and "http://localhost:8123" in err
    transport = httpx.ASGITransport(app=app)

    async def get(host):
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{host}") as c:
            return (await c.get("/api/info")).status_code
    assert asyncio.run(get("localhost:8123")) == 200
    assert asyncio.run(get("evil.example")) == 400       # other Host names are refused (DNS rebinding)


def test_warns_when_listening_on_other_addresses(sg2_model, fake_uvicorn, capsys):
    assert run(["serve", "--network", sg2_model, "--host", "0.0.0.0"]) == 0
    (_, kw), = fake_uvicorn
    assert kw["host"] == "0.0.0.0"
    assert "warning: listening on 0.0.0.0" in capsys.readouterr().err


def test_bad_network_fails_at_start(tmp_path, fake_uvicorn, capsys):
    assert run(["serve", "--network", tmp_path / "missing.pkl"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "missing.pkl" in err and len(err.splitlines()) == 1
    assert not fake_uvicorn


def test_empty_model_dir_fails_at_start(tmp_path, fake_uvicorn, capsys):
    assert run(["serve", "--model-dir", tmp_path]) == 1
    assert "holds no model files" in capsys.readouterr().err
    assert not fake_uvicorn
