"""Deterministic video writers of BGR frames: H.264 MP4 and raw Y4M.

``H264Writer`` (MP4 via PyAV) and ``Y4MWriter`` (raw YUV4MPEG2) take BGR frames.

Both are context managers with ``write(frame_bgr)``. The same frames always give the same bytes:
the H.264 writer runs x264 on one thread with FFmpeg's bitexact flags (no library version or
creation time in the file), which is what lets a synthetic data set be checked by its sha256.

The .y4m output is what Chromium's ``--use-file-for-fake-video-capture`` reads: 4:2:0 planes
(``C420jpeg``), BT.601 limited range as produced by ``cv2.COLOR_BGR2YUV_I420``.

``stream.synthetic.animator.write_video`` renders clips with these writers.

Example:
    with Y4MWriter("face.y4m", 640, 480, 30.0) as sink:
        sink.write(frame_bgr)
"""

from __future__ import annotations

import platform
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import cv2
import numpy as np

from stream.errors import MexliveError


def fps_fraction(fps: float) -> Fraction:
    """``fps`` as an exact rational, as containers want it (29.97 -> 30000/1001, 25 -> 25/1)."""
    ntsc = round(fps * 1.001)
    if abs(fps - ntsc / 1.001) < 1e-3 and abs(fps - round(fps)) > 1e-3:
        return Fraction(ntsc * 1000, 1001)  # NTSC-family rates
    return Fraction(fps).limit_denominator(1001)


def _check_size(width: int, height: int) -> None:
    # 4:2:0 chroma halves both axes: odd sizes cannot be stored without cropping or padding.
    if width % 2 or height % 2:
        raise MexliveError(f"4:2:0 video needs an even frame size, got {width}x{height}")


class _Writer:
    def __enter__(self):
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class Y4MWriter(_Writer):
    """Raw YUV4MPEG2 4:2:0 file; frame ``k`` starts at ``len(header) + k * (6 + w*h*3/2)``."""

    def __init__(self, path: str | Path, width: int, height: int, fps: float) -> None:
        _check_size(width, height)
        self.path = Path(path)
        self.width, self.height = width, height
        rate = fps_fraction(fps)
        self.header = (
            f"YUV4MPEG2 W{width} H{height} F{rate.numerator}:{rate.denominator} "
            "Ip A1:1 C420jpeg XYSCSS=420JPEG\n"
        ).encode("ascii")
        self._yuv = np.empty((height * 3 // 2, width), np.uint8)  # (1.5 H, W) I420 planes
        self._file = self.path.open("wb")
        self._file.write(self.header)
        self.frames = 0

    def write(self, frame_bgr: np.ndarray) -> None:
        cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2YUV_I420, dst=self._yuv)
        self._file.write(b"FRAME\n")
        self._file.write(self._yuv.data)
        self.frames += 1

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


X264_ASM = "MMX2,SSE,SSE2,SSE3,SSSE3,SSE4.1,SSE4.2,AVX,AVX2,FMA3,BMI1,BMI2,LZCNT"


class H264Writer(_Writer):
    """H.264 (libx264, yuv420p) in MP4 via PyAV, byte-for-byte reproducible.

    Args:
        crf: x264 constant rate factor; 16 keeps sub-pixel facial motion that a micro-expression
            spotter needs (higher values smear 1-2 px movements into the quantisation noise).
    """

    def __init__(
        self,
        path: str | Path,
        width: int,
        height: int,
        fps: float,
        crf: int = 16,
        preset: str = "fast",
    ) -> None:
        import av

        _check_size(width, height)
        self.path = Path(path)
        self.width, self.height = width, height
        self.rate = fps_fraction(fps)
        self._av = av
        # bitexact: the muxer leaves out the "Lavf..." encoder tag; nothing sets creation_time.
        self._container = av.open(
            str(self.path), mode="w", format="mp4", options={"fflags": "+bitexact"}
        )
        stream = self._container.add_stream("libx264", rate=self.rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        ctx = stream.codec_context
        ctx.thread_count = 1  # x264's frame threads make the bitstream depend on timing
        ctx.time_base = 1 / self.rate
        ctx.options = {"crf": str(crf), "preset": preset, "threads": "1", "flags": "+bitexact"}
        if platform.machine().lower() in ("x86_64", "amd64"):
            # x264's AVX-512 kernels made the same frames encode to different bitstreams run
            # to run on this project's AMD EPYC machines (one thread, bitexact): a feature
            # file of the same video then differed by up to 30 px of flow. AVX2 and below
            # encode identically every time at the same speed.
            ctx.options = {**ctx.options, "x264-params": f"asm={X264_ASM}"}
        self._stream = stream
        self.frames = 0

    def write(self, frame_bgr: np.ndarray) -> None:
        frame = self._av.VideoFrame.from_ndarray(frame_bgr, format="bgr24")
        frame.pts = self.frames
        frame.time_base = 1 / self.rate
        self._container.mux(self._stream.encode(frame))
        self.frames += 1

    def close(self) -> None:
        if self._container is None:
            return
        try:
            self._container.mux(self._stream.encode(None))  # flush delayed frames
        finally:
            self._container.close()
            self._container = None
