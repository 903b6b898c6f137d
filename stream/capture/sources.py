"""Frame sources: webcams, files and network streams (PyAV), and the synthetic face animator.

``open_source(spec)`` turns what a person types into a source:

==================  =====================================================
``"0"``             webcam index 0 (OpenCV, V4L2 on Linux)
``"/dev/video2"``   a V4L2 device
``"clip.mp4"``      a video file (PyAV)
``"rtsp://…"``      a network stream (PyAV; rtsp, rtmp, http(s), udp, tcp, srt)
``"synthetic:7"``   the synthetic animator with seed 7 (``"synthetic"`` = seed 0)
``"faults:…:SRC"``  a fault drill around SRC (``stream/capture/faults.py``)
==================  =====================================================

Every source is a context manager; ``read()`` returns the next ``SourceFrame`` or None at the
end of a file (a file cut short says so in ``ended_early``), and raises ``SourceReadError``
when a live source fails (the capture thread then reconnects with backoff).
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Protocol, runtime_checkable

from stream.contracts import SourceFrame
from stream.errors import SourceError, SourceReadError

URL_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https", "udp", "tcp", "srt")
LIVE_SCHEMES = ("rtsp", "rtsps", "rtmp", "udp", "tcp", "srt")
SPEC_HELP = (
    "a camera index like 0, a video file, a URL like rtsp://host/stream, or synthetic[:seed]"
)


@runtime_checkable
class Source(Protocol):
    """What the capture thread needs from a source."""

    name: str  # as the person typed it, for messages
    live: bool  # True: never block the camera (drop oldest) and reconnect on failure
    # A live source may also say ``paced = False``: it reconnects, but its frames do not come
    # at the world's pace, so the ring makes it wait instead of dropping (``Pipeline``).

    @property
    def fps(self) -> float | None: ...

    def open(self) -> None: ...

    def read(self) -> SourceFrame | None: ...

    def close(self) -> None: ...

    def counters(self) -> dict[str, int]: ...


class _ContextSource:
    """Context-manager plumbing shared by the sources."""

    def __enter__(self):
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def counters(self) -> dict[str, int]:
        return {}


class WebcamSource(_ContextSource):
    """An OpenCV capture device: an index (``0``) or a V4L2 path (``/dev/video0``)."""

    live = True

    def __init__(self, device: int | str, width: int | None = None, height: int | None = None):
        self.device = device
        self.name = f"camera {device}"
        self._size = (width, height)
        self._cap = None
        self._index = 0

    @property
    def fps(self) -> float | None:
        if self._cap is None:
            return None
        fps = float(self._cap.get(5))  # cv2.CAP_PROP_FPS
        return fps if fps > 0 else None

    def open(self) -> None:
        import cv2

        # OpenCV prints its own multi-line warnings for a missing camera; we say it once.
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
        api = cv2.CAP_V4L2 if os.name == "posix" and Path("/dev").is_dir() else cv2.CAP_ANY
        cap = cv2.VideoCapture(self.device, api)
        if not cap.isOpened():
            cap.release()
            raise SourceError(
                f"{self.name} could not be opened (no such device, no permission, "
                "or in use by another program)"
            )
        width, height = self._size
        if width and height:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        self._cap = cap

    def read(self) -> SourceFrame | None:
        if self._cap is None:
            raise SourceReadError(f"{self.name} is not open")
        ok, image = self._cap.read()
        if not ok or image is None:
            raise SourceReadError(f"{self.name} stopped delivering frames (unplugged?)")
        pts_ms = float(self._cap.get(0))  # cv2.CAP_PROP_POS_MSEC; 0 when the driver has none
        pts_s = pts_ms / 1e3 if pts_ms > 0 else None
        frame = SourceFrame(image=image, pts_s=pts_s, index=self._index, owned=True)
        self._index += 1
        return frame

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class AVSource(_ContextSource):
    """A video file or network stream decoded by PyAV.

    Args:
        target: a file path or a URL.
        open_timeout_s / read_timeout_s: network timeouts (PyAV's ``timeout=(open, read)``).
        live: None decides from the URL scheme (rtsp/rtmp/udp/... are live, files are not).
    """

    def __init__(
        self,
        target: str | os.PathLike,
        open_timeout_s: float = 5.0,
        read_timeout_s: float = 5.0,
        live: bool | None = None,
        decode_threads: int = 0,
    ) -> None:
        self.target = str(target)
        self.decode_threads = decode_threads  # 0: FFmpeg's frame threads; n: that many
        self.is_url = _url_scheme(self.target) is not None
        self.name = self.target
        self.live = bool(live) if live is not None else _url_scheme(self.target) in LIVE_SCHEMES
        self.timeouts = (open_timeout_s, read_timeout_s)
        self._container = None
        self._packets = None
        self._pending: list = []
        self._index = 0
        self._declared_frames = 0
        self._corrupt_packets = 0
        self.ended_early: str | None = None  # fewer frames than promised: a warning (cut files)

    @property
    def fps(self) -> float | None:
        if self._container is None:
            return None
        rate = self._container.streams.video[0].average_rate
        return float(rate) if rate else None

    def open(self) -> None:
        import av

        if not self.is_url and not Path(self.target).is_file():
            what = "is a directory, not a video" if Path(self.target).is_dir() else "no such file"
            raise SourceError(f"{self.target}: {what} (expected {SPEC_HELP})")
        options = {"rtsp_transport": "tcp"} if self.target.startswith("rtsp") else {}
        try:
            # Broken metadata in an untrusted file must not stop the video from playing.
            container = av.open(
                self.target, timeout=self.timeouts, options=options, metadata_errors="replace"
            )
        except (av.error.ExitError, av.error.TimeoutError) as exc:
            raise SourceError(
                f"{self.target}: no answer within {self.timeouts[0]:g} s ({_ffmpeg_reason(exc)})"
            ) from None
        except av.error.FFmpegError as exc:
            hint = " (unreadable or truncated file?)" if not self.is_url else ""
            raise SourceError(f"{self.target}: cannot open: {_ffmpeg_reason(exc)}{hint}") from None
        if not container.streams.video:
            container.close()
            raise SourceError(f"{self.target}: has no video stream")
        stream = container.streams.video[0]
        codec_name = stream.codec_context.name if stream.codec_context else None
        if not codec_name or codec_name == "none":
            container.close()
            raise SourceError(
                f"{self.target}: unsupported video codec (no decoder for it in FFmpeg)"
            )
        # 0: frame threads, decoding beside the pipeline; a batch worker (one core) asks for 1
        threads = stream.codec_context.thread_count = self.decode_threads
        stream.thread_type = "AUTO" if threads == 0 else "SLICE" if threads > 1 else "NONE"
        self._declared_frames = 0 if self.is_url else int(stream.frames or 0)
        self._container = container
        self._packets = container.demux(stream)
        self._pending = []
        self._index = 0

    def read(self) -> SourceFrame | None:
        import av

        if self._container is None:
            raise SourceReadError(f"{self.target}: not open")
        while not self._pending:
            try:
                packet = next(self._packets)
            except StopIteration:
                self._check_complete()
                return None
            except (av.error.ExitError, av.error.TimeoutError) as exc:
                raise SourceReadError(
                    f"{self.target}: read timed out ({_ffmpeg_reason(exc)})"
                ) from None
            except av.error.FFmpegError as exc:
                raise SourceReadError(
                    f"{self.target}: read failed: {_ffmpeg_reason(exc)}"
                ) from None
            try:
                self._pending = list(packet.decode())
            except av.error.FFmpegError:
                # One undecodable packet is skipped and counted; the stream goes on.
                self._corrupt_packets += 1
        frame = self._pending.pop(0)
        image = frame.to_ndarray(format="bgr24")  # (H, W, 3) uint8
        out = SourceFrame(image=image, pts_s=frame.time, index=self._index, owned=True)
        self._index += 1
        return out

    def _check_complete(self) -> None:
        # A file whose index promises more frames than it holds was cut short: not an error,
        if self._declared_frames and self._index < self._declared_frames - 1:  # all was read
            self.ended_early = (
                f"{self.target}: ends early after {self._index} of {self._declared_frames} frames "
                "its header promises (cut file?); every frame there was analysed"
            )

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None
            self._packets = None

    def counters(self) -> dict[str, int]:
        return {"corrupt_packets": self._corrupt_packets}


class SyntheticSource(_ContextSource):
    """The synthetic face animator as a source; paced like a camera when ``realtime``.

    It never drops: the capture thread waits for the pipeline (design.md, "Data flow"), so a
    slow pipeline shows in ``counters()``: "late" frames (over one interval), "max_lag_ms".
    """

    live = False

    def __init__(self, config=None, realtime: bool = True, max_frames: int | None = None) -> None:
        from stream.synthetic.animator import SyntheticConfig

        self.config = config or SyntheticConfig()
        self.name = f"synthetic:{self.config.seed}"
        self.realtime = realtime
        self.max_frames = max_frames
        self._animator = None
        self._index, self._t0 = 0, 0.0
        self._late, self._max_lag_s = 0, 0.0

    @property
    def fps(self) -> float | None:
        return float(self.config.fps)

    @property
    def animator(self):
        return self._animator

    def open(self) -> None:
        from stream.synthetic.animator import FaceAnimator

        self._animator = FaceAnimator(self.config)
        self._index = 0
        self._t0 = time.monotonic()
        self._late, self._max_lag_s = 0, 0.0

    def read(self) -> SourceFrame | None:
        if self._animator is None:
            raise SourceReadError(f"{self.name}: not open")
        if self.max_frames is not None and self._index >= self.max_frames:
            return None
        if self.realtime:
            due = self._t0 + self._index / self.config.fps
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif -delay > 1.0 / self.config.fps:
                self._late += 1
                self._max_lag_s = max(self._max_lag_s, -delay)
        image = self._animator.render(self._index)
        out = SourceFrame(image=image, pts_s=self._index / self.config.fps, index=self._index)
        self._index += 1
        return out

    def skip(self, n: int) -> None:
        """Let ``n`` frames go by unrendered (the scene goes on while nobody watches)."""
        self._index += n

    def close(self) -> None:
        pass  # the animator holds no OS resource; it stays readable for ground truth

    def counters(self) -> dict[str, int]:
        if not self.realtime:
            return {}
        return {"late": self._late, "max_lag_ms": round(self._max_lag_s * 1000)}


def open_source(
    spec: str,
    *,
    fps: float | None = None,
    realtime: bool = True,
    open_timeout_s: float = 5.0,
    read_timeout_s: float = 5.0,
    decode_threads: int = 0,
) -> Source:
    """Build (not yet open) the source a person asked for; raise SourceError for nonsense.

    Args:
        spec: ``"0"``, ``"/dev/video0"``, a path, a URL, or ``"synthetic[:seed]"``.
        fps: frame rate of the synthetic source.
        realtime: pace the synthetic source like a camera (False: as fast as it renders).
        decode_threads: a file's or URL's decoder threads (0: FFmpeg's frame threads).
    """
    spec = spec.strip()
    if not spec:
        raise SourceError(f"empty --source (expected {SPEC_HELP})")
    timeouts = {"open_timeout_s": open_timeout_s, "read_timeout_s": read_timeout_s}
    if spec.startswith("faults:"):  # a fault drill around another source (stream/capture/faults.py)
        from stream.capture.faults import open_faulty

        options = {"fps": fps, "realtime": realtime, "decode_threads": decode_threads}
        return open_faulty(spec, lambda inner: open_source(inner, **options, **timeouts))
    if spec.isdigit():
        return WebcamSource(int(spec))
    if spec.startswith("/dev/video"):
        return WebcamSource(spec)
    synth = re.fullmatch(r"synthetic(?::(.*))?", spec)
    if synth:
        from stream.synthetic.animator import SyntheticConfig

        seed_text = synth.group(1)
        if seed_text is not None and not re.fullmatch(r"\d+", seed_text):
            raise SourceError(
                f"{spec}: the synthetic seed must be a whole number, e.g. synthetic:7"
            )
        config = SyntheticConfig(seed=int(seed_text or 0))
        if fps is not None:
            if not 1 <= fps <= 240:
                raise SourceError(f"--fps {fps:g} is out of range (1-240)")
            config.fps = float(fps)
        return SyntheticSource(config, realtime=realtime)
    if spec.startswith("file://"):
        spec = spec[len("file://") :]
    if "://" in spec and _url_scheme(spec) is None:
        raise SourceError(f"{spec}: unsupported URL scheme (supported: {', '.join(URL_SCHEMES)})")
    return AVSource(spec, **timeouts, decode_threads=decode_threads)


def _url_scheme(target: str) -> str | None:
    match = re.match(r"([a-zA-Z][a-zA-Z0-9+.-]*)://", target)
    if match and match.group(1).lower() in URL_SCHEMES:
        return match.group(1).lower()
    return None


def _ffmpeg_reason(exc: Exception) -> str:
    """FFmpeg's own words without the errno and the repeated file name."""
    text = getattr(exc, "strerror", None) or str(exc)
    return str(text).strip()


def frame_shape(source: Source) -> tuple[int, int, int] | None:
    """(H, W, 3) of a synthetic source, known before the first frame; None otherwise."""
    config = getattr(source, "config", None)
    return (config.height, config.width, 3) if config is not None else None


__all__ = [
    "AVSource",
    "Source",
    "SourceError",
    "SourceReadError",
    "SyntheticSource",
    "WebcamSource",
    "frame_shape",
    "open_source",
]
