"""``stylegan latent``: arithmetic on .npz files, checked on the numbers they hold."""

import numpy as np
import pytest

from stylegan.checkpoints import load_generator
from stylegan.cli.main import main
from stylegan.latent.io import load_directions, load_npz_extra, load_ws, save_ws
from stylegan.latent.sampling import GenerationRequest


def run(capsys, *args):
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in args])
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


@pytest.fixture(scope="module")
def G(sg2_model):
    return load_generator(sg2_model)


@pytest.fixture
def files(G, tmp_path):
    a = save_ws(tmp_path / "a.npz", GenerationRequest(G).seed_latents([1]).ws)
    b = save_ws(tmp_path / "b.npz", GenerationRequest(G).seed_latents([2]).ws)
    return a, b, tmp_path


def test_from_seeds_and_info(sg2_model, G, tmp_path, capsys):
    code, _, _ = run(capsys, "latent", "from-seeds", "--network", sg2_model, "--seeds", "0-2", "--trunc", "0.7",
                     "-o", tmp_path / "s.npz")
    assert code == 0
    data = load_npz_extra(tmp_path / "s.npz")
    assert np.array_equal(data["ws"][2], GenerationRequest(G, 0.7).seed_latents([2]).ws[0])
    assert np.array_equal(data["w"], data["ws"]) and data["seeds"].tolist() == [0, 1, 2]
    code, out, _ = run(capsys, "latent", "info", tmp_path / "s.npz")
    assert code == 0 and "ws          float32 [3, 8, 32]" in out and "seeds       int64 [3] = [0, 1, 2]" in out


def test_diff_then_add_walks_from_a_to_b(files, capsys):
    a, b, tmp = files
    assert run(capsys, "latent", "diff", a, b, "-o", tmp / "d.npz")[0] == 0
    d = load_directions(tmp / "d.npz")
    assert d["method"] == "difference" and d["names"] == ["a->b"]
    assert run(capsys, "latent", "add", a, "--direction", tmp / "d.npz", "--alpha", "0,0.5,1", "-o", tmp / "ab.npz")[0] == 0
    out = load_ws(tmp / "ab.npz")
    assert out.shape == (3, 8, 32)
    assert np.allclose(out[0], load_ws(a)[0]) and np.allclose(out[2], load_ws(b)[0], atol=1e-6)
    assert np.allclose(out[1], (load_ws(a)[0] + load_ws(b)[0]) / 2, atol=1e-6)


def test_add_on_named_layers_needs_the_model(sg2_model, files, capsys):
    a, b, tmp = files
    run(capsys, "latent", "diff", a, b, "--name", "smile", "-o", tmp / "d.npz")
    code, _, err = run(capsys, "latent", "add", a, "--direction", tmp / "d.npz", "--layers", "coarse", "-o", tmp / "x.npz")
    assert code == 1 and "depends on the model" in err and not (tmp / "x.npz").exists()
    code, _, _ = run(capsys, "latent", "add", "--network", sg2_model, a, "--direction", tmp / "d.npz",
                     "--index", "smile", "--alpha", "1", "--layers", "coarse", "-o", tmp / "x.npz")
    out, wa, wb = load_ws(tmp / "x.npz")[0], load_ws(a)[0], load_ws(b)[0]
    assert code == 0 and np.allclose(out[:4], wb[:4], atol=1e-6) and np.array_equal(out[4:], wa[4:])


def test_average_lerp_mix_truncate(sg2_model, G, files, capsys):
    a, b, tmp = files
    wa, wb = load_ws(a)[0], load_ws(b)[0]
    run(capsys, "latent", "average", a, b, "--weights", "3,1", "-o", tmp / "avg.npz")
    assert np.allclose(load_ws(tmp / "avg.npz")[0], 0.75 * wa + 0.25 * wb, atol=1e-6)
    run(capsys, "latent", "lerp", a, b, "--t", "0.25", "-o", tmp / "l.npz")
    assert np.allclose(load_ws(tmp / "l.npz")[0], 0.75 * wa + 0.25 * wb, atol=1e-6)
    run(capsys, "latent", "mix", a, b, "--layers", "6-", "-o", tmp / "m.npz")
    m = load_ws(tmp / "m.npz")[0]
    assert np.array_equal(m[:6], wa[:6]) and np.array_equal(m[6:], wb[6:])
    run(capsys, "latent", "truncate", "--network", sg2_model, a, "--psi", "0", "-o", tmp / "t.npz")
    assert np.allclose(load_ws(tmp / "t.npz")[0], G.mapping.w_avg.numpy())


@pytest.mark.parametrize("args, message", [
    (["add", "A", "--direction", "A", "-o", "x.npz"], "holds no directions"),
    (["add", "A", "--direction", "D", "--index", "3", "-o", "x.npz"], "index 3 is out of range"),
    (["add", "A", "--direction", "D", "--alpha", "1,x", "-o", "x.npz"], "--alpha expects numbers"),
    (["mix", "A", "B", "--layers", "0-8", "-o", "x.npz"], "layer 8 is out of range"),
    (["lerp", "A", "missing.npz", "-o", "x.npz"], "file not found"),
    (["average", "A", "B", "--weights", "1", "-o", "x.npz"], "need 2 weights"),
])
def test_errors(files, capsys, monkeypatch, args, message):
    a, b, tmp = files
    run(capsys, "latent", "diff", a, b, "-o", tmp / "D.npz")
    monkeypatch.chdir(tmp)
    args = [{"A": a, "B": b, "D": tmp / "D.npz"}.get(x, x) for x in args]
    code, _, err = run(capsys, "latent", *args)
    assert code == 1 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp / "x.npz").exists()
