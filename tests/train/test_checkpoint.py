"""Training-state files: pickle-free round trip, and a torn or half-written file is never picked."""

from __future__ import annotations

import numpy as np
import torch

from stylegan.train.checkpoint import (
    find_latest_state,
    list_states,
    load_training_state,
    prune_states,
    restore_rng,
    save_training_state,
    state_name,
)


def trained_module():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 1))
    opt = torch.optim.Adam(net.parameters(), lr=0.01, betas=(0.0, 0.99))
    for _ in range(3):
        net(torch.randn(5, 4)).square().mean().backward()
        opt.step()
        opt.zero_grad()
    return net, opt


def save(path, net, opt, nimg=0):
    return save_training_state(path, networks={"net": net}, optimizers={"opt": opt},
                               tensors={"pl_mean": torch.tensor(1.5)},
                               header={"counters": {"cur_nimg": nimg}, "options": {"batch": 4}})


def test_round_trip_restores_weights_optimiser_moments_and_rng(tmp_path):
    net, opt = trained_module()
    np.random.seed(11)
    torch.manual_seed(12)
    path = save(tmp_path / state_name(96), net, opt, 96)
    expected_np, expected_torch = np.random.rand(3), torch.rand(3)
    assert path.read_bytes()[:200].find(b"pickle") < 0

    state = load_training_state(path)
    assert state.counters == {"cur_nimg": 96} and state.options == {"batch": 4}
    assert float(state.tensors["pl_mean"]) == 1.5
    net2, _ = trained_module()
    net2.load_state_dict(state.networks["net"])
    opt2 = torch.optim.Adam(net2.parameters(), lr=0.01, betas=(0.0, 0.99))
    opt2.load_state_dict(state.optimizers["opt"])
    for a, b in zip(opt.state_dict()["state"].values(), opt2.state_dict()["state"].values()):
        for key in a:
            assert torch.equal(a[key], b[key])
    assert opt2.state_dict()["param_groups"][0]["betas"][1] == 0.99
    restore_rng(state)
    assert np.array_equal(np.random.rand(3), expected_np) and torch.equal(torch.rand(3), expected_torch)


def test_latest_state_skips_torn_files_and_temporaries(tmp_path):
    net, opt = trained_module()
    run = tmp_path / "00000-run"
    good = save(run / state_name(100), net, opt, 100)
    newer = save(run / state_name(200), net, opt, 200)
    assert find_latest_state(tmp_path) == newer
    newer.write_bytes(newer.read_bytes()[: newer.stat().st_size // 2])      # torn copy
    (run / f".{state_name(300)}.abc.tmp").write_bytes(good.read_bytes()[:100])  # killed mid-write
    assert find_latest_state(tmp_path) == good
    assert find_latest_state(run) == good
    assert find_latest_state(tmp_path / "missing") is None


def test_prune_keeps_the_newest(tmp_path):
    net, opt = trained_module()
    for n in (8, 16, 24, 32):
        save(tmp_path / state_name(n), net, opt, n)
    prune_states(tmp_path, keep=2)
    assert [p.name for p in list_states(tmp_path)] == [state_name(32), state_name(24)]
