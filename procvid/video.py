"""Video decoding and frame sampling with exact timestamps.

Every sampling mode is turned into *target times* on the video's timeline; the frame sampled
for a target time t is the frame on screen at t (the last frame whose presentation time is
<= t). This works for variable frame rate videos and for containers whose frame count is
wrong, because it only relies on presentation timestamps.

decord is tried first (fast batched access). PyAV takes over when decord cannot open the file,
reports timestamps that are invalid, or disagrees with the container about the frame count
(e.g. decord counts 68 frames in tree.avi whose header says 444: the AVI stores repeated
frames as empty packets, so the stream is really variable frame rate).

Rotation metadata (a display matrix, e.g. a phone's portrait video stored as landscape frames)
is applied: frames come out upright and `size` applies to the displayed orientation. decord does
not rotate reliably (dmlc/decord returns 4-channel frames for rotated mp4s), so rotated videos
are decoded with PyAV.

Every decode fills a `DecodeReport` (``VideoReader.report``, or ``iter_frames(..., report=r)``):
how far the decoded frames reach against the container's duration, how many sampled target times
got a frame, and the decode errors that were swallowed to keep going (damaged packets skipped,
decoding stopped early, decord failing mid-stream). Deciding whether that is good enough is the
caller's policy (the embed stage refuses to cache truncated videos: procvid.embedding).
"""

from __future__ import annotations

import heapq
import logging
import os
import re
from collections import deque
from dataclasses import asdict, dataclass, field
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
# decord's decoding threads per video: 2 decode the shared clips 1.9x faster than 1 with the same
# pixels, even on 2 busy cores; more than 4 gains little next to the engine's decode-ahead workers.
DECORD_THREADS = max(1, min(4, os.cpu_count() or 1))
# Output sizes at which decord gave wrongly shaped frames (dmlc/decord#336: e.g. 48 x 48, on every
# video tried): later videos at these sizes go straight to PyAV instead of opening decord to fail.
_DECORD_BAD_SIZES: dict[tuple[int, int], str] = {}


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
    # degrees counter-clockwise applied to decoded frames for display (FFmpeg's display matrix
    # convention: a phone's `rotate=90` tag reads -90 and means "turn clockwise"); width and height
    # above are the displayed ones.
    rotation: int = 0


@dataclass
class DecodeReport:
    """How complete one decode was (filled while `VideoReader.iter_chunks` runs; final once it ends).

    ``start``/``end`` bound the decoded timeline: the first frame's time and where the last frame
    ends (its own duration, else 1/fps). With decord they come from its frame index (it indexes
    only the frames it can read; a decoding failure raises and PyAV takes over). With PyAV they
    come from the decoded frames, and once every sampled frame is found the remaining packets are
    demuxed, not decoded, to see whether the file really goes on. ``targets`` counts the sampled
    target times (fps/num sampling; 0 for every-k) and ``targets_covered`` those up to ``end``.
    ``largest_gap`` is the longest stretch without a new frame (from 0 to the first frame, or
    between two), starting at ``gap_at``; variable frame rate videos hold frames legitimately, so
    it says something only next to errors. ``errors`` counts the decode errors swallowed to keep
    going (damaged packets skipped, decoding or reading stopped early, decord failing mid-stream);
    ``first_error`` is the first one. FFmpeg's log messages (e.g. concealed slice errors) are not
    errors here: decord's are counted in ``messages`` (``first_message`` the first one's kind), not
    printed; PyAV's are not seen (see _DecoderLog).
    """

    backend: str = ""  # "decord", "pyav", or "decord+pyav" when decord failed mid-stream
    duration: float = 0.0  # the container's duration (s), as in VideoInfo
    frames: int = 0  # sampled frames yielded
    targets: int = 0
    targets_covered: int = 0
    start: float = 0.0
    end: float = 0.0
    largest_gap: float = 0.0
    gap_at: float = 0.0
    errors: int = 0
    first_error: str = ""
    messages: int = 0  # decoder log messages (decord's FFmpeg: concealed damage), see _DecoderLog
    first_message: str = ""
    _prev: float | None = field(default=None, repr=False)  # last decoded frame time, display order

    def _reset(self, backend: str, duration: float, targets: int) -> None:
        for name, f in self.__dataclass_fields__.items():
            setattr(self, name, f.default)
        self.backend, self.duration, self.targets = backend, float(duration), int(targets)

    def _error(self, what: str) -> None:
        self.errors += 1
        if not self.first_error:
            self.first_error = what

    def _shown(self, t: float) -> None:
        """A decoded frame at time t, in display order."""
        gap_from = 0.0 if self._prev is None else self._prev
        if self._prev is None:
            self.start = t
        if t - gap_from > self.largest_gap:
            self.largest_gap, self.gap_at = t - gap_from, gap_from
        self._prev = t

    def _index(self, times: np.ndarray, end: float) -> None:
        """All frame times at once (decord's index), and where the last frame ends."""
        gaps = np.diff(times, prepend=0.0)
        i = int(np.argmax(gaps))
        self.start, self.end, self._prev = float(times[0]), end, float(times[-1])
        self.largest_gap, self.gap_at = float(gaps[i]), float(times[i - 1]) if i else 0.0

    def _seen(self, t: float, duration: float) -> None:
        """The stream holds a frame (decoded or only demuxed) shown from t for `duration` s."""
        self.end = max(self.end, t + duration)

    def _finish(self, targets: np.ndarray | None) -> None:
        self.end = min(self.end, self.duration) if self.duration > 0 else self.end
        if targets is not None and self.frames:
            # targets before the first frame get the first frame, as in `_select`
            self.targets_covered = int(np.count_nonzero(targets <= self.end + 1e-6))

    def to_dict(self) -> dict:
        """Plain JSON fields (rounded seconds), as recorded in a feature sidecar's ``decode``."""
        return {
            "backend": self.backend,
            "frames": int(self.frames),
            "targets": int(self.targets),
            "targets_covered": int(self.targets_covered),
            "start": round(float(self.start), 3),
            "end": round(float(self.end), 3),
            "duration": round(float(self.duration), 3),
            "largest_gap": round(float(self.largest_gap), 3),
            "gap_at": round(float(self.gap_at), 3),
            "errors": int(self.errors),
            "first_error": str(self.first_error),
            "messages": int(self.messages),
            "first_message": str(self.first_message),
        }


class _DecoderLog:
    """decord's FFmpeg log messages, counted per video instead of printed.

    A damaged stream makes FFmpeg print thousands of lines ("error while decoding MB 7 13", "decode_slice_header
    error") straight to stderr, burying procvid's own messages. decord ships its own FFmpeg, whose logging
    we redirect here (av_log_set_callback through ctypes; decord calls its library through ctypes too, with
    the GIL released, so the callback can take it). Messages come from decord's decoding threads: the
    threads a decord reader starts while it opens (opens are serialised to tell them apart) are its own,
    so each message is counted for its video; one from a thread nobody claims counts in `unclaimed`.
    The format string (without its numbers) is kept as the message: it names the kind of damage. PyAV's
    FFmpeg logs nothing by default (PyAV installs a silent callback) and stays that way: a Python log
    callback there can deadlock PyAV's frame threads; PyAV's decode errors are counted as errors.
    """

    def __init__(self):
        import threading

        self.lock = threading.Lock()
        self.owners: dict[int, list] = {}  # native thread id -> [count, first message] of its video
        self.unclaimed = 0
        self.installed = None  # None: not tried; else whether messages are captured
        self._callback = None  # keeps the ctypes callback alive

    def install(self) -> bool:
        if self.installed is None:
            with self.lock:
                if self.installed is None:
                    self.installed = self._install()
        return self.installed

    def _install(self) -> bool:
        import ctypes
        import glob

        import decord

        root = Path(decord.__file__).resolve().parent
        libs = sorted(glob.glob(str(root.parent / "decord.libs" / "libavutil*.so*")))
        if not libs or not os.path.isdir("/proc/self/task"):
            return False  # decord linked against a shared FFmpeg (not ours to redirect), or not Linux
        try:
            avutil = ctypes.CDLL(libs[0])
            kind = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)
            self._callback = kind(self._message)
            avutil.av_log_set_callback(self._callback)
        except (OSError, AttributeError) as e:
            log.debug("decoder messages are not captured (%s)", e)
            return False
        return True

    def _message(self, ctx, level, fmt, args) -> None:
        if level > 24:  # AV_LOG_WARNING: info and debug chatter is dropped, as FFmpeg's default does
            return
        import threading

        owner = self.owners.get(threading.get_native_id())
        if owner is None:
            self.unclaimed += 1
            return
        owner[0] += 1
        if not owner[1]:
            text = (fmt or b"").decode("utf-8", "replace")
            owner[1] = re.sub(r"%[-+ #0-9.]*[a-z]+", "N", text).strip()[:120]

    def threads(self) -> set[int]:
        return {int(t) for t in os.listdir("/proc/self/task")}

    def claim(self, threads: set[int], counter: list) -> None:
        for t in threads:
            self.owners[t] = counter

    def release(self, counter: list) -> None:
        for t in [t for t, c in self.owners.items() if c is counter]:
            del self.owners[t]


DECODER_LOG = _DecoderLog()


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


def _rot_k(rotation: float) -> int:
    """np.rot90's k (quarter turns counter-clockwise) for a display rotation in degrees."""
    return int(round(rotation / 90.0)) % 4


def _upright(rgb: np.ndarray, k: int) -> np.ndarray:
    return np.ascontiguousarray(np.rot90(rgb, k)) if k else rgb


def _coded_size(size: tuple[int, int] | None, k: int) -> tuple[int, int] | None:
    """Decode size (w, h) of the stored frame for a displayed size (w, h)."""
    return (size[1], size[0]) if size and k % 2 else size


def _rotation(path: Path, stream) -> int:
    """The stream's display rotation: degrees counter-clockwise, a multiple of 90 in (-180, 180].

    Old FFmpeg exported a `rotate` tag (degrees clockwise); current FFmpeg keeps a display matrix
    in the stream's side data, which PyAV exposes on decoded frames, so the first frame is decoded
    (in a separate container: the main one stays untouched at the start of the file)."""
    import av

    tag = stream.metadata.get("rotate")
    if tag is not None:
        try:
            degrees = -float(tag)
        except ValueError:
            degrees = 0.0
    else:
        degrees = 0.0
        try:
            with av.open(str(path)) as c:
                s = c.streams.video[0]
                for n, packet in enumerate(c.demux(s)):
                    try:
                        decoded = packet.decode()
                    except av.error.InvalidDataError:
                        decoded = []
                    if decoded:
                        degrees = float(decoded[0].rotation or 0.0)
                        break
                    if n >= 256:  # no frame in the first packets: treat as unrotated
                        break
        except Exception as e:  # the main decode reports real problems; this is only a probe
            log.debug("%s: cannot read the rotation (%s)", path, _short(e))
    k = _rot_k(degrees)
    if abs(degrees - 90 * round(degrees / 90)) > 1:
        log.warning("%s: rotation %g degrees is not a quarter turn; using %d", path, degrees, k * 90)
    return {0: 0, 1: 90, 2: 180, 3: -90}[k]


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
        self._demux = self.container.demux(self.stream)
        self._probed: list = []  # what the rotation probe decoded: frames() hands it out first
        self._probe_error = None
        self.rotation = self._probe_rotation()
        self.rot_k = _rot_k(self.rotation)
        w, h = self.stream.codec_context.width, self.stream.codec_context.height
        self.width, self.height = (h, w) if self.rot_k % 2 else (w, h)  # as displayed
        start = self.stream.start_time
        self.t0 = float(start * self.stream.time_base) if start is not None else 0.0
        self._reformatter = None

    def close(self):
        self.container.close()

    def _probe_rotation(self) -> int:
        """`_rotation`, reading the display matrix from the first frame decoded here (no second
        container: every decoded packet is kept for `frames`)."""
        import av

        if self.stream.metadata.get("rotate") is not None:
            return _rotation(self.path, self.stream)
        degrees = 0.0
        try:
            for n, packet in enumerate(self._demux):
                try:
                    decoded = packet.decode()
                except av.error.InvalidDataError as e:
                    decoded = e
                self._probed.append(decoded)
                if isinstance(decoded, list) and decoded:
                    degrees = float(decoded[0].rotation or 0.0)
                    break
                if n >= 256:  # no frame in the first packets: treat as unrotated
                    break
        except av.error.FFmpegError as e:  # raised again where frames() gets to it
            self._probe_error = e
        k = _rot_k(degrees)
        if abs(degrees - 90 * round(degrees / 90)) > 1:
            log.warning("%s: rotation %g degrees is not a quarter turn; using %d", self.path, degrees, k * 90)
        return {0: 0, 1: 90, 2: 180, 3: -90}[k]

    def _decoded(self):
        """Each packet's decoded frames (or the InvalidDataError it raised), in stream order."""
        import av

        probed, self._probed = self._probed, []
        yield from probed
        if self._probe_error is not None:
            raise self._probe_error
        for packet in self._demux:
            try:
                yield packet.decode()
            except av.error.InvalidDataError as e:
                yield e

    def rgb(self, frame, size: tuple[int, int] | None) -> np.ndarray:
        """A decoded frame as rgb uint8 HxWx3, upright, at the displayed `size` (w, h). One
        reformatter for the stream: `frame.to_ndarray(width=, height=)` builds a new scaler for
        every frame, which costs more than decoding it (same pixels either way)."""
        if self._reformatter is None:
            from av.video.reformatter import VideoReformatter

            self._reformatter = VideoReformatter()
        w, h = _coded_size(size, self.rot_k) or (frame.width, frame.height)
        return _upright(self._reformatter.reformat(frame, width=w, height=h, format="rgb24").to_ndarray(), self.rot_k)

    def frames(self, report: DecodeReport | None = None) -> Iterator[tuple[float, object]]:
        """Yield (time, decoded av.VideoFrame) in display order with non-decreasing times; only the
        frames a caller keeps are converted (`rgb`), most are dropped unconverted.

        `report` gets every decoded frame and swallowed error."""
        import av

        report = report if report is not None else DecodeReport()
        frame_duration = 1.0 / self.fps if self.fps else 0.0

        pending: deque = deque()  # frames in display order, timestamps not yet assigned
        times: list[float] = []  # min-heap of pts seen but not yet assigned
        last = -np.inf
        count = 0

        def emit():
            nonlocal last
            t = max(heapq.heappop(times), last)
            last = t
            report._shown(t)
            return t, pending.popleft()

        try:
            for decoded in self._decoded():
                if isinstance(decoded, av.error.InvalidDataError):
                    report._error(f"damaged packet skipped ({_short(decoded)})")
                    continue  # a damaged packet: skip it, keep the rest of the video
                for frame in decoded:
                    if frame.pts is not None:
                        t = float(frame.pts * frame.time_base) - self.t0
                    else:
                        t = count / self.fps if self.fps else float(count)
                    count += 1
                    report._seen(t, _seconds(frame.duration, frame.time_base) or frame_duration)
                    heapq.heappush(times, t)
                    pending.append(frame)
                    if len(pending) > _REORDER_WINDOW:
                        yield emit()
        except av.error.FFmpegError as e:
            if count == 0:
                raise VideoError(self.path, f"cannot decode video ({_short(e)})") from None
            log.warning("%s: decoding stopped early after %d frames (%s)", self.path, count, _short(e))
            report._error(f"decoding stopped after {count} frames ({_short(e)})")
        while pending:
            yield emit()

    def scan_rest(self, report: DecodeReport) -> None:
        """Demux (without decoding) the packets left after the last needed frame, so the report
        knows whether the file really goes on to its stated duration."""
        import av

        frame_duration = 1.0 / self.fps if self.fps else 0.0
        try:
            for packet in self.container.demux(self.stream):
                if packet.pts is not None and packet.time_base is not None:
                    t = float(packet.pts * packet.time_base) - self.t0
                    report._seen(t, _seconds(packet.duration, packet.time_base) or frame_duration)
        except av.error.FFmpegError as e:
            report._error(f"reading stopped ({_short(e)})")


def _seconds(ticks, time_base) -> float:
    """A duration in seconds, 0.0 where unknown."""
    return float(ticks * time_base) if ticks and time_base is not None and ticks > 0 else 0.0


def _short(e: Exception) -> str:
    """One readable line for an exception (FFmpeg errors carry an errno and the file name; decord's
    carry "[hh:mm:ss] source/file.cc:123: " prefixes)."""
    text = getattr(e, "strerror", None) or str(e).strip() or type(e).__name__
    line = text.splitlines()[0]
    line = re.sub(r"(\[\d\d:\d\d:\d\d\] \S+:\d+: )+", "", line).strip() or line
    return line[:160]


class VideoReader:
    """Open a video once; probe it; stream sampled frames in bounded-memory chunks.

    >>> reader = VideoReader("clip.mp4", size=224)
    >>> for frames, times in reader.iter_chunks(Sampling(fps=1)):
    ...     ...
    >>> reader.report  # how complete that decode was (DecodeReport)
    """

    def __init__(self, path: str | os.PathLike, size: int | None = None, backend: str = "auto"):
        if backend not in ("auto", "decord", "pyav"):
            raise ValueError(f"unknown backend {backend!r}")
        self.path = check_file(path)
        self.short_side = size
        self._pyav = _PyAVStream(self.path)
        self._decord = None
        self._decord_first = None
        self._decord_times = None
        self._messages = [0, ""]  # decord's log messages for this video (_DecoderLog)
        self.report = DecodeReport()
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
            rotation=s.rotation,
        )
        self.out_size = _resized(s.width, s.height, size)

    def _try_decord(self) -> str | None:
        """Open with decord and validate it against the container; return why not, or None."""
        import decord

        s = self._pyav
        if s.rotation:
            return f"the video is rotated {s.rotation} degrees (decord does not rotate)"
        w, h = _resized(s.width, s.height, self.short_side)
        if (w, h) in _DECORD_BAD_SIZES:
            return _DECORD_BAD_SIZES[(w, h)]
        try:
            if DECODER_LOG.install():
                with DECODER_LOG.lock:  # the threads started while it opens decode this video
                    before = DECODER_LOG.threads()
                    vr = decord.VideoReader(str(self.path), ctx=decord.cpu(0), width=w, height=h,
                                            num_threads=DECORD_THREADS)
                    DECODER_LOG.claim(DECODER_LOG.threads() - before, self._messages)
            else:
                vr = decord.VideoReader(str(self.path), ctx=decord.cpu(0), width=w, height=h,
                                        num_threads=DECORD_THREADS)
            n = len(vr)
            stamps = vr.get_frame_timestamp(np.arange(n)) if n else np.zeros((0, 2))
        except Exception as e:  # decord raises DECORDError / RuntimeError on bad input
            return f"decord failed: {_short(e)}"
        if n == 0:
            return "decord found no frames"
        # the checks that need no decoding first: they turn most AVIs away before a frame is decoded
        if s.header_frames and abs(n - s.header_frames) > max(2, _COUNT_TOLERANCE * s.header_frames):
            return f"decord counts {n} frames, container says {s.header_frames}"
        starts = stamps[:, 0]
        if not np.all(np.isfinite(stamps)) or starts[0] < -1e-3 or np.any(np.diff(starts) < 0):
            return "decord timestamps are invalid"
        try:  # some output sizes (e.g. 48 x 48) come back with 4 channels: dmlc/decord#336
            first = vr.get_batch([0]).asnumpy()
            shape = first.shape
        except Exception as e:
            reason = f"decord cannot decode at {w}x{h}: {_short(e)}"
            if "DECORDArrayCopyFromTo" in str(e):  # the same bug: frames of the wrong size
                _DECORD_BAD_SIZES[(w, h)] = reason
            return reason
        if tuple(shape) != (1, h, w, 3):
            _DECORD_BAD_SIZES[(w, h)] = f"decord decodes {tuple(shape)[1:]} frames at {w}x{h}"
            return _DECORD_BAD_SIZES[(w, h)]
        self._decord = vr
        self._decord_first = first  # handed out as frame 0 by the first read: decord need not seek back to it
        self._decord_times = starts.astype(np.float64)
        self._decord_frame_ends = stamps[:, 1].astype(np.float64)
        return None

    def close(self):
        self._pyav.close()
        self._decord = self._decord_first = None
        DECODER_LOG.release(self._messages)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def iter_chunks(self, sampling: Sampling, chunk: int = 32, report: DecodeReport | None = None
                    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield (frames uint8 [n,H,W,3], timestamps float64 [n]) with n <= chunk.

        `report` (default: a new one), also kept as ``self.report``, says how complete the decode
        was once the iteration has ended."""
        self.report = report = report if report is not None else DecodeReport()
        if sampling.every:
            idx = np.arange(0, len(self._decord_times), sampling.every) if self._decord is not None else None
            targets = None
        else:
            targets = sampling.target_times(self.info.duration)
            idx = _select(self._decord_times, targets) if self._decord is not None else None
        report._reset(self.info.backend, self.info.duration, 0 if targets is None else len(targets))
        emitted = -np.inf
        if idx is not None:
            # decord's index holds the frames it could read (a truncated file has fewer, then
            # PyAV reads it: the count check); decoding errors raise and PyAV takes over
            report._index(self._decord_times, float(self._decord_frame_ends[-1]))
            try:
                first, self._decord_first = self._decord_first, None
                if first is not None and len(idx) and idx[0] == 0:  # a chunk of its own: no copy to join it
                    report.frames += 1
                    yield first, self._decord_times[:1]
                    emitted, idx = self._decord_times[0], idx[1:]
                for i in range(0, len(idx), chunk):
                    part = idx[i : i + chunk]
                    frames = self._decord.get_batch(part.tolist()).asnumpy()
                    report.frames += len(part)
                    yield frames, self._decord_times[part]
                    emitted = self._decord_times[part[-1]]
                report.messages, report.first_message = self._messages
                report._finish(targets)
                return
            except Exception as e:  # a damaged stream part way: PyAV decodes the rest
                log.warning("%s: decord failed mid-stream (%s); using PyAV", self.path, _short(e))
                frames_so_far, error = report.frames, f"decord failed mid-stream ({_short(e)})"
                report._reset("decord+pyav", self.info.duration, report.targets)
                report.frames = frames_so_far
                report._error(error)
        picked = self._pick_every(sampling.every) if targets is None else self._pick_at(targets)
        frames, times = [], []
        for t, rgb in picked:
            if t > emitted + 1e-6:
                frames.append(rgb)
                times.append(t)
            if len(frames) == chunk:
                report.frames += len(frames)
                yield np.stack(frames), np.asarray(times)
                frames, times = [], []
        if frames:
            report.frames += len(frames)
            yield np.stack(frames), np.asarray(times)
        report.messages, report.first_message = self._messages
        report._finish(targets)

    def _pick_every(self, k: int) -> Iterator[tuple[float, np.ndarray]]:
        for i, (t, frame) in enumerate(self._pyav.frames(self.report)):
            if i % k == 0:
                yield t, self._pyav.rgb(frame, self.out_size)

    def _pick_at(self, targets: np.ndarray) -> Iterator[tuple[float, np.ndarray]]:
        """Streaming twin of `_select`: the frame on screen at each target time, no repeats."""
        k = 0  # next target to fill
        prev = None  # (time, frame) of the last decoded frame
        decoded = self._pyav.frames(self.report)
        for t, frame in decoded:
            if k >= len(targets):
                decoded.close()  # every target has its frame; only check that the file goes on
                self._pyav.scan_rest(self.report)
                return
            # targets before this frame's time are showing the previous frame
            if prev is not None and targets[k] + 1e-6 < t:
                yield prev[0], self._pyav.rgb(prev[1], self.out_size)
                while k < len(targets) and targets[k] + 1e-6 < t:
                    k += 1
            prev = (t, frame)
        if prev is not None and k < len(targets):
            yield prev[0], self._pyav.rgb(prev[1], self.out_size)


def iter_frames(
    path: str | os.PathLike,
    sampling: Sampling,
    size: int | None = None,
    chunk: int = 32,
    backend: str = "auto",
    report: DecodeReport | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Stream sampled frames of a video in chunks: (frames uint8 [n,H,W,3], times [n] seconds).

    `size` resizes while decoding so the short side is at most `size` pixels (bounded memory).
    Frames are upright (rotation metadata applied). A `report` passed in is filled with how
    complete the decode was (final once the iteration has ended).
    """
    with VideoReader(path, size=size, backend=backend) as reader:
        yield from reader.iter_chunks(sampling, chunk, report)


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
        size = (max(1, round(w * scale)), max(1, round(h * scale)))  # of the stored frame
        k = _rot_k(_rotation(path, stream))  # frames are turned upright after scaling
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
            out.append(_upright(shown.to_ndarray(format="rgb24", width=size[0], height=size[1]), k))
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
