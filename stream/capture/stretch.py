"""A stretch of a video file: the frames ``[first_index, stop_index)`` with the indices a
whole-file read gives them, decoded from the keyframe before ``first_index`` (PyAV seek).

``mexlive batch`` splits a long video into chunks; each chunk reads its stretch through this
source, so its frames carry the same ``seq`` and timestamps as in a single run over the file.

    scan = scan_video("interview.mp4")               # every frame's timestamp, demuxed only
    source = StretchSource("interview.mp4", 9000, 18300, scan.pts_s[9000])

Where the container cannot seek (the seek raises, lands past the wanted frame, or the file has
no timestamps) the stretch decodes from the start and drops the frames before it: slower, the
same frames; ``fell_back`` says so.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from stream.capture.sources import AVSource
from stream.contracts import SourceFrame
from stream.errors import SourceError


@dataclass(frozen=True)
class VideoScan:
    """A file's frames in presentation order, from its packets (nothing decoded)."""

    frames: int
    fps: float
    pts_s: tuple[float, ...] | None  # sorted; None: the container has no timestamps

    @property
    def seconds(self) -> float:
        return self.frames / self.fps


def scan_video(path: str | os.PathLike) -> VideoScan:
    """Demux ``path`` once (fast: no decoding) for its frame count and timestamps."""
    import av

    try:
        with av.open(str(path), metadata_errors="replace") as container:
            if not container.streams.video:
                raise SourceError(f"{path}: has no video stream")
            stream = container.streams.video[0]
            fps = float(stream.average_rate or stream.guessed_rate or 30.0)
            times: list[float] = []
            timed = True
            for packet in container.demux(stream):
                if packet.size == 0:  # the flush packet at the end
                    continue
                if packet.pts is None:
                    timed = False
                times.append(float(packet.pts * stream.time_base) if timed else 0.0)
    except av.error.FFmpegError as exc:
        raise SourceError(f"{path}: cannot read: {exc}") from None
    pts = tuple(sorted(times)) if timed else None
    return VideoScan(frames=len(times), fps=fps, pts_s=pts)


class StretchSource(AVSource):
    """Frames ``[first_index, stop_index)`` of a file, indexed as in a whole-file read.

    Args:
        target: the video file.
        first_index / stop_index: the stretch, in whole-file frame indices.
        first_pts_s: the timestamp of frame ``first_index`` (``VideoScan.pts_s``); None:
            decode from the start (no timestamps to seek by).
        decode_threads: as ``AVSource``'s (0: FFmpeg's frame threads).
    """

    def __init__(
        self,
        target: str | os.PathLike,
        first_index: int,
        stop_index: int,
        first_pts_s: float | None,
        decode_threads: int = 0,
    ) -> None:
        super().__init__(target, live=False, decode_threads=decode_threads)
        self.first_index, self.stop_index = first_index, stop_index
        self.first_pts_s = first_pts_s
        self.fell_back = first_index > 0 and first_pts_s is None
        self._emitted = 0
        self._decoded = 0

    def open(self) -> None:
        super().open()
        self._emitted = self._decoded = 0
        if self.first_index == 0 or self.fell_back:
            return
        import av

        stream = self._container.streams.video[0]
        try:
            # backward: the keyframe at or before the first frame; frames before it are dropped
            target = int(self.first_pts_s / stream.time_base)
            self._container.seek(target, backward=True, any_frame=False, stream=stream)
            self._packets = self._container.demux(stream)
        except (av.error.FFmpegError, OverflowError, ValueError):
            self._from_start()

    def _from_start(self) -> None:
        """Reopen and decode from the first frame (a container that cannot seek)."""
        self.fell_back = True
        AVSource.close(self)
        AVSource.open(self)
        self._emitted = self._decoded = 0

    def read(self) -> SourceFrame | None:
        half_frame_s = 0.5 / (self.fps or 30.0)
        while self.first_index + self._emitted < self.stop_index:
            frame = super().read()
            if frame is None:
                return None
            self._decoded += 1
            if self.fell_back or self.first_index == 0:
                if self._decoded <= self.first_index:
                    continue  # before the stretch: decoded for its references only
            elif frame.pts_s is None or frame.pts_s < self.first_pts_s - half_frame_s:
                continue  # between the keyframe and the first frame
            elif self._emitted == 0 and frame.pts_s > self.first_pts_s + half_frame_s:
                self._from_start()  # the seek landed past the first frame: frames were lost
                continue
            frame.index = self.first_index + self._emitted
            self._emitted += 1
            return frame
        return None

    def _check_complete(self) -> None:
        # A seeked read counts only its own frames: the whole-file check does not apply.
        if self.first_index == 0 or self.fell_back:
            super()._check_complete()
