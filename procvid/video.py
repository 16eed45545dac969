"""Video decoding and frame sampling with exact timestamps.

Every sampling mode is turned into *target times* on the video's timeline; the frame sampled
for a target time t is the frame on screen at t (the last frame whose presentation time is
<= t). This works for variable frame rate videos and for containers whose frame count is
wrong, because it only relies on presentation timestamps.

decord is tried first (fast batched access). PyAV takes over when decord cannot open the file,
reports timestamps that are invalid, or disagrees with the container about the frame count
(e.g. decord counts 68 frames in tree.avi whose header says 444: the AVI stores repeated
frames as empty packets, so the stream is really variable frame rate).
"""

from __future__ import annotations

import heapq
import logging
import os
from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from procvid.errors import ProcvidError, VideoError

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv")

# decord and the container may differ by a frame or two on healthy files (edit lists, a
# trailing frame); more than this means decord has the timeline wrong.
_COUNT_TOLERANCE = 0.02
# Decoders may emit pts in a permuted order (packed B-frames in AVI); a window this large
# restores monotonic timestamps.
_REORDER_WINDOW = 16


@dataclass(frozen=True)
class Sampling:
    """Which frames to take: `fps` per second, `every` k-th decoded frame, or `num` spread uniformly."""

    fps: float | None = None
    every: int | None = None
    num: int | None = None

    def __post_init__(self):
        given = [v for v in (self.fps, self.every, self.num) if v is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of fps, every, num")
        if given[0] <= 0:
            raise ValueError(f"sampling value must be positive, got {given[0]}")

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}

    def target_times(self, duration: float) -> np.ndarray:
        """Times (s) at which to sample, on [0, duration). Not used for `every` (index based)."""
        if self.fps is not None:
            return np.arange(0.0, duration - 1e-9, 1.0 / self.fps)
        return (np.arange(self.num) + 0.5) * (duration / self.num)


@dataclass(frozen=True)
class VideoInfo:
    path: str
    duration: float  # seconds
    fps: float  # nominal (average) frame rate
    num_frames: int  # nominal frame count: duration * fps
    width: int
    height: int
    backend: str  # "decord" or "pyav"


def check_file(path: str | os.PathLike) -> Path:
    """Raise VideoError for inputs that are clearly not readable videos."""
    p = Path(path)
    if not p.exists():
        raise VideoError(p, "file not found")
    if p.is_dir():
        raise VideoError(p, "is a directory, not a video file")
    if p.stat().st_size == 0:
        raise VideoError(p, "file is empty")
    return p


def _resized(width: int, height: int, short_side: int | None) -> tuple[int, int]:
    if not short_side or min(width, height) <= short_side:
        return width, height
    scale = short_side / min(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _select(frame_times: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Indices of the frames on screen at each target time, without repeats."""
    idx = np.searchsorted(frame_times, targets + 1e-6, side="right") - 1
    return np.unique(np.clip(idx, 0, len(frame_times) - 1))


class _PyAVStream:
    """Container facts and a sequential decoder with monotonic timestamps."""

    def __init__(self, path: Path):
        import av

        try:
            self.container = av.open(str(path))
        except Exception as e:  # av raises many error types for non-video input
            raise VideoError(path, f"cannot open as video ({_short(e)})") from None
        if not self.container.streams.video:
            self.container.close()
            raise VideoError(path, "contains no video stream")
        self.path = path
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "AUTO"
        rate = self.stream.average_rate or self.stream.guessed_rate
        self.fps = float(rate) if rate else 0.0
        self.header_frames = int(self.stream.frames or 0)
        if self.stream.duration is not None and self.stream.time_base is not None:
            self.duration = float(self.stream.duration * self.stream.time_base)
        elif self.container.duration is not None:
            self.duration = self.container.duration / 1e6
        else:
            self.duration = self.header_frames / self.fps if self.fps else 0.0
        if not self.fps and self.duration and self.header_frames:
            self.fps = self.header_frames / self.duration
        self.width = self.stream.codec_context.width
        self.height = self.stream.codec_context.height
        start = self.stream.start_time
        self.t0 = float(start * self.stream.time_base) if start is not None else 0.0

    def close(self):
        self.container.close()

    def frames(self, size: tuple[int, int] | None) -> Iterator[tuple[float, np.ndarray]]:
        """Yield (time, rgb uint8 HxWx3) in display order with non-decreasing times."""
        import av

        pending: deque = deque()  # frames in display order, timestamps not yet assigned
        times: list[float] = []  # min-heap of pts seen but not yet assigned
        last = -np.inf
        count = 0

        def emit():
            nonlocal last
            t = max(heapq.heappop(times), last)
            last = t
            return t, pending.popleft()

        try:
            for packet in self.container.demux(self.stream):
                try:
                    decoded = packet.decode()
                except av.error.InvalidDataError:
                    continue  # a damaged packet: skip it, keep the rest of the video
                for frame in decoded:
                    if frame.pts is not None:
                        t = float(frame.pts * frame.time_base) - self.t0
                    else:
                        t = count / self.fps if self.fps else float(count)
                    count += 1
                    w, h = size or (frame.width, frame.height)
                    rgb = frame.to_ndarray(format="rgb24", width=w, height=h)
                    heapq.heappush(times, t)
                    pending.append(rgb)
                    if len(pending) > _REORDER_WINDOW:
                        yield emit()
        except av.error.FFmpegError as e:
            if count == 0:
                raise VideoError(self.path, f"cannot decode video ({_short(e)})") from None
            log.warning("%s: decoding stopped early after %d frames (%s)", self.path, count, _short(e))
        while pending:
            yield emit()


def _short(e: Exception) -> str:
    """One readable line for an exception (FFmpeg errors carry an errno and the file name)."""
    text = getattr(e, "strerror", None) or str(e).strip() or type(e).__name__
    return text.splitlines()[0][:160]


class VideoReader:
    """Open a video once; probe it; stream sampled frames in bounded-memory chunks.

    >>> reader = VideoReader("clip.mp4", size=224)
    >>> for frames, times in reader.iter_chunks(Sampling(fps=1)):
    ...     ...
    """

    def __init__(self, path: str | os.PathLike, size: int | None = None, backend: str = "auto"):
        if backend not in ("auto", "decord", "pyav"):
            raise ValueError(f"unknown backend {backend!r}")
        self.path = check_file(path)
        self.short_side = size
        self._pyav = _PyAVStream(self.path)
        self._decord = None
        self._decord_times = None
        if backend in ("auto", "decord"):
            reason = self._try_decord()
            if reason and backend == "decord":
                raise VideoError(self.path, f"decord cannot read it: {reason}")
            if reason:
                log.debug("%s: using PyAV (%s)", self.path, reason)  # same frames; expected at some sizes
        s = self._pyav
        duration = s.duration
        if self._decord is not None:  # decord's last frame end is reliable once validated
            duration = max(duration, float(self._decord_frame_ends[-1]))
        if duration <= 0 or s.fps <= 0:
            raise VideoError(self.path, "has no decodable frames (zero duration)")
        self.info = VideoInfo(
            path=str(self.path),
            duration=duration,
            fps=s.fps,
            num_frames=int(round(duration * s.fps)),
            width=s.width,
            height=s.height,
            backend="decord" if self._decord is not None else "pyav",
        )
        self.out_size = _resized(s.width, s.height, size)

    def _try_decord(self) -> str | None:
        """Open with decord and validate it against the container; return why not, or None."""
        import decord

        s = self._pyav
        w, h = _resized(s.width, s.height, self.short_side)
        try:
            vr = decord.VideoReader(str(self.path), ctx=decord.cpu(0), width=w, height=h, num_threads=1)
            n = len(vr)
            stamps = vr.get_frame_timestamp(np.arange(n)) if n else np.zeros((0, 2))
        except Exception as e:  # decord raises DECORDError / RuntimeError on bad input
            return f"decord failed: {_short(e)}"
        if n == 0:
            return "decord found no frames"
        try:  # some output sizes (e.g. 48 x 48) come back with 4 channels: dmlc/decord#336
            shape = vr.get_batch([0]).shape
        except Exception as e:
            return f"decord cannot decode at {w}x{h}: {_short(e)}"
        if tuple(shape) != (1, h, w, 3):
            return f"decord decodes {tuple(shape)[1:]} frames at {w}x{h}"
        if s.header_frames and abs(n - s.header_frames) > max(2, _COUNT_TOLERANCE * s.header_frames):
            return f"decord counts {n} frames, container says {s.header_frames}"
        starts = stamps[:, 0]
        if not np.all(np.isfinite(stamps)) or starts[0] < -1e-3 or np.any(np.diff(starts) < 0):
            return "decord timestamps are invalid"
        self._decord = vr
        self._decord_times = starts.astype(np.float64)
        self._decord_frame_ends = stamps[:, 1].astype(np.float64)
        return None

    def close(self):
        self._pyav.close()
        self._decord = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def iter_chunks(self, sampling: Sampling, chunk: int = 32) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield (frames uint8 [n,H,W,3], timestamps float64 [n]) with n <= chunk."""
        if sampling.every:
            idx = np.arange(0, len(self._decord_times), sampling.every) if self._decord is not None else None
            targets = None
        else:
            targets = sampling.target_times(self.info.duration)
            idx = _select(self._decord_times, targets) if self._decord is not None else None
        emitted = -np.inf
        if idx is not None:
            try:
                for i in range(0, len(idx), chunk):
                    part = idx[i : i + chunk]
                    frames = self._decord.get_batch(part.tolist()).asnumpy()
                    yield frames, self._decord_times[part]
                    emitted = self._decord_times[part[-1]]
                return
            except Exception as e:  # a damaged stream part way: PyAV decodes the rest
                log.warning("%s: decord failed mid-stream (%s); using PyAV", self.path, _short(e))
        picked = self._pick_every(sampling.every) if targets is None else self._pick_at(targets)
        frames, times = [], []
        for t, rgb in picked:
            if t > emitted + 1e-6:
                frames.append(rgb)
                times.append(t)
            if len(frames) == chunk:
                yield np.stack(frames), np.asarray(times)
                frames, times = [], []
        if frames:
            yield np.stack(frames), np.asarray(times)

    def _pick_every(self, k: int) -> Iterator[tuple[float, np.ndarray]]:
        for i, (t, rgb) in enumerate(self._pyav.frames(self.out_size)):
            if i % k == 0:
                yield t, rgb

    def _pick_at(self, targets: np.ndarray) -> Iterator[tuple[float, np.ndarray]]:
        """Streaming twin of `_select`: the frame on screen at each target time, no repeats."""
        k = 0  # next target to fill
        prev = None  # (time, frame) of the last decoded frame
        for t, rgb in self._pyav.frames(self.out_size):
            if k >= len(targets):
                return
            # targets before this frame's time are showing the previous frame
            if prev is not None and targets[k] + 1e-6 < t:
                yield prev
                while k < len(targets) and targets[k] + 1e-6 < t:
                    k += 1
            prev = (t, rgb)
        if prev is not None and k < len(targets):
            yield prev


def iter_frames(
    path: str | os.PathLike,
    sampling: Sampling,
    size: int | None = None,
    chunk: int = 32,
    backend: str = "auto",
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Stream sampled frames of a video in chunks: (frames uint8 [n,H,W,3], times [n] seconds).

    `size` resizes while decoding so the short side is at most `size` pixels (bounded memory).
    """
    with VideoReader(path, size=size, backend=backend) as reader:
        yield from reader.iter_chunks(sampling, chunk)


def read_frames(path, sampling: Sampling, size: int | None = None, backend: str = "auto"):
    """All sampled frames at once (small videos / tests): (frames [T,H,W,3], times [T])."""
    chunks = list(iter_frames(path, sampling, size=size, backend=backend))
    if not chunks:
        raise VideoError(path, "no frames could be decoded")
    return np.concatenate([c[0] for c in chunks]), np.concatenate([c[1] for c in chunks])


def frames_at(video: str | os.PathLike, times, short_side: int = 128) -> list[np.ndarray]:
    """RGB frames on screen at each time (seconds from the stream start), decoded by seeking to the
    key frame before each time; frames are resized so the short side is at most ``short_side``."""
    import av

    path = check_file(video)
    try:
        container = av.open(str(path))
    except Exception as e:  # av raises many error types for non-video input
        raise VideoError(path, f"cannot open as video ({type(e).__name__})") from None
    with container:
        if not container.streams.video:
            raise VideoError(path, "contains no video stream")
        stream = container.streams.video[0]
        base = stream.time_base
        t0 = float(stream.start_time * base) if stream.start_time is not None else 0.0
        w, h = stream.codec_context.width, stream.codec_context.height
        scale = min(1.0, short_side / max(1, min(w, h)))
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        out = []
        for t in times:
            container.seek(int((t + t0) / base), stream=stream, backward=True, any_frame=False)
            shown = None
            for frame in container.decode(stream):
                if shown is not None and frame.time is not None and frame.time - t0 > t + 1e-6:
                    break
                shown = frame
            if shown is None:
                raise VideoError(path, f"no frame at {t:.2f} s")
            out.append(shown.to_ndarray(format="rgb24", width=size[0], height=size[1]))
    return out


def probe(path: str | os.PathLike, backend: str = "auto") -> VideoInfo:
    with VideoReader(path, backend=backend) as reader:
        return reader.info


def find_videos(inputs: list[str | os.PathLike]) -> list[tuple[Path, Path]]:
    """Expand files, directories (recursive, by extension) and .txt lists of paths.

    Returns (video path, path relative to its input root) pairs, in a stable sorted order.
    """
    found: dict[Path, Path] = {}
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.is_file() and f.suffix.lower() in VIDEO_EXTENSIONS:
                    found.setdefault(f.resolve(), f.relative_to(p))
        elif p.suffix.lower() == ".txt" and p.is_file():
            for line in p.read_text().splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    q = Path(line) if Path(line).is_absolute() else p.parent / line
                    found.setdefault(q.resolve(), Path(q.name))
        elif p.exists():
            found.setdefault(p.resolve(), Path(p.name))
        else:
            raise ProcvidError(f"{p}: no such file or directory")
    return sorted(found.items(), key=lambda kv: str(kv[1]))
