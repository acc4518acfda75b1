"""Video files: H.264 and GIF written frame by frame, read back, nothing half-written."""

import weakref

import numpy as np
import pytest

from stylegan.errors import UserInputError
from stylegan.render.video import read_video, video_info, write_video


def smooth_frames(n, h=32, w=48):
    """Smooth moving gradients (what H.264 is made for), uint8 [H, W, 3]."""
    y, x = np.mgrid[0:h, 0:w]
    for i in range(n):
        r = 128 + 100 * np.sin((x + 2 * i) / 9)
        g = 128 + 100 * np.cos((y - i) / 7)
        b = np.full_like(r, 40 + 8 * i)
        yield np.stack([r, g, b], -1).astype(np.uint8)


def test_mp4_has_every_frame_and_decodes_close_to_the_input(tmp_path):
    path = write_video(smooth_frames(12), tmp_path / "out.mp4", fps=30)
    info = video_info(path)
    assert info == {"num_frames": 12, "fps": 30.0, "size": (48, 32)}
    decoded = read_video(path)
    original = np.stack(list(smooth_frames(12)))
    assert decoded.shape == original.shape
    # CRF 18 H.264 in yuv420p: half-resolution colour and limited range cost a few levels on these
    # colourful 48x32 frames (about 3.5 on average here; ~2.9 even losslessly)
    assert np.abs(decoded.astype(int) - original).mean() < 5
    assert list(tmp_path.iterdir()) == [path]                         # no temp files left


def test_gif_plays_forever_at_the_asked_rate(tmp_path):
    from PIL import Image
    path = write_video(smooth_frames(6), tmp_path / "out.gif", fps=25)
    with Image.open(path) as im:
        assert im.n_frames == 6 and im.info["loop"] == 0 and im.info["duration"] == 40
    decoded = read_video(path)
    assert np.abs(decoded.astype(int) - np.stack(list(smooth_frames(6)))).mean() < 4   # a palette per frame


def test_frames_are_streamed_not_collected(tmp_path):
    """write_video must hand each frame to ffmpeg before asking for the next one."""
    refs = []

    def frames():
        for frame in smooth_frames(40):
            alive = sum(r() is not None for r in refs)
            assert alive <= 1, f"{alive} earlier frames are still held by the writer"
            refs.append(weakref.ref(frame))
            yield frame

    write_video(frames(), tmp_path / "long.mp4", fps=60)
    assert video_info(tmp_path / "long.mp4")["num_frames"] == 40


def test_a_failure_mid_video_leaves_nothing_behind(tmp_path):
    def frames():
        yield from smooth_frames(3)
        raise RuntimeError("the generator broke")

    with pytest.raises(RuntimeError, match="broke"):
        write_video(frames(), tmp_path / "broken.mp4")
    assert list(tmp_path.iterdir()) == []


def test_bad_requests(tmp_path):
    with pytest.raises(UserInputError, match="must end in"):
        write_video(smooth_frames(2), tmp_path / "out.avi")
    with pytest.raises(UserInputError, match="fps"):
        write_video(smooth_frames(2), tmp_path / "out.gif", fps=60)
    with pytest.raises(UserInputError, match="no frames"):
        write_video(iter([]), tmp_path / "empty.mp4")
    assert list(tmp_path.iterdir()) == []


def test_odd_sized_and_grey_frames_are_made_h264_friendly(tmp_path):
    grey = [np.full([31, 45], 200, np.uint8)] * 2
    assert video_info(write_video(grey, tmp_path / "grey.mp4"))["size"] == (46, 32)       # padded to even
    decoded = read_video(tmp_path / "grey.mp4")
    assert abs(int(decoded[0, 10, 10, 0]) - 200) <= 2 and decoded[0, 31, 10].max() <= 20  # black padding row
    assert video_info(write_video(grey, tmp_path / "grey.mkv", lossless=True))["size"] == (45, 31)
    with pytest.raises(ValueError, match="uint8"):
        write_video([np.zeros([4, 4, 3], np.float32)], tmp_path / "f.mp4")


def test_output_folders_are_made_only_when_writing(tmp_path):
    from stylegan.render.video import check_video_path
    target = tmp_path / "new" / "deeper" / "v.mp4"
    assert check_video_path(target) == target and not (tmp_path / "new").exists()
    write_video(smooth_frames(2), target)
    assert target.exists()
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserInputError, match="is a file"):
        check_video_path(tmp_path / "file" / "v.mp4")
