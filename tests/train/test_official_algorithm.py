"""The training algorithm is NVIDIA's (StyleGAN3 ``train.py`` / ``training_loop.py`` / ``loss.py``), item by
item: one test per row of the table in docs/training.md ("Same algorithm as NVIDIA's"). Where a test
recomputes something, it does so from the published definition, independently of our code."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from support.training import tiny_networks

from stylegan.errors import UserInputError
from stylegan.train.augment import AugmentPipe
from stylegan.train.config import TrainingOptions
from stylegan.train.loop import TrainingRun, ema_beta, make_phases, optimizer_settings
from stylegan.train.loss import StyleGAN2Loss, blur_filter
from stylegan.train.resume import transfer_options
from stylegan.train.stats import Stats


def batch(n=8, seed=0, z_dim=16):
    g = torch.Generator().manual_seed(seed)
    return torch.rand([n, 3, 16, 16], generator=g) * 2 - 1, torch.zeros([n, 0]), torch.randn([n, z_dim], generator=g)


def tiny_run(data, tmp_path, **options):
    sizes = {"cbase": 256, "cmax": 16, "z_dim": 16, "w_dim": 16, "map_depth": 2, "gamma": 0.1, "batch": 4, "kimg": 1}
    return TrainingRun.build(data, tmp_path, TrainingOptions(**{**sizes, **options}), quiet=True)


def test_presets_are_nvidias_train_py():
    sg2, t, r = (TrainingOptions(cfg=cfg).resolved(256) for cfg in ("stylegan2", "stylegan3-t", "stylegan3-r"))
    assert (sg2.glr, sg2.dlr, sg2.map_depth, sg2.style_mixing, sg2.pl_weight) == (0.002, 0.002, 8, 0.9, 2.0)
    for o in (t, r):
        assert (o.glr, o.dlr, o.map_depth, o.style_mixing, o.pl_weight) == (0.0025, 0.002, 2, 0.0, 0.0)
    for o in (sg2, t, r):
        assert o.gamma == pytest.approx(0.0002 * 256**2 / 32) and o.ema_kimg == 10 and o.ema_rampup == 0.05
        assert (o.target, o.ada_kimg, o.ada_interval, o.augpipe, o.mbstd_group) == (0.6, 500, 4, "bgc", 4)
        assert (o.pl_batch_shrink, o.pl_decay, o.d_reg_interval) == (2, 0.01, 16)


def test_style_mixing_draws_one_cutoff_per_minibatch():
    _, G, D, _ = tiny_networks()
    _, c, z = batch()
    plain = G.mapping(z, c)
    num_ws = plain.shape[1]
    for prob, expect_unmixed in ((1.0, False), (0.5, True)):
        loss = StyleGAN2Loss(G, D, style_mixing_prob=prob)
        cutoffs = []
        for seed in range(24):
            torch.manual_seed(seed)
            _, ws = loss.run_G(z, c)
            same = (ws == plain).all(dim=2)                        # [N, num_ws]: layer kept from z
            first_mixed = [int(row.logical_not().nonzero()[0]) if not row.all() else num_ws for row in same]
            assert len(set(first_mixed)) == 1, f"cutoffs differ inside one minibatch: {first_mixed}"
            assert all(row[:first_mixed[0]].all() and not row[first_mixed[0]:].any() for row in same)
            cutoffs.append(first_mixed[0])
        assert all(1 <= k <= num_ws for k in cutoffs) and len(set(cutoffs) - {num_ws}) >= 2
        assert (num_ws in cutoffs) == expect_unmixed               # with p < 1 some minibatches are not mixed


def test_path_length_penalty_uses_the_mean_updated_by_this_batch_with_its_gradient():
    _, G, D, _ = tiny_networks()
    loss = StyleGAN2Loss(G, D, pl_weight=2.0)
    loss.pl_mean.fill_(0.05)
    _, c, z = batch()

    def pl_grads(mean_rule):
        """NVIDIA's definition, recomputed: lengths of J^T y, the running mean moved toward their mean."""
        G.requires_grad_(True)
        torch.manual_seed(11)
        img, ws = loss.run_G(z[:4], c[:4])
        noise = torch.randn_like(img) / math.sqrt(img.shape[2] * img.shape[3])
        (g,) = torch.autograd.grad((img * noise).sum(), ws, create_graph=True)
        lengths = g.square().sum(2).mean(1).sqrt()
        penalty = (lengths - mean_rule(lengths)).square()
        (penalty * 2.0).mean().backward()
        G.requires_grad_(False)
        out = {n: p.grad.clone() for n, p in G.named_parameters() if p.grad is not None}
        G.zero_grad(set_to_none=True)
        return out, float(penalty.detach().mean()), float(lengths.detach().mean())

    official, official_penalty, batch_mean = pl_grads(lambda x: 0.05 + 0.01 * (x.mean() - 0.05))
    _, previous_penalty, _ = pl_grads(lambda x: torch.tensor(0.05))
    detached, _, _ = pl_grads(lambda x: (0.05 + 0.01 * (x.mean() - 0.05)).detach())
    G.requires_grad_(True)
    torch.manual_seed(11)
    stats = Stats()
    loss.begin_step()
    loss.accumulate_gradients("Greg", *batch(), c, gain=1.0, cur_nimg=0, stats=stats)
    G.requires_grad_(False)
    ours = {n: p.grad.clone() for n, p in G.named_parameters() if p.grad is not None}
    assert stats.collect()["Loss/pl_penalty"]["mean"] == pytest.approx(official_penalty, rel=1e-5)
    assert official_penalty != pytest.approx(previous_penalty, rel=1e-4)
    for name in official:
        assert torch.allclose(ours[name], official[name], rtol=1e-4, atol=1e-9), name
    assert any(not torch.allclose(official[n], detached[n], rtol=1e-6, atol=0) for n in official)
    loss.end_step(loss.step_sums())
    assert float(loss.pl_mean) == pytest.approx(0.05 + 0.01 * (batch_mean - 0.05), rel=1e-6)


def test_r1_is_the_gradient_through_the_augmentation_of_the_real_images():
    _, G, D, _ = tiny_networks()
    pipe = AugmentPipe.from_preset("bgc")
    pipe.p.fill_(1.0)
    loss = StyleGAN2Loss(G, D, pipe, r1_gamma=1.0)
    real, c, z = batch()
    stats = Stats()
    torch.manual_seed(5)
    D.requires_grad_(True)
    loss.accumulate_gradients("Dreg", real, c, z, c, gain=1.0, cur_nimg=0, stats=stats)
    D.requires_grad_(False)
    ours = stats.collect()["Loss/r1_penalty"]["mean"]

    def r1(augment):
        torch.manual_seed(5)
        x = real.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(D(augment(x), c).sum(), x)
        return float(g.square().sum([1, 2, 3]).mean())

    assert ours == pytest.approx(r1(pipe), rel=1e-5)
    assert ours != pytest.approx(r1(lambda x: x), rel=1e-3)       # the augmentations were really applied


def test_lazy_regularisation_intervals_and_their_learning_rate_and_beta_scaling():
    for cfg, g_phases in (("stylegan2", ["Gmain", "Greg"]), ("stylegan3-t", ["Gboth"]), ("stylegan3-r", ["Gboth"])):
        for gamma in (1.0, 0.0):                # NVIDIA keeps D's lazy phases (and their scaling) with gamma 0
            opts, G, D, _ = tiny_networks(cfg, gamma=gamma)
            phases = make_phases(opts, G, D)
            assert [p.name for p in phases] == g_phases + ["Dmain", "Dreg"]
            assert [p.interval for p in phases] == ([1, 4] if cfg == "stylegan2" else [1]) + [1, 16]
            g_group, d_group = phases[0].opt.param_groups[0], phases[-1].opt.param_groups[0]
            g_ratio = 4 / 5 if cfg == "stylegan2" else 1
            assert g_group["lr"] == pytest.approx(opts.glr * g_ratio)
            assert g_group["betas"] == pytest.approx((0, 0.99 ** g_ratio)) and g_group["eps"] == 1e-8
            assert d_group["lr"] == pytest.approx(0.002 * 16 / 17)
            assert d_group["betas"] == pytest.approx((0, 0.99 ** (16 / 17)))
    assert optimizer_settings(TrainingOptions(cfg="stylegan3-t").resolved(64))["G"][0] == 0.0025


def test_ema_half_life_ramps_up_with_the_images_shown(blobs_dataset, tmp_path):
    assert ema_beta(32, 10, 0.05, 0) == 0.0                                   # first step: G_ema = G
    assert ema_beta(32, 10, 0.05, 100_000) == pytest.approx(0.5 ** (32 / 5000))
    assert ema_beta(32, 10, 0.05, 10**7) == pytest.approx(0.5 ** (32 / 10000))
    assert ema_beta(32, 10, None, 0) == pytest.approx(0.5 ** (32 / 10000))    # transfer learning: no ramp-up
    run = tiny_run(blobs_dataset, tmp_path)
    run.step(False)
    for (name, p), q in zip(run.G.named_parameters(), run.G_ema.parameters()):
        assert torch.equal(p, q), name
    run.step(False)
    assert not all(torch.equal(p, q) for p, q in zip(run.G.parameters(), run.G_ema.parameters()))
    run.close()


def test_ada_adjusts_p_every_four_minibatches_from_all_real_passes(blobs_dataset, tmp_path):
    run = tiny_run(blobs_dataset, tmp_path, target=-2.0, ada_kimg=0.1)       # r_t > -2 always: p rises
    step_size = 4 * 4 / (0.1 * 1000)
    seen, counts = [], []
    for _ in range(8):
        run.step(False)
        seen.append(run.augment_p)
        counts.append(float(run.ada_acc[1]))
    assert seen == pytest.approx([0, 0, 0, step_size, step_size, step_size, step_size, 2 * step_size])
    assert counts[:3] == [8, 12, 16]          # step 0 also runs the R1 pass, whose signs count as well
    assert TrainingOptions().target == 0.6 and TrainingOptions().ada_interval == 4
    run.close()


def test_stylegan3_r_blurs_d_inputs_with_nvidias_kernel_fading_out():
    r = TrainingOptions(cfg="stylegan3-r", batch=64).resolved(64)
    assert (r.blur_sigma, r.blur_fade_kimg) == (10.0, 64 * 200 / 32)
    assert TrainingOptions(cfg="stylegan3-t").resolved(64).blur_sigma == 0.0
    assert transfer_options(TrainingOptions(cfg="stylegan3-r"), set(), _Source(), "x").blur_sigma == 0.0
    f = blur_filter(10.0)
    x = torch.arange(-30, 31, dtype=torch.float32)
    assert f.shape == (61,) and torch.allclose(f, torch.exp2(-(x / 10) ** 2) / torch.exp2(-(x / 10) ** 2).sum())
    loss = StyleGAN2Loss(*tiny_networks("stylegan3-r")[1:3], blur_init_sigma=r.blur_sigma,
                         blur_fade_kimg=r.blur_fade_kimg)
    assert [loss.blur_sigma(n) for n in (0, 200_000, 400_000, 500_000)] == pytest.approx([10, 5, 0, 0])


class _Source:
    """A transfer source as the checkpoint reader returns it (only what transfer_options reads)."""
    G_ema = None

    def __init__(self):
        self.G = tiny_networks("stylegan3-r")[1]


def test_mapping_layers_learn_100_times_slower():
    for cfg in ("stylegan2", "stylegan3-t"):
        _, G, D, _ = tiny_networks(cfg, c_dim=3, cond=True)
        for net in (G.mapping, D.mapping):
            fcs = [getattr(net, f"fc{i}") for i in range(net.num_layers)]
            for fc in fcs:
                fan_in = fc.weight.shape[1]
                assert fc.weight_gain == pytest.approx(0.01 / math.sqrt(fan_in)) and fc.bias_gain == 0.01
            assert 50 < float(torch.cat([fc.weight.flatten() for fc in fcs]).std()) < 200    # N(0, 1/0.01^2)
            assert net.embed.bias_gain == 1                      # the label embedding learns at full rate


def test_minibatch_std_groups_are_strided_within_each_micro_batch(blobs_dataset, tmp_path):
    run = tiny_run(blobs_dataset, tmp_path, batch=2, mbstd_group=4)           # ADA's rule: min(group, batch_gpu)
    assert run.d_cfg.mbstd_group_size == 2 and run.D.b4.mbstd.group_size == 2
    run.close()
    with pytest.raises(UserInputError, match="divisible by --mbstd-group 4"):
        tiny_run(blobs_dataset, tmp_path, batch=6, mbstd_group=4)
    _, _, D, _ = tiny_networks()
    x = torch.randn([8, 16, 4, 4])
    out = D.b4.mbstd(x)
    for n in range(8):                      # sample n is in group n mod (N / G): {0, 2, 4, 6} and {1, 3, 5, 7}
        group = x[n % 2::2]
        expected = (group.var(dim=0, unbiased=False) + 1e-8).sqrt().mean()
        assert torch.allclose(out[n, 16], expected.expand(4, 4), atol=1e-6)


def test_g_buffers_move_inside_the_d_pass_and_are_used_at_once():
    _, G, D, _ = tiny_networks("stylegan3-t")
    reference = copy.deepcopy(G)
    loss = StyleGAN2Loss(G, D, r1_gamma=0.0)
    real, c, z = batch()
    torch.manual_seed(2)
    D.requires_grad_(True)
    loss.begin_step()
    loss.accumulate_gradients("Dmain", real, c, z, c, gain=1.0, cur_nimg=0, stats=Stats())
    loss.end_step(loss.step_sums())
    torch.manual_seed(2)
    # NVIDIA's D pass: mapping and synthesis with update_emas=True; each layer's EMA moves before it is used.
    reference.synthesis(reference.mapping(z, c, update_emas=True), update_emas=True, fused_modconv=False)
    names = [n for n, _ in G.named_buffers() if n.endswith(("w_avg", "magnitude_ema"))]
    ours, ref = dict(G.named_buffers()), dict(reference.named_buffers())
    assert len(names) > 3 and all(torch.equal(ours[n], ref[n]) for n in names)
    before = dict(tiny_networks("stylegan3-t")[1].named_buffers())
    late = [n for n in names if n.endswith("magnitude_ema")][-1]
    assert not torch.equal(ours[late], before[late])
    first_layer = getattr(G.synthesis, G.synthesis.layer_names[0])
    assert np.isclose(G.mapping.w_avg_beta, 0.998) and np.isclose(first_layer.magnitude_ema_beta, 0.5 ** (4 / 20000))
