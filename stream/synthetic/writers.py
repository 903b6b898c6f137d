"""Deterministic video writers, and synthetic clips written with their ground-truth CSV.

``H264Writer`` (MP4 via PyAV) and ``Y4MWriter`` (raw YUV4MPEG2) take BGR frames.

Both are context managers with ``write(frame_bgr)``. The same frames always give the same bytes:
the H.264 writer runs x264 on one thread with FFmpeg's bitexact flags (no library version or
creation time in the file), which is what lets a synthetic data set be checked by its sha256.

The .y4m output is what Chromium's ``--use-file-for-fake-video-capture`` reads: 4:2:0 planes
(``C420jpeg``), BT.601 limited range as produced by ``cv2.COLOR_BGR2YUV_I420``.

``write_video`` / ``write_synthetic_set`` render ``stream.synthetic.animator.FaceAnimator`` clips
(and are
re-exported there); the truth CSV is MEGC-style, one event per row.

Example:
    with Y4MWriter("face.y4m", 640, 480, 30.0) as sink:
        sink.write(frame_bgr)
"""

from __future__ import annotations

import csv
import sys
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import cv2
import numpy as np

from stream.errors import MexliveError

if TYPE_CHECKING:  # stream.synthetic.animator imports this module: import it back only where used
    from stream.synthetic.animator import FaceAnimator, TruthEvent

CSV_FIELDS = ("onset", "apex", "offset", "kind", "emotion", "aus", "peak_px", "landmarks")


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


# ---- ground truth and files -----------------------------------------------------------------


def write_truth_csv(path: str | Path, events: list[TruthEvent]) -> None:
    """MEGC-style truth CSV; ``aus`` and ``landmarks`` are joined by '+'."""
    with Path(path).open("w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(CSV_FIELDS)
        for e in events:
            writer.writerow(
                [
                    e.onset,
                    e.apex,
                    e.offset,
                    e.kind,
                    e.emotion,
                    "+".join(map(str, e.aus)),
                    repr(float(e.peak_px)),
                    "+".join(map(str, e.landmarks)),
                ]
            )


def read_truth_csv(path: str | Path) -> list[TruthEvent]:
    """Events written by ``write_truth_csv``; MexliveError names the file and the line of
    anything malformed."""
    from stream.synthetic.animator import TruthEvent

    def ints(text: str) -> tuple[int, ...]:
        return tuple(int(v) for v in text.split("+")) if text else ()

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MexliveError(f"cannot read truth CSV {path}: {exc}") from None
    reader = csv.DictReader(text.splitlines())
    missing = [name for name in CSV_FIELDS if name not in (reader.fieldnames or [])]
    if missing:
        raise MexliveError(f"{path}: line 1: missing column(s) {', '.join(missing)}")
    events = []
    for row in reader:
        line = reader.line_num
        try:
            onset, apex, offset = int(row["onset"]), int(row["apex"]), int(row["offset"])
            event = TruthEvent(
                onset,
                apex,
                offset,
                row["kind"],
                row["emotion"] or "",
                ints(row["aus"] or ""),
                float(row["peak_px"]),
                ints(row["landmarks"] or ""),
            )
        except (TypeError, ValueError) as exc:
            raise MexliveError(f"{path}: line {line}: {exc}") from None
        if row["kind"] not in ("micro", "macro", "blink"):
            raise MexliveError(
                f"{path}: line {line}: kind {row['kind']!r} is not micro, macro or blink"
            )
        if not 0 <= onset <= apex <= offset:
            raise MexliveError(
                f"{path}: line {line}: frames {onset}, {apex}, {offset} are not "
                "0 <= onset <= apex <= offset"
            )
        events.append(event)
    return events


def write_video(
    path: str | Path, animator: FaceAnimator, n_frames: int, progress: bool = False
) -> Path:
    """Render frames [0, n_frames) to ``.mp4`` (H.264) or ``.y4m``, truth CSV beside it.

    The CSV (same stem, ``.csv``) holds the events that lie wholly inside the clip: an event cut
    by the clip's end would be a partial truth.
    """
    return _write_video(Path(path), animator, n_frames, "frame" if progress else None)


def _write_video(path: Path, animator: FaceAnimator, n_frames: int, label: str | None) -> Path:
    cfg = animator.config
    writers = {".mp4": H264Writer, ".y4m": Y4MWriter}
    if path.suffix.lower() not in writers:
        raise MexliveError(f"unsupported synthetic video format {path.suffix!r}: use .mp4 or .y4m")
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = np.empty((cfg.height, cfg.width, 3), np.uint8)  # (H, W, 3) reused
    every = max(1, n_frames // 100)
    with writers[path.suffix.lower()](path, cfg.width, cfg.height, cfg.fps) as sink:
        for i in range(n_frames):
            sink.write(animator.render(i, frame))
            if label is not None and (i % every == 0 or i == n_frames - 1):
                print(f"\r{label} {i + 1}/{n_frames}", end="", file=sys.stderr, flush=True)
    if label is not None:
        print(file=sys.stderr)
    events = [e for e in animator.events_between(0, n_frames) if e.offset < n_frames]
    write_truth_csv(path.with_suffix(".csv"), events)
    return path


def write_synthetic_set(
    out_dir: str | Path,
    count: int,
    seconds: float,
    fps: float,
    seed: int = 0,
    fmt: str = "mp4",
    photos: list[str] | None = None,
    progress: bool = True,
) -> list[Path]:
    """Write ``count`` clips ``synthetic_000.<fmt>``... with truth CSVs; returns the video paths.

    Clip i uses seed ``seed * 1000 + i`` and photo ``photos[i % len(photos)]`` (the astronaut
    when ``photos`` is None), so the same arguments give byte-identical files.
    """
    from stream.synthetic.animator import FaceAnimator, SyntheticConfig

    if fmt not in ("mp4", "y4m"):
        raise MexliveError(f"unsupported synthetic video format {fmt!r}: use mp4 or y4m")
    out = Path(out_dir)
    n_frames = round(seconds * fps)
    paths = []
    for i in range(count):
        photo = photos[i % len(photos)] if photos else None
        animator = FaceAnimator(SyntheticConfig(fps=fps, seed=seed * 1000 + i, photo=photo))
        label = f"clip {i + 1}/{count} frame" if progress else None
        paths.append(_write_video(out / f"synthetic_{i:03d}.{fmt}", animator, n_frames, label))
    return paths
