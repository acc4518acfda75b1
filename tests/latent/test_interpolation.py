"""Interpolation math, frame timing, and the lazy frame generator of videos."""

import weakref

import numpy as np
import pytest
import torch

from stylegan.checkpoints import load_generator
from stylegan.errors import UserInputError
from stylegan.latent.interpolation import (
    EASINGS,
    Interpolator,
    LatentWalk,
    Motion,
    ease,
    frame_positions,
    grid_keyframes,
    slerp,
    walk_frames,
)
from stylegan.api import generate_images
from stylegan.latent.sampling import GenerationRequest


@pytest.fixture(scope="module")
def G(sg2_model):
    return load_generator(sg2_model)


def same_pixels(a, b):
    """Equal up to float rounding: batched and single-image convolutions may round a value apart."""
    diff = np.abs(np.asarray(a, dtype=int) - np.asarray(b, dtype=int))
    return diff.max() <= 1 and (diff > 0).mean() < 0.01


def test_walk_and_loop_frame_counts():
    walk = frame_positions(4, frames_per_transition=5)
    assert len(walk) == 3 * 5 + 1 and walk[0] == 0 and walk[-1] == 3
    assert np.allclose(np.diff(walk), 0.2)
    loop = frame_positions(4, frames_per_transition=5, loop=True)
    assert len(loop) == 4 * 5 and loop[-1] == pytest.approx(4 - 0.2)   # the next frame would be keyframe 0 again
    assert len(frame_positions(3, num_frames=17)) == 17 and frame_positions(3, num_frames=17)[-1] == 2
    assert len(frame_positions(1, num_frames=9, loop=True)) == 9       # a still latent, e.g. for a StyleGAN3 spin
    with pytest.raises(UserInputError, match="at least two keyframes"):
        frame_positions(1, frames_per_transition=10)


@pytest.mark.parametrize("name", list(EASINGS))
def test_easings_map_0_to_0_and_1_to_1_monotonically(name):
    t = np.linspace(0, 1, 101)
    e = ease(t, name)
    assert e[0] == 0 and e[-1] == 1 and (np.diff(e) >= 0).all()
    if name != "linear":   # eased transitions start and end at rest
        assert ease(0.01, name) < 0.01 and ease(0.99, name) > 0.99


def test_easing_keeps_keyframes_on_frames():
    pos = frame_positions(3, frames_per_transition=4, easing="sine")
    assert list(pos[::4]) == [0, 1, 2]
    assert pos[1] < 0.25 < pos[2] < 0.75 < pos[3]                    # slow near keyframes, fast between


def test_slerp_stays_on_the_sphere():
    a, b = np.array([1.0, 0, 0]), np.array([0, 1.0, 0])
    assert np.allclose(slerp(a, b, 0.5), [2**-0.5, 2**-0.5, 0])
    z = np.random.RandomState(0).randn(2, 512)
    z[1] *= np.linalg.norm(z[0]) / np.linalg.norm(z[1])
    mid = slerp(z[0], z[1], np.linspace(0, 1, 7)[:, None])
    assert np.allclose(np.linalg.norm(mid, axis=-1), np.linalg.norm(z[0]))
    assert np.array_equal(mid[0], z[0]) and np.array_equal(mid[-1], z[1])
    assert np.allclose(slerp(a, a, 0.3), a)                           # parallel vectors: no division by zero


@pytest.mark.parametrize("kind", ["lerp", "slerp", "cubic"])
@pytest.mark.parametrize("loop", [False, True])
def test_interpolators_pass_exactly_through_keyframes(kind, loop):
    keys = np.random.RandomState(1).randn(4, 3, 5).astype(np.float32)
    f = Interpolator(keys, kind, loop)
    assert np.array_equal(f([0, 1, 2, 3]), keys)
    if loop:
        assert np.array_equal(f([4]), keys[:1])


def test_cubic_loop_closes_smoothly():
    keys = np.random.RandomState(2).randn(5, 8)
    f = Interpolator(keys, "cubic", loop=True)
    eps = 1e-3
    v_end = (f([5.0 - eps]) - f([5.0 - 2 * eps])) / eps                # velocity arriving back at keyframe 0
    v_start = (f([eps]) - f([0.0])) / eps                              # velocity leaving keyframe 0
    assert np.allclose(v_end, v_start, atol=0.05 * np.abs(v_start).max())
    lerp = Interpolator(keys, "lerp", loop=True)                       # lerp has a kink there, by contrast
    assert not np.allclose((lerp([5 - eps]) - lerp([5 - 2 * eps])) / eps, (lerp([eps]) - lerp([0])) / eps, atol=0.1)


def test_grid_keyframes_are_dealt_like_gen_video():
    assert grid_keyframes(8, 4).tolist() == [[0, 1], [2, 3], [4, 5], [6, 7]]
    assert grid_keyframes(3, 2, num_keyframes=3).tolist() == [[0, 1, 2], [0, 1, 2]]
    shuffled = grid_keyframes(8, 2, shuffle_seed=0)
    assert sorted(shuffled.ravel()) == list(range(8)) and shuffled.tolist() != grid_keyframes(8, 2).tolist()
    with pytest.raises(UserInputError, match="needs at least 4 keyframe latents"):
        grid_keyframes(3, 4)


def test_motion_loops_back_and_walks_forward():
    m = Motion(translate=(0.1, 0), translate_anim=(0.4, 0.2), rotate_anim=360)
    assert m.at(0, 10, loop=True) == ((0.1, 0.0), 0.0)
    (tx, ty), rot = m.at(5, 10, loop=True)
    assert (tx, ty, rot) == pytest.approx((0.5, 0.2, 180))            # half-way: furthest out, half a turn
    (tx, ty), rot = m.at(9, 10, loop=False)
    assert (tx, ty, rot) == pytest.approx((0.5, 0.2, 360))


def test_walk_endpoints_are_the_keyframe_images(G):
    request = GenerationRequest(G)
    ws = request.seed_latents([3, 9]).ws
    walk = LatentWalk(request, ws=ws[None], kind="lerp", loop=False)
    pos = frame_positions(2, frames_per_transition=6)
    frames = list(walk_frames(request, walk, pos, batch_size=4))
    assert len(frames) == 7
    ref = np.concatenate([generate_images(G, [3]).arrays, generate_images(G, [9]).arrays])
    assert same_pixels(frames[0], ref[0]) and same_pixels(frames[-1], ref[1])
    assert not same_pixels(frames[3], ref[0]) and not same_pixels(frames[3], ref[1])


def test_slerp_walk_maps_z_each_frame(G):
    z = np.random.RandomState(0).randn(1, 2, G.z_dim)
    walk = LatentWalk(GenerationRequest(G, truncation_psi=0.5), z=z, kind="slerp", loop=False)
    ws = walk.ws([0.0, 0.5, 1.0])
    assert ws.shape == (3, 1, G.num_ws, G.w_dim)
    direct = G.mapping(torch.from_numpy(z[0]).float(), None, truncation_psi=0.5)
    assert torch.allclose(ws[[0, 2], 0], direct, atol=1e-6)


def test_frames_are_made_lazily_and_not_kept(G):
    """Each frame is handed out as soon as its batch is done: the consumer gets frame 0 after one
    synthesis call, and earlier frames are garbage as soon as the consumer drops them."""
    calls = []
    hook = G.synthesis.register_forward_hook(lambda *a: calls.append(1))
    try:
        request = GenerationRequest(G)
        ws = request.seed_latents([1, 2, 3]).ws
        walk = LatentWalk(request, ws=ws[None], kind="cubic", loop=True)
        pos = frame_positions(3, frames_per_transition=10, loop=True)
        frames = walk_frames(request, walk, pos, batch_size=2)
        refs = []
        for i, frame in enumerate(frames):
            if i == 0:
                assert len(calls) == 1                        # 1 of 15 batches made so far
            refs.append(weakref.ref(frame))
            del frame
            assert sum(r() is not None for r in refs) <= 2    # the generator keeps at most its current batch
        assert len(refs) == 30 and len(calls) == 15
    finally:
        hook.remove()
