"""Video files decoded to BGR frames (PyAV): the real video that injection warps, and the
H.264 clips the data sets read back.

The product's file source is ``stream.capture.sources.AVSource``; capture sits above synthetic
(it serves the synthetic camera), so synthetic and the data sets decode with this reader. It
decodes as AVSource does (first video stream, frame threads, ``bgr24``, the frame's own
timestamp), which a test holds to the same pixels, and it does without what only a camera or a
network stream needs (timeouts, reconnects, corrupt packets skipped and counted).

Example:
    with VideoReader("clip.mp4") as video:
        while (frame := video.read()) is not None:
            frame.index, frame.pts_s, frame.image  # 0-based, seconds, (H, W, 3) uint8
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

from stream.contracts import SourceFrame
from stream.errors import MexliveError


class VideoReader:
    """A video file opened with PyAV; ``read()`` gives the next frame or None at the end.

    Raises ``MexliveError`` naming the file when it is missing, cannot be decoded, has no video
    stream or ends before the frames its index promises. With ``allow_short`` such an end is
    a normal end, said in ``ended_early`` (``mexlive inspect`` analyses every frame there).
    """

    def __init__(self, path: str | Path, allow_short: bool = False) -> None:
        self.path = Path(path)
        self.allow_short = allow_short
        self.ended_early: str | None = None
        self._container = None
        self._frames = None
        self._index = 0
        self._declared_frames = 0

    def __enter__(self) -> VideoReader:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def fps(self) -> float | None:
        if self._container is None:
            return None
        rate = self._container.streams.video[0].average_rate
        return float(rate) if rate else None

    @property
    def declared_frames(self) -> int:
        """The frames the file's index promises; 0 when it does not say."""
        return self._declared_frames

    def open(self) -> None:
        import av

        if not self.path.is_file():
            what = "is a folder, not a video file" if self.path.is_dir() else "no such video file"
            raise MexliveError(f"{self.path}: {what}")
        try:
            container = av.open(str(self.path), metadata_errors="replace")
        except av.error.FFmpegError as exc:
            # FFmpeg's words only: str(exc) repeats the errno and the path
            reason = str(getattr(exc, "strerror", None) or exc).strip()
            raise MexliveError(f"{self.path}: not a video FFmpeg can read ({reason})") from None
        if not container.streams.video:
            container.close()
            raise MexliveError(f"{self.path}: has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # as AVSource decodes
        self._declared_frames = int(stream.frames or 0)
        self._container = container
        self._frames = container.decode(stream)
        self._index = 0

    def read(self) -> SourceFrame | None:
        import av

        if self._frames is None:
            raise MexliveError(f"{self.path}: not open")
        try:
            frame = next(self._frames)
        except StopIteration:
            # A file whose index promises more frames than it holds was cut short.
            if self._declared_frames and self._index < self._declared_frames - 1:
                said = (
                    f"{self.path}: ends early after {self._index} of {self._declared_frames} "
                    "frames (truncated or corrupt file)"
                )
                if not self.allow_short:
                    raise MexliveError(said) from None
                self.ended_early = said
            return None
        except av.error.FFmpegError as exc:
            raise MexliveError(f"{self.path}: decoding failed: {exc}") from None
        image = frame.to_ndarray(format="bgr24")  # (H, W, 3) uint8
        out = SourceFrame(image=image, pts_s=frame.time, index=self._index, owned=True)
        self._index += 1
        return out

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None
            self._frames = None
