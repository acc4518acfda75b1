"""``stylegan video``: frame counts, decodable files, endpoint frames, grids, StyleGAN3 motion, errors."""

import numpy as np
import pytest
from PIL import Image
from support.cli import run

from stylegan.checkpoints import load_generator
from stylegan.api import generate_images
from stylegan.render.video import read_video, video_info


def same_pixels(a, b):
    """Equal up to float rounding: batched and single-image convolutions may round a value apart."""
    diff = np.abs(np.asarray(a, dtype=int) - np.asarray(b, dtype=int))
    return diff.max() <= 1 and (diff > 0).mean() < 0.01


def mean_error(a, b):
    return float(np.abs(np.asarray(a, dtype=int) - np.asarray(b, dtype=int)).mean())


def assert_is_image(frame, image, others):
    """A decoded lossy frame shows ``image``: far closer to it than to any other image of the video
    (random-weight 32x32 images are all fine detail, the hardest case for 4:2:0 H.264)."""
    error = mean_error(frame, image)
    assert error < 20 and all(error < 0.5 * mean_error(frame, o) for o in others), \
        (error, [mean_error(frame, o) for o in others])


def test_walk_ends_exactly_on_its_keyframes(sg2_model, tmp_path, capsys):
    out = tmp_path / "walk.mp4"
    code, err = run(capsys, "video", "--network", sg2_model, "--seeds", "0,1,2", "--interp", "lerp", "--no-loop",
                    "--transition-frames", "4", "--trunc", "0.7", "--lossless", "--output", out)
    assert code == 0 and "(9 frames, 32x32, walk through 3 keyframe(s)" in err
    assert video_info(out) == {"num_frames": 9, "fps": 60.0, "size": (32, 32)}   # (3 - 1) * 4 + 1
    frames = read_video(out)
    ends = generate_images(load_generator(sg2_model), [0, 1, 2], truncation_psi=0.7).arrays
    assert same_pixels(frames[0], ends[0]) and same_pixels(frames[4], ends[1]) and same_pixels(frames[-1], ends[2])
    assert not any(same_pixels(frames[i], e) for i in (1, 2, 3, 5, 6, 7) for e in ends)
    assert [p.name for p in tmp_path.iterdir()] == ["walk.mp4"]


def test_default_h264_walk(sg2_model, tmp_path, capsys):
    out = tmp_path / "walk.mp4"
    code, _ = run(capsys, "video", "--network", sg2_model, "--seeds", "0,1", "--no-loop", "--transition-frames", "3",
                  "--easing", "smoothstep", "--output", out)
    assert code == 0 and video_info(out) == {"num_frames": 4, "fps": 60.0, "size": (32, 32)}
    frames = read_video(out)
    a, b = generate_images(load_generator(sg2_model), [0, 1]).arrays
    assert_is_image(frames[0], a, [b])
    assert_is_image(frames[-1], b, [a])


def test_looping_gif_grid(sg2_model, tmp_path, capsys):
    out = tmp_path / "grid.gif"
    code, _ = run(capsys, "video", "--network", sg2_model, "--seeds", "0-5", "--grid", "1x2", "--keyframes", "3",
                  "--transition-frames", "2", "--easing", "sine", "--output", out)
    assert code == 0
    with Image.open(out) as im:
        assert im.size == (64, 32) and im.n_frames == 3 * 2 and im.info["duration"] == 40 and im.info["loop"] == 0
    frames = read_video(out)
    seeds = generate_images(load_generator(sg2_model), [0, 1, 2, 3, 4, 5]).arrays
    # cell 0 walks through seeds 0, 1, 2 and cell 1 through 3, 4, 5; keyframe k is at frame 2k
    for k in range(3):
        assert_is_image(frames[2 * k][:, :32], seeds[k], [s for i, s in enumerate(seeds) if i != k])
        assert_is_image(frames[2 * k][:, 32:], seeds[3 + k], [s for i, s in enumerate(seeds) if i != 3 + k])


def test_walk_between_saved_latents(sg2_model, tmp_path, capsys):
    run(capsys, "generate", "--network", sg2_model, "--seeds", "4,8", "--save-ws", "--outdir", tmp_path)
    out = tmp_path / "ab.mkv"
    code, _ = run(capsys, "video", "--network", sg2_model, "--ws", tmp_path / "seed0004.npz",
                  "--ws", tmp_path / "seed0008.npz", "--no-loop", "--frames", "5", "--lossless", "--output", out)
    assert code == 0 and video_info(out)["num_frames"] == 5
    frames = read_video(out)
    assert same_pixels(frames[0], Image.open(tmp_path / "seed0004.png"))
    assert same_pixels(frames[-1], Image.open(tmp_path / "seed0008.png"))


def test_stylegan3_spin(sg3_model, tmp_path, capsys):
    out = tmp_path / "spin.mp4"
    code, _ = run(capsys, "video", "--network", sg3_model, "--seeds", "3", "--frames", "4", "--rotate-anim", "360",
                  "--lossless", "--output", out)
    assert code == 0
    frames = read_video(out)
    assert len(frames) == 4                                   # a loop: 0, 90, 180, 270 degrees
    G = load_generator(sg3_model)
    for i, angle in enumerate((0, 90, 180, 270)):
        assert same_pixels(frames[i], generate_images(G, [3], rotate=angle).arrays[0])
    assert mean_error(frames[1], frames[0]) > 10


@pytest.mark.parametrize("args, message", [
    (["--seeds", "0-3", "--output", "v.avi"], "must end in .mp4, .mov, .mkv, .gif"),
    (["--seeds", "0", "--no-loop", "--output", "v.mp4"], "at least two keyframes"),
    (["--seeds", "0-2", "--grid", "2x2", "--output", "v.mp4"], "needs at least 4 keyframe latents, got 3"),
    (["--seeds", "0-2", "--trunc", "7", "--output", "v.mp4"], "truncation psi 7.0 is out of range"),
    (["--seeds", "0-2", "--rotate-anim", "90", "--output", "v.mp4"], "need a StyleGAN3 model"),
    (["--seeds", "0-2", "--class", "1", "--output", "v.mp4"], "this model is unconditional"),
    (["--seeds", "0-2", "--frames", "9", "--transition-frames", "3", "--output", "v.mp4"], "not both"),
    (["--seeds", "0-2", "--fps", "60", "--output", "v.gif"], "use --fps 50 or less"),
    (["--seeds", "0-x", "--output", "v.mp4"], "invalid seed list"),
    (["--output", "v.mp4"], "give keyframes"),
    (["--seeds", "0-2", "--lossless", "--output", "v.gif"], "GIF has 256 colours"),
])
def test_bad_input_is_one_line_and_leaves_nothing(sg2_model, tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    code, err = run(capsys, "video", "--network", sg2_model, *args)
    assert code == 1 and err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_slerp_needs_seeds(sg2_model, tmp_path, capsys):
    np.savez(tmp_path / "projected_w.npz", w=np.zeros([1, 8, 32], np.float32))   # w only, no z
    code, err = run(capsys, "video", "--network", sg2_model, "--ws", tmp_path / "projected_w.npz", "--seeds", "2",
                    "--interp", "slerp", "--output", tmp_path / "v.mp4")
    assert code == 1 and "slerp interpolates z and needs seeds" in err
    assert not (tmp_path / "v.mp4").exists()
