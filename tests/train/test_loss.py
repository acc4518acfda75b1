"""The loss object: phases and their remapping, gradients added with a gain, the D-input blur, and the
per-step sums that make a step independent of how its batch was split (docs/training.md)."""

from __future__ import annotations

import copy

import pytest
import torch
from support.training import tiny_networks

from stylegan.train.augment import AugmentPipe
from stylegan.train.loss import StyleGAN2Loss, blur_filter
from stylegan.train.stats import Stats


def make_loss(cfg="stylegan2", **kwargs):
    _, G, D, _ = tiny_networks(cfg)
    return StyleGAN2Loss(G, D, **{"r1_gamma": 0.1, **kwargs})


def inputs(n=4, seed=0, z_dim=16):
    g = torch.Generator().manual_seed(seed)
    real = torch.rand([n, 3, 16, 16], generator=g) * 2 - 1
    return real, torch.zeros([n, 0]), torch.randn([n, z_dim], generator=g), torch.zeros([n, 0])


def grads(module):
    return {n: p.grad.clone() for n, p in module.named_parameters() if p.grad is not None}


def run_phase(loss, phase, module, gain=1.0, seed=1, stats=None):
    module.requires_grad_(True)
    torch.manual_seed(seed)
    loss.accumulate_gradients(phase, *inputs(), gain=gain, cur_nimg=0, stats=stats or Stats())
    module.requires_grad_(False)
    return grads(module)


def test_a_zero_weight_turns_its_regularisation_phase_into_nothing():
    loss = make_loss(pl_weight=0.0, r1_gamma=0.0)
    assert run_phase(loss, "Greg", loss.G) == {}
    assert run_phase(loss, "Dreg", loss.D) == {}
    assert run_phase(loss, "Gboth", loss.G)              # still the main loss
    with pytest.raises(ValueError, match="unknown phase"):
        loss.accumulate_gradients("Gfoo", *inputs(), gain=1, cur_nimg=0, stats=Stats())


def test_gradients_are_added_and_scaled_by_the_gain():
    loss = make_loss(pl_weight=2.0, style_mixing_prob=0.9)
    for phase, module in (("Gmain", loss.G), ("Greg", loss.G), ("Dmain", loss.D), ("Dreg", loss.D)):
        once = run_phase(loss, phase, module, gain=2.0)
        module.zero_grad(set_to_none=True)
        run_phase(loss, phase, module, gain=1.0)
        twice = run_phase(loss, phase, module, gain=1.0)       # same seed: the same gradient added again
        module.zero_grad(set_to_none=True)
        assert once.keys() == twice.keys() and once
        for name in once:
            assert torch.allclose(once[name], twice[name], rtol=1e-5, atol=1e-7), (phase, name)


def test_d_sees_every_image_through_the_augmentation_pipe():
    loss = make_loss()
    real = inputs()[0]
    loss.augment_pipe = AugmentPipe.from_preset("bgc")
    assert torch.equal(loss.run_D(real, None), loss.D(real, None))      # p = 0: the identity
    loss.augment_pipe.p.fill_(1.0)
    torch.manual_seed(0)
    assert not torch.allclose(loss.run_D(real, None), loss.D(real, None))


def test_the_d_input_blur_fades_linearly_and_uses_nvidias_kernel():
    loss = make_loss(blur_init_sigma=10, blur_fade_kimg=200)
    assert loss.blur_sigma(0) == 10 and loss.blur_sigma(100_000) == 5 and loss.blur_sigma(250_000) == 0
    f = blur_filter(2.0)
    x = torch.arange(-6, 7, dtype=torch.float32)
    assert torch.allclose(f, 2 ** -(x / 2) ** 2 / (2 ** -(x / 2) ** 2).sum())
    assert blur_filter(0.3) is None                          # floor(3 sigma) = 0 taps: no blur
    impulse = torch.zeros([1, 3, 16, 16])
    impulse[..., 8, 8] = 1
    seen = []
    loss.D.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    loss.run_D(impulse, None, blur_sigma=2.0)
    assert torch.allclose(seen[0][0, 0, 2:15, 2:15], torch.outer(f, f), atol=1e-7)


def test_each_micro_batch_starts_from_the_steps_buffers_and_the_step_keeps_their_mean():
    loss = make_loss("stylegan3-t")
    G = loss.G
    start = {n: b.clone() for n, b in G.named_buffers() if n.endswith(("w_avg", "magnitude_ema"))}
    assert len(start) > 2

    def left_by(seed):
        """What NVIDIA's D-phase pass leaves in the buffers of a copy of G for this micro-batch."""
        ref = copy.deepcopy(G)
        z = inputs(seed=seed)[2]
        ref.synthesis(ref.mapping(z, None, update_emas=True), update_emas=True, fused_modconv=False)
        return {n: b for n, b in ref.named_buffers() if n in start}

    a, b = left_by(3), left_by(4)
    loss.begin_step()
    for seed in (3, 4):
        with torch.no_grad():
            loss.run_G(inputs(seed=seed)[2], None, update_emas=True)
        assert all(torch.equal(b, start[n]) for n, b in G.named_buffers() if n in start)   # restored
    loss.end_step(loss.step_sums())
    for name, buf in G.named_buffers():
        if name in start:
            expected = ((a[name].double() + b[name].double()) / 2).float()
            assert torch.equal(buf, expected), name
            assert not torch.equal(buf, start[name]), name


def test_one_micro_batch_keeps_exactly_the_value_its_pass_left():
    loss = make_loss("stylegan3-t")
    ref = copy.deepcopy(loss.G)
    z = inputs(seed=5)[2]
    loss.begin_step()
    with torch.no_grad():
        loss.run_G(z, None, update_emas=True)
    loss.end_step(loss.step_sums())
    ref.synthesis(ref.mapping(z, None, update_emas=True), update_emas=True, fused_modconv=False)
    for (name, b), (_, r) in zip(loss.G.named_buffers(), ref.named_buffers()):
        assert torch.equal(b, r), name


def test_end_step_returns_the_ada_sums_and_sets_the_path_length_mean():
    loss = make_loss(pl_weight=2.0)
    loss.begin_step()
    run_phase(loss, "Dmain", loss.D)
    run_phase(loss, "Greg", loss.G)
    pl_after_pass = loss.pl_sum.clone()
    ada = loss.end_step(loss.step_sums())
    assert ada[1] == 4 and abs(float(ada[0])) <= 4           # one sign per real image
    assert float(loss.pl_mean) == pytest.approx(float(pl_after_pass)) and float(loss.pl_mean) > 0
    loss.begin_step()
    assert loss.ada_count == 0 and loss.pl_count == 0
