"""The notebook API: the commands' workflows as functions returning PIL images and arrays."""

import numpy as np
import pytest
from PIL import Image

import stylegan.api as sg
from stylegan.checkpoints import load_generator
from stylegan.errors import UserInputError
from stylegan.latent.sampling import GenerationRequest
from stylegan.render.video import read_video


def same_pixels(a, b):
    """Equal up to float rounding: batched and single-image convolutions may round a value apart."""
    diff = np.abs(np.asarray(a, dtype=int) - np.asarray(b, dtype=int))
    return diff.max() <= 1 and (diff > 0).mean() < 0.01


def test_generate_images_returns_pil_images_and_their_latents(sg2_model, tmp_path):
    imgs = sg.generate_images(sg2_model, seeds="0-3", truncation_psi=0.7)
    assert len(imgs) == 4 and all(isinstance(im, Image.Image) and im.size == (32, 32) for im in imgs)
    assert imgs.names == ["seed0000", "seed0001", "seed0002", "seed0003"] and imgs.seeds == [0, 1, 2, 3]
    request = GenerationRequest(load_generator(sg2_model), truncation_psi=0.7)
    ref = request.seed_latents([3]).ws                                       # one seed, as NVIDIA
    assert np.array_equal(imgs.ws[3], ref[0])
    assert same_pixels(imgs.arrays[3], request.images(ref)[0])
    grid = imgs.grid(cols=2)
    assert grid.size == (64, 64) and np.array_equal(np.asarray(grid)[32:, 32:], imgs.arrays[3])
    again = sg.generate_images(sg2_model, ws=imgs.ws)            # latents in, same pixels out
    assert np.array_equal(again.arrays, imgs.arrays)
    assert [p.name for p in imgs.save(tmp_path)] == [f"seed000{i}.png" for i in range(4)]


def test_a_loaded_model_file_is_reused(sg2_model):
    assert sg.load_model(sg2_model) is sg.load_model(sg2_model)
    G = load_generator(sg2_model)
    assert sg.load_model(G) is G
    assert len(sg.generate_images(G, seeds=range(2))) == 2


def test_style_mix_as_in_the_paper(sg2_model):
    mix = sg.style_mix(sg2_model, rows=[1, 2], cols=[3], layers="coarse")
    assert mix.layers == [0, 1, 2, 3] and mix.ws.shape == (2, 1, 8, 32)
    assert mix.grid.size == (2 * 32, 3 * 32)
    assert set(mix.images) == {"1-1", "2-2", "3-3", "1-3", "2-3"}
    assert np.array_equal(np.asarray(mix.images["2-3"]), np.asarray(mix.mixed[1][0]))
    ws = sg.seeds_to_ws(sg2_model, [2, 3])
    assert np.array_equal(mix.ws[1, 0], sg.mix_ws(ws[0], ws[1], sg.parse_layers("coarse", sg.load_model(sg2_model))))


def test_video_frames_are_a_lazy_sequence(sg2_model):
    frames = sg.video_frames(sg2_model, "0-2", interpolation="slerp", loop=True, frames_per_transition=4,
                             truncation_psi=0.5)
    assert len(frames) == 12 and frames.frame_size == (32, 32)
    first = next(iter(frames))
    assert same_pixels(first, sg.generate_images(sg2_model, seeds=[0], truncation_psi=0.5).arrays[0])
    assert frames.ws(0, 5).shape == (5, 1, 8, 32)


def test_render_video_writes_a_file(sg2_model, tmp_path):
    path = sg.render_video(sg2_model, [5, 6], tmp_path / "v.mp4", interpolation="lerp", loop=False,
                           num_frames=6, lossless=True)
    frames = read_video(path)
    assert len(frames) == 6
    assert same_pixels(frames[-1], sg.generate_images(sg2_model, seeds=[6]).arrays[0])


def test_latent_arithmetic_round_trip(sg2_model, tmp_path):
    ws = sg.seeds_to_ws(sg2_model, [1, 2])
    direction = sg.difference(ws[:1], ws[1:])
    edited = sg.add_direction(ws[:1], direction, [0.0, 1.0])
    assert np.allclose(edited[1], ws[1], atol=1e-6)
    path = sg.save_ws(tmp_path / "e.npz", edited)
    assert np.array_equal(sg.load_ws(path), edited)
    assert np.allclose(sg.average_ws(ws)[0], ws.mean(0))


def test_bad_arguments_raise_user_errors(sg2_model):
    with pytest.raises(UserInputError, match="either seeds or ws"):
        sg.generate_images(sg2_model)
    with pytest.raises(UserInputError, match="unknown interpolation"):
        sg.video_frames(sg2_model, "0-1", interpolation="bezier")
    with pytest.raises(UserInputError, match="out of range"):
        sg.style_mix(sg2_model, rows=[1], cols=[2], layers="3-20")


def test_long_videos_stream_from_the_generator_into_ffmpeg(sg2_model, tmp_path, monkeypatch):
    """ffmpeg gets frame 0 after the first synthesis batch, long before the last one: frames are
    never collected, so memory does not grow with the video's length."""
    import imageio_ffmpeg
    G = sg.load_model(sg2_model)
    calls = []
    hook = G.synthesis.register_forward_hook(lambda *a: calls.append(1))
    real_writer = imageio_ffmpeg.write_frames
    calls_at_send = []

    def recording_writer(*args, **kwargs):
        gen = real_writer(*args, **kwargs)

        class Recorder:
            def send(self, frame):
                if frame is not None:
                    calls_at_send.append(len(calls))
                return gen.send(frame)

            def close(self):
                gen.close()
        return Recorder()

    monkeypatch.setattr(imageio_ffmpeg, "write_frames", recording_writer)
    try:
        sg.render_video(G, "0-3", tmp_path / "long.mp4", loop=True, frames_per_transition=16, batch_size=4)
    finally:
        hook.remove()
    assert len(calls_at_send) == 64 and len(calls) == 16
    assert calls_at_send[0] == 1 and calls_at_send[4] == 2 and calls_at_send[-1] == 16
