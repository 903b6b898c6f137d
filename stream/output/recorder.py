"""VideoRecorder: writes BGR frames to a video file with PyAV (``--record``)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

from stream.errors import OutputError


class VideoRecorder:
    """H.264 (yuv420p) into .mp4/.mkv/.mov, opened at the first frame to learn its size.

    Frames of another size (a camera that reconnected at a new resolution) are scaled to the
    first size, so one recording stays one stream. Timestamps follow ``pts_s`` when given.

    Args:
        path: output file; its folder must be writable (checked at construction).
        fps: nominal rate, used for the time base and when a frame has no timestamp.
        crf: x264 quality (lower is better; 18-28 is sensible).
    """

    def __init__(self, path: str | Path, fps: float = 30.0, crf: int = 23) -> None:
        self.path = Path(path)
        self.fps = fps
        self.crf = crf
        folder = self.path.parent
        if folder.exists() and not folder.is_dir():  # checked before any frame is analysed
            raise OutputError(f"cannot record to {self.path}: {folder} is a file, not a folder")
        if not folder.is_dir():
            raise OutputError(f"cannot record to {self.path}: folder does not exist")
        self._container = None
        self._stream = None
        self._size: tuple[int, int] | None = None
        self._last_pts = -1
        self.frames_written = 0

    def _open(self, width: int, height: int) -> None:
        import av

        try:
            self._container = av.open(str(self.path), mode="w")
        except (av.error.FFmpegError, OSError) as exc:
            raise OutputError(f"cannot record to {self.path}: {exc}") from None
        rate = Fraction(self.fps).limit_denominator(1001)
        stream = self._container.add_stream("libx264", rate=rate)
        stream.width, stream.height = width - width % 2, height - height % 2
        stream.pix_fmt = "yuv420p"
        # Millisecond timestamps on both the encoder and the stream: variable-rate sources
        # (webcams, browser frames) keep their real timing.
        stream.codec_context.time_base = Fraction(1, 1000)
        stream.time_base = Fraction(1, 1000)
        stream.options = {"crf": str(self.crf), "preset": "veryfast"}
        self._stream = stream
        self._size = (stream.width, stream.height)

    def write(self, image: np.ndarray, pts_s: float | None = None) -> None:
        """Append one BGR uint8 (H, W, 3) frame."""
        import av
        import cv2

        if self._container is None:
            self._open(image.shape[1], image.shape[0])
        width, height = self._size
        if image.shape[1] != width or image.shape[0] != height:
            image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
        frame = av.VideoFrame.from_ndarray(image, format="bgr24")
        pts_ms = (
            round(pts_s * 1000)
            if pts_s is not None
            else round(self.frames_written * 1000 / self.fps)
        )
        frame.pts = max(pts_ms, self._last_pts + 1)  # the muxer needs increasing timestamps
        self._last_pts = frame.pts
        frame.time_base = Fraction(1, 1000)
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.frames_written += 1

    def close(self) -> None:
        if self._container is None:
            return
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()
        self._container = None

    def __enter__(self) -> VideoRecorder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
