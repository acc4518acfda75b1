"""Video files: streamed writing (one frame at a time into ffmpeg) and reading back.

MP4/MOV/MKV are H.264 (libx264, yuv420p, BT.709-tagged, CRF 18, ``+faststart``) through imageio-ffmpeg,
which ships its own ffmpeg binary; ``lossless`` switches to RGB H.264 at qp 0 (bit-exact frames). GIF goes through the same ffmpeg with a fresh 256-colour palette per frame
(``palettegen=stats_mode=single`` + ``paletteuse=new=1``), which also streams. Frames are never
collected: memory stays flat however long the video is. Files appear atomically (temp + rename):
an error or Ctrl-C leaves no half-written video behind.
"""

from __future__ import annotations

import contextlib

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..errors import UserInputError
from ..files import atomic_output
from ..progress import progress

H264_SUFFIXES = (".mp4", ".mov", ".mkv")
VIDEO_SUFFIXES = H264_SUFFIXES + (".gif",)
DEFAULT_CRF = 18
GIF_MAX_FPS = 50


def check_video_path(path: str | os.PathLike) -> Path:
    """The output path, if its suffix is a format we write and its folder exists or can be made
    (checked without creating anything, so a later error leaves no trace)."""
    path = Path(path)
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise UserInputError(f"cannot write {path.name!r}: the video must end in {', '.join(VIDEO_SUFFIXES)}")
    if path.is_dir():
        raise UserInputError(f"{path} is a folder; give a file name such as {path / 'video.mp4'}")
    ancestor = path.absolute().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise UserInputError(f"cannot create {path.parent}: {ancestor} is a file")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise UserInputError(f"folder {ancestor} is not writable")
    return path


def video_frame(frame, even: bool = True) -> np.ndarray:
    """A frame as contiguous uint8 RGB [H, W, 3]: grey is repeated, alpha dropped, and with ``even``
    an odd height or width gets one black row/column (H.264 in yuv420p needs even sizes)."""
    frame = np.asarray(frame)
    if frame.ndim == 2:
        frame = frame[:, :, None]
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] not in (1, 3, 4):
        raise ValueError(f"video frames must be uint8 [H, W] or [H, W, 1|3|4], got {frame.dtype} {frame.shape}")
    if frame.shape[2] == 1:
        frame = np.repeat(frame, 3, axis=2)
    elif frame.shape[2] == 4:
        frame = frame[:, :, :3]
    h, w = frame.shape[:2]
    if even and (h % 2 or w % 2):
        frame = np.pad(frame, [(0, h % 2), (0, w % 2), (0, 0)])
    return np.ascontiguousarray(frame)


def _ffmpeg_args(suffix: str, fps: float, crf: int, lossless: bool = False) -> dict:
    if lossless and suffix == ".gif":
        raise UserInputError("GIF has 256 colours per frame and cannot be lossless; use .mp4 or .mkv")
    if suffix == ".gif":
        palette = ("split[a][b];[a]palettegen=stats_mode=single:reserve_transparent=0[p];"
                   "[b][p]paletteuse=new=1:dither=sierra2_4a")
        return dict(codec="gif", pix_fmt_out="pal8", quality=None,
                    output_params=["-vf", palette, "-loop", "0", "-f", "gif"])
    if not 0 <= crf <= 51:
        raise UserInputError(f"crf {crf} is out of range 0-51 (lower = better; 18 is visually lossless)")
    fmt = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska"}[suffix]
    if lossless:   # RGB H.264 at qp 0: bit-exact frames, large files, fewer players (ffmpeg, VLC, mpv)
        return dict(codec="libx264rgb", pix_fmt_out="rgb24", quality=None,
                    output_params=["-qp", "0", "-preset", "medium", "-f", fmt])
    # Convert to BT.709 and say so: players guess the matrix of untagged video from its size.
    params = ["-crf", str(crf), "-preset", "medium", "-vf", "scale=out_color_matrix=bt709:out_range=tv",
              "-color_primaries", "bt709", "-color_trc", "bt709", "-colorspace", "bt709"]
    if fmt in ("mp4", "mov"):
        params += ["-movflags", "+faststart"]
    return dict(codec="libx264", pix_fmt_out="yuv420p", quality=None, output_params=params + ["-f", fmt])


def write_video(frames: Iterable[np.ndarray], path: str | os.PathLike, fps: float = 60, crf: int = DEFAULT_CRF,
                lossless: bool = False, num_frames: int | None = None, show_progress: bool = False) -> Path:
    """Encode uint8 frames [H, W, C] as they arrive; returns the path. Grey frames become RGB, alpha
    is dropped, and for yuv420p H.264 an odd width or height gets one black row/column of padding.

    ``lossless`` writes RGB H.264 (libx264rgb, qp 0): decoded frames equal the input bit for bit.

    ``frames`` may be any iterable, typically a generator: each frame goes to ffmpeg before the
    next one is asked for. ``num_frames`` only sizes the progress bar."""
    import imageio_ffmpeg

    path = check_video_path(path)
    suffix = path.suffix.lower()
    if not 0 < fps <= 1000:
        raise UserInputError(f"fps {fps} is out of range (0, 1000]")
    if suffix == ".gif" and fps > GIF_MAX_FPS:
        raise UserInputError(f"GIF frame delays are whole hundredths of a second and browsers slow down "
                             f"anything faster than {GIF_MAX_FPS} fps; use --fps {GIF_MAX_FPS} or less, or .mp4")
    args = _ffmpeg_args(suffix, fps, crf, lossless)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserInputError(f"cannot create folder {path.parent}: {exc.strerror or exc}") from None
    writer = None
    size = None
    count = 0
    with atomic_output(path) as tmp:
        try:
            for frame in progress(frames, total=num_frames, desc="video", unit="frame", disable=not show_progress):
                frame = video_frame(frame, even=suffix != ".gif" and not lossless)
                if writer is None:
                    size = frame.shape[:2]
                    writer = imageio_ffmpeg.write_frames(str(tmp), (int(size[1]), int(size[0])), fps=float(fps),
                                                         pix_fmt_in="rgb24", macro_block_size=1,
                                                         ffmpeg_log_level="error", **args)
                    writer.send(None)
                elif frame.shape[:2] != size:
                    raise ValueError(f"frame {count} is {frame.shape[1]}x{frame.shape[0]}, "
                                     f"the video is {size[1]}x{size[0]}")
                writer.send(np.ascontiguousarray(frame))
                count += 1
            if writer is None:
                raise UserInputError("no frames to write")
        except BaseException:
            if writer is not None:       # the output is discarded: stop ffmpeg now instead of waiting for it
                with contextlib.suppress(BaseException):
                    writer.throw(_Abandoned())
                writer = None
            raise
        finally:
            if writer is not None:
                writer.close()
    return path


class _Abandoned(BaseException):
    """Thrown into imageio-ffmpeg's writer so that it kills ffmpeg (its policy for KeyboardInterrupt and
    SystemExit) rather than waiting for it to encode frames nobody will keep."""


def video_info(path: str | os.PathLike) -> dict:
    """``{'num_frames', 'fps', 'size': (W, H)}`` of a video file, decoded by ffmpeg."""
    import imageio_ffmpeg
    path = Path(path)
    if not path.exists():
        raise UserInputError(f"video not found: {path}")
    reader = imageio_ffmpeg.read_frames(str(path))
    try:
        meta = reader.__next__()
    finally:
        reader.close()
    num_frames, _ = imageio_ffmpeg.count_frames_and_secs(str(path))
    return {"num_frames": int(num_frames), "fps": float(meta.get("fps", 0.0)), "size": tuple(meta["size"])}


def read_video(path: str | os.PathLike, max_frames: int | None = None) -> np.ndarray:
    """Decode a video (any format ffmpeg reads) to uint8 [T, H, W, 3]."""
    import imageio_ffmpeg
    path = Path(path)
    if not path.exists():
        raise UserInputError(f"video not found: {path}")
    reader = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
    try:
        meta = reader.__next__()
        w, h = meta["size"]
        frames = []
        for raw in reader:
            frames.append(np.frombuffer(raw, dtype=np.uint8).reshape(h, w, 3))
            if max_frames is not None and len(frames) >= max_frames:
                break
    finally:
        reader.close()
    return np.stack(frames) if frames else np.zeros([0, h, w, 3], np.uint8)


class BackgroundVideos:
    """Several videos written while their frames are made elsewhere (e.g. one per target of a batched
    projection): :meth:`put` hands one frame per video to that video's writer thread through a short
    queue, so frames never pile up in memory and the producer is not held up by ffmpeg. :meth:`close`
    finishes the files and raises the first writer error; :meth:`abort` stops and keeps no file."""

    def __init__(self, paths: list[str | os.PathLike], fps: float = 10, max_queued: int = 4):
        import queue
        import threading
        self.paths = [check_video_path(p) for p in paths]
        self.fps = fps
        self.queues = [queue.Queue(maxsize=max_queued) for _ in self.paths]
        self.errors: list[BaseException] = []
        self.threads = [threading.Thread(target=self._run, args=(q, p), daemon=True)
                        for q, p in zip(self.queues, self.paths)]
        for t in self.threads:
            t.start()

    def _run(self, q, path: Path) -> None:
        done = False

        def frames():
            nonlocal done
            while (item := q.get()) is not None:
                if item is _ABORT:
                    raise _Aborted
                yield item
            done = True
        try:
            write_video(frames(), path, fps=self.fps)
        except _Aborted:
            pass
        except BaseException as exc:  # noqa: BLE001 - reported from the producer's thread at close()
            self.errors.append(exc)
        while not done and q.get() is not None:   # keep draining so the producer goes on
            pass

    def put(self, frames: list[np.ndarray]) -> None:
        """The next frame of every video, in the order of ``paths``."""
        for q, frame in zip(self.queues, frames):
            q.put(frame)

    def close(self) -> None:
        for q in self.queues:
            q.put(None)
        for t in self.threads:
            t.join()
        if self.errors:
            raise self.errors[0]

    def abort(self) -> None:
        """Stop the writers without keeping their files (write_video leaves nothing on error)."""
        for q in self.queues:
            q.put(_ABORT)
            q.put(None)
        for t in self.threads:
            t.join(timeout=30)


_ABORT = object()


class _Aborted(Exception):
    """Raised inside a frame stream so that write_video removes its partial file."""
