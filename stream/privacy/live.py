"""Live privacy: the sticker stage, causal calibration from the stream, the protected output.

``--privacy`` adds a ``privacy`` stage after the analysis (mexlive itself analyses the clean
frames) and before ``--record`` and the window, which then show the protected frames.
``--privacy-out PATH|URL`` writes only the protected stream (H.264 via PyAV) for a call or a
recording. ``--calibrate-privacy`` measures the person's region motion for
``--privacy-calibration-s`` seconds of face, runs the causal discovery of
``calibration/causal.py`` in a background thread (the stream never waits for it), moves the
sticker to the root region and writes the graph (JSON + PNG); it runs again when a face is
found after being lost (it may be another person). Until then the sticker sits on
``--privacy-region``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from calibration.causal import DEFAULT_FALLBACK, CausalGraph, discover
from stream.contracts import FeatureRow, Frame, FrameResults
from stream.errors import MexliveError
from stream.face.features import FACE_ROIS, feature_names
from stream.face.rois import ROI_NAMES, canonical_landmarks, roi_centres
from stream.live.pipeline import Stage
from stream.output.recorder import VideoRecorder
from stream.privacy.stickers import Sticker, StickerPlacer, check_region

MAG_ON = np.array([feature_names().index(f"{roi}.mag_on") for roi in FACE_ROIS])  # (R-1,)
EmitFn = Callable[[str, dict[str, Any], int | None], None]
URL_FORMATS = {
    "rtmp": "flv",
    "rtmps": "flv",
    "udp": "mpegts",
    "srt": "mpegts",
    "tcp": "mpegts",
    "rtsp": "rtsp",
}


def roi_motion_series(rows: Sequence[FeatureRow]) -> tuple[np.ndarray, np.ndarray]:
    """Per-region motion of feature rows for ``calibration.causal.discover``: the onset-flow
    magnitude of the 13 facial ROIs, (T, R-1) float64, and valid (T,) bool."""
    mags = np.stack([row.values[MAG_ON] for row in rows]) if rows else np.zeros((0, len(MAG_ON)))
    return mags.astype(np.float64), np.array([row.valid for row in rows], bool)


def region_positions() -> np.ndarray:
    """(R-1, 2) places of the facial ROIs on the canonical face, for drawing the graph."""
    centres = roi_centres(canonical_landmarks())  # (R, 2)
    return centres[[ROI_NAMES.index(name) for name in FACE_ROIS]]


class PrivacyCalibrator:
    """Collects ROI motion over ``seconds`` of face, then finds the root region in a thread.

    Args:
        on_done: called (from the worker thread) with the graph.
        graph_out: path prefix: writes PREFIX.json and PREFIX.png (None: not saved).
    """

    def __init__(
        self,
        seconds: float,
        on_done: Callable[[CausalGraph], None],
        graph_out: str | Path | None = None,
        lag_frames: int = 3,
        fallback: str = DEFAULT_FALLBACK,
    ) -> None:
        self.seconds = seconds
        self.on_done = on_done
        self.graph_out = Path(graph_out) if graph_out else None
        self.lag_frames = lag_frames
        self.fallback = fallback
        self._rows: list[FeatureRow] = []
        self._t0: float | None = None
        self._wanted = True  # a calibration window is still to be measured
        self._thread: threading.Thread | None = None
        self.graphs: list[CausalGraph] = []

    def restart(self) -> None:
        """Measure a new window from the next face (e.g. another person sat down)."""
        self._rows, self._t0, self._wanted = [], None, True

    @property
    def collecting(self) -> bool:
        return self._wanted

    def add(self, row: FeatureRow, t_s: float) -> None:
        """Feed one frame's features (invalid rows are kept: they mark the gaps)."""
        if not self.collecting or (self._thread is not None and self._thread.is_alive()):
            return
        if self._t0 is None:
            if not row.valid:
                return
            self._t0 = t_s
        self._rows.append(FeatureRow(row.seq, row.t_mono_ns, row.values.copy(), row.valid))
        if t_s - self._t0 >= self.seconds:
            rows, self._rows, self._t0, self._wanted = self._rows, [], None, False
            self._thread = threading.Thread(target=self._discover, args=(rows,), daemon=True)
            self._thread.start()

    def _discover(self, rows: list[FeatureRow]) -> None:
        mags, valid = roi_motion_series(rows)
        graph = discover(mags, valid, FACE_ROIS, self.lag_frames, fallback=self.fallback)
        if self.graph_out is not None:
            graph.save_json(self.graph_out.with_suffix(".json"))
            graph.save_png(self.graph_out.with_suffix(".png"), region_positions())
        self.graphs.append(graph)
        self.on_done(graph)

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)


class ProtectedWriter(VideoRecorder):
    """H.264 of the protected frames to a file (like ``--record``) or a URL (rtmp → FLV,
    udp/srt/tcp → MPEG-TS, rtsp)."""

    def __init__(self, target: str, fps: float = 30.0, crf: int = 23) -> None:
        self.url = target if "://" in target else None
        if self.url is None:
            super().__init__(target, fps, crf)
            return
        scheme = self.url.split("://", 1)[0].lower()
        if scheme not in URL_FORMATS:
            known = ", ".join(sorted(URL_FORMATS))
            raise MexliveError(f"--privacy-out cannot stream to {scheme}:// (only {known})")
        super().__init__(Path.cwd() / "unused", fps, crf)
        self._format = URL_FORMATS[scheme]

    def _open(self, width: int, height: int) -> None:
        if self.url is None:
            super()._open(width, height)
            return
        import av

        try:
            self._container = av.open(self.url, mode="w", format=self._format, timeout=5.0)
        except (av.error.FFmpegError, OSError) as exc:
            raise MexliveError(f"cannot stream to {self.url}: {exc}") from None
        rate = Fraction(self.fps).limit_denominator(1001)
        stream = self._container.add_stream("libx264", rate=rate)
        stream.width, stream.height = width - width % 2, height - height % 2
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        stream.options = {"crf": str(self.crf), "preset": "veryfast", "tune": "zerolatency"}
        self._stream, self._size = stream, (stream.width, stream.height)


class PrivacyStage:
    """Draws the sticker on each frame in place; optional calibration and protected output."""

    def __init__(
        self,
        placer: StickerPlacer,
        emit: EmitFn,
        calibrator: PrivacyCalibrator | None = None,
        writer: ProtectedWriter | None = None,
    ) -> None:
        self.placer = placer
        self.emit = emit
        self.calibrator = calibrator
        self.writer = writer
        self._drawing: bool | None = None
        self._had_face = False
        self.frames_protected = 0
        # The window's `p` key: whether the person wants the sticker now. A protected output
        # (--privacy-out) is never unprotected, whatever the key says.
        self.wanted: Callable[[], bool] = lambda: True

    def stage(self) -> Stage:
        return Stage("privacy", self)

    def __call__(self, frame: Frame, results: FrameResults) -> None:
        aligned = results.aligned
        if self.calibrator is not None:
            if aligned is not None and aligned.change == "face_found" and self._had_face:
                self.calibrator.restart()  # the face came back: it may be someone else
            row = results.features
            if row is not None:
                self.calibrator.add(row, frame.t_s)
        off = not self.wanted() and self.writer is None
        drawn = False if off else self.placer.apply(frame.image, aligned)
        self._had_face |= drawn
        self.frames_protected += drawn
        if drawn != self._drawing:  # one status line per change, not per frame
            reason = "" if drawn else (aligned.reason if aligned is not None else "no_face")
            reason = "turned_off" if off else reason
            self.emit(
                "privacy_sticker",
                {
                    "on": drawn,
                    "region": self.placer.region,
                    "reason": reason or ("" if drawn else "no_face"),
                },
                frame.seq,
            )
            self._drawing = drawn
        results.privacy = self.placer.last
        if self.writer is not None:
            self.writer.write(frame.image, frame.pts_s)

    def on_graph(self, graph: CausalGraph) -> None:
        """Move the sticker to the calibration's root region and say so."""
        self.placer.region = graph.root
        detail = {
            "root": graph.root,
            "fallback": graph.fallback_used,
            "reason": graph.reason,
            "edges": len(graph.edges),
            "samples": graph.n_samples,
        }
        self.emit("privacy_calibrated", detail, None)

    def close(self) -> None:
        if self.calibrator is not None:
            self.calibrator.join(30.0)
        if self.writer is not None:
            self.writer.close()


@dataclass(frozen=True)
class PrivacyOptions:
    """What the privacy flags ask for (``--privacy``, ``--privacy-out``, ...; see the module
    docstring). The defaults are the command line's."""

    draw: bool = False  # --privacy: on the window, --record and --privacy-out
    out: str | None = None  # --privacy-out PATH|URL: only the protected stream
    design: str = "solid"  # a built-in design (solid: best in bench_privacy)
    sticker: str | None = None  # an image file instead of a design (implies drawing)
    region: str = DEFAULT_FALLBACK  # where the sticker sits before (or without) calibration
    calibrate: bool = False  # choose the region by causal discovery over the first seconds
    calibration_s: float = 10.0  # seconds of face the calibration measures
    graph: str = "privacy_graph"  # the calibration's graph: PREFIX.json and PREFIX.png

    @property
    def wanted(self) -> bool:
        """Any of the options asks for a privacy stage."""
        return bool(self.draw or self.out or self.calibrate or self.sticker)


def privacy_stage(options: PrivacyOptions, emit: EmitFn, fps: float | None) -> PrivacyStage | None:
    """The stage ``options`` ask for (None when they ask for none); a ``LiveConfig.privacy``
    factory as ``functools.partial(privacy_stage, options)``. Bad input (sticker file, output,
    region) raises MexliveError."""
    if not options.wanted:
        return None
    check_region(options.region)
    if options.calibration_s <= 0:
        raise MexliveError("--privacy-calibration-s must be positive")
    sticker = (
        Sticker.from_file(options.sticker) if options.sticker else Sticker.design(options.design)
    )
    writer = ProtectedWriter(options.out, fps or 30.0) if options.out else None
    stage = PrivacyStage(StickerPlacer(sticker, options.region), emit, None, writer)
    if options.calibrate:
        lag = max(1, round(0.1 * (fps or 30.0)))  # ~100 ms between the two time slices
        stage.calibrator = PrivacyCalibrator(
            options.calibration_s,
            stage.on_graph,
            options.graph,
            lag_frames=lag,
            fallback=options.region,
        )
    return stage
