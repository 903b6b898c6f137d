"""Blink benchmark: ``engines.context`` blink detection against blinks labelled by hand.

    python -m benchmarks.bench_blinks                 # score every clip the labels name
    python -m benchmarks.bench_blinks --labels benchmarks/labels/blinks_heldout.csv
    python -m benchmarks.bench_blinks --sheets /tmp/blinks --clips lp_d3.mp4 vr_1.mp4

Each clip (a path, or a name in the fixtures' videos/ or corpus/: ../shared/fixtures or
$MEXLIVE_FIXTURES) is decoded (``VideoReader``), aligned (``FaceTracker``, dlib 68) and run
through ``ContextTracker``; per frame: the EAR, the blink flag, whether the eyes are in a
closure, whether a face was tracked. The blinks scored are the log's blink lines
(``engines.blink_runs.BlinkRuns``, as the context stage writes them); the per-frame flag's runs
(the spotter's input, and the lines before 2026-12-07) are scored in a last row.

Labels (``benchmarks/labels/blinks.csv``): ``clip,start_frame,end_frame``, one row per blink,
inclusive 0-based frame indices (as ``VideoReader`` counts) where the lids are visibly closing
or closed; ``clip,-1,-1`` marks a clip labelled with no blink; ``#`` lines are comments.
Every frame of a labelled clip counts as labelled.

Table, per clip and in total: labelled frames, true blinks, detected blink runs, event recall
(a true blink is found when a detected run overlaps it), event precision (a detected run is
right when it overlaps a true blink), frame recall and frame precision.

``--sheets DIR`` instead writes contact sheets of the eye region (landmarks 36-47, scaled up,
10 columns, each tile marked with its frame index and EAR) for labelling by eye.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engines.errors import BadInputError, DataError, MexliveError, report_error

REPO = Path(__file__).resolve().parents[1]
LABELS = REPO / "benchmarks" / "labels" / "blinks.csv"
# Other clips, labelled after the blink lines' rule was fixed: the check it was not tuned on.
HELD_OUT_LABELS = REPO / "benchmarks" / "labels" / "blinks_heldout.csv"
TILE_W, TILE_H, TEXT_H = 240, 80, 18  # one eye-region tile on a contact sheet, px
Run = tuple[int, int]  # inclusive frame range


@dataclass
class Trace:
    """One clip's per-frame results."""

    ear: np.ndarray  # (N,) smoothed EAR; nan without a face
    blink: np.ndarray  # (N,) bool, the detector's flag
    ok: np.ndarray  # (N,) bool, a face was tracked
    closed: np.ndarray  # (N,) bool, the eyes in a closure (FrameContext.eyes_closed)
    t_s: np.ndarray  # (N,) media time

    def lines(self) -> list[Run]:
        """The blink lines the live context stage writes for this clip."""
        from engines.blink_runs import BlinkRuns

        runs, out = BlinkRuns(), []
        for i in range(len(self.ok)):
            decided = (
                runs.update(i, float(self.t_s[i]), bool(self.closed[i]))
                if self.ok[i]
                else runs.gap()
            )
            out += [(run.onset, run.offset) for run in decided]
        return out + [(run.onset, run.offset) for run in runs.gap()]


def clip_path(name: str) -> Path:
    """A clip's file: its own path, else fixtures videos/NAME, else corpus/NAME."""
    root = Path(os.environ.get("MEXLIVE_FIXTURES") or REPO.parent / "shared" / "fixtures")
    for path in (Path(name), root / "videos" / name, root / "corpus" / name):
        if path.is_file():
            return path
    raise BadInputError(f"{name}: no such clip (looked in {root}/videos and {root}/corpus)")


def read_labels(path: Path) -> dict[str, list[Run]]:
    """clip name → its true blinks (inclusive runs, sorted); [] for a clip without blinks."""
    if not path.is_file():
        raise DataError(f"{path}: no such labels file")
    rows = [line for line in path.read_text().splitlines() if not line.lstrip().startswith("#")]
    labels: dict[str, list[Run]] = {}
    empty: set[str] = set()
    for i, row in enumerate(csv.DictReader(rows), start=1):
        try:
            clip = row["clip"].strip()
            start, end = int(row["start_frame"]), int(row["end_frame"])
        except (KeyError, TypeError, ValueError, AttributeError):
            raise DataError(
                f"{path}: data row {i}: want clip,start_frame,end_frame integers, got {row}"
            ) from None
        if not clip or not ((start == end == -1) or 0 <= start <= end):
            raise DataError(f"{path}: data row {i}: bad range {clip},{start},{end}")
        runs = labels.setdefault(clip, [])
        if start == -1:
            empty.add(clip)
        else:
            runs.append((start, end))
        if clip in empty and runs:
            raise DataError(f"{path}: {clip} is marked as having no blink but has blinks")
    if not labels:
        raise DataError(f"{path}: holds no label row")
    return {clip: sorted(runs) for clip, runs in labels.items()}


def runs_of(flags: np.ndarray) -> list[Run]:
    """(N,) bool → inclusive runs of True."""
    edges = np.diff(np.r_[0, np.asarray(flags, np.int8), 0])
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1
    return [(int(a), int(b)) for a, b in zip(starts, ends, strict=True)]


def overlaps(run: Run, others: list[Run]) -> bool:
    return any(a <= run[1] and run[0] <= b for a, b in others)


def score(truth: list[Run], detected: list[Run], n_frames: int) -> dict[str, int]:
    """Event and frame counts of detected runs against true runs (both inclusive)."""
    masks = [np.zeros(n_frames, bool), np.zeros(n_frames, bool)]  # true, detected frames
    for mask, runs in zip(masks, (truth, detected), strict=True):
        for a, b in runs:
            mask[a : b + 1] = True
    return {
        "frames": n_frames,
        "truth": len(truth),
        "detected": len(detected),
        "found": sum(overlaps(run, detected) for run in truth),  # true blinks overlapped
        "right": sum(overlaps(run, truth) for run in detected),  # detections overlapping
        "t_frames": int(masks[0].sum()),
        "d_frames": int(masks[1].sum()),
        "both": int((masks[0] & masks[1]).sum()),
    }


def rates(c: dict[str, int]) -> dict[str, float]:
    """Event and frame recall and precision of ``score`` counts; nan where undefined."""
    pairs = {
        "event_recall": ("found", "truth"),
        "event_precision": ("right", "detected"),
        "frame_recall": ("both", "t_frames"),
        "frame_precision": ("both", "d_frames"),
    }
    return {k: c[n] / c[d] if c[d] else float("nan") for k, (n, d) in pairs.items()}


def table_row(name: str, c: dict[str, int]) -> str:
    r = {k: "–" if v != v else f"{v:.3f}" for k, v in rates(c).items()}  # v != v: nan
    return (
        f"| {name} | {c['frames']} | {c['truth']} | {c['detected']} | "
        f"{r['event_recall']} ({c['found']}/{c['truth']}) | "
        f"{r['event_precision']} ({c['right']}/{c['detected']}) | "
        f"{r['frame_recall']} | {r['frame_precision']} |"
    )


def eye_box(landmarks: np.ndarray) -> tuple[float, float, float]:
    """(centre x, centre y, width) of a crop around both eyes (landmarks 36-47)."""
    eyes = landmarks[36:48]
    cx, cy = eyes.mean(0)
    return float(cx), float(cy), float(np.ptp(eyes[:, 0]) * 1.5)


def crop_eyes(image: np.ndarray, box: tuple[float, float, float]) -> np.ndarray:
    """The eye region of a BGR frame as a (TILE_H, TILE_W, 3) tile (3:1, zero padded)."""
    import cv2

    cx, cy, w = box
    h = w * TILE_H / TILE_W
    x0, y0 = round(cx - w / 2), round(cy - h / 2)
    x1, y1 = x0 + max(round(w), 1), y0 + max(round(h), 1)
    H, W = image.shape[:2]
    pad = max(0, -x0, -y0, x1 - W, y1 - H)
    if pad:
        image = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_CONSTANT)
    part = image[y0 + pad : y1 + pad, x0 + pad : x1 + pad]
    return cv2.resize(part, (TILE_W, TILE_H), interpolation=cv2.INTER_CUBIC)


def extract(path: Path, want_tiles: bool) -> tuple[Trace, list[np.ndarray]]:
    """Decode, align and run the context tracker over one clip; eye tiles if asked."""
    from engines.context import ContextTracker
    from stream.face.align import FaceTracker
    from stream.synthetic.decode import VideoReader

    tracker, context = FaceTracker(), ContextTracker()
    ear, blink, ok, closed, times, tiles = [], [], [], [], [], []
    box: tuple[float, float, float] | None = None
    with VideoReader(path) as video:
        fps = video.fps or 30.0
        while (source := video.read()) is not None:
            t = source.pts_s if source.pts_s is not None else source.index / fps
            aligned = tracker.update(source.image, source.index, round(t * 1e9), t)
            state = context.update(aligned.landmarks_px, t, aligned.ok)
            ear.append(state.eye_aperture)
            blink.append(state.blink)
            ok.append(aligned.ok)
            closed.append(state.eyes_closed)
            times.append(t)
            if want_tiles:
                if aligned.ok:
                    box = eye_box(np.asarray(aligned.landmarks_px))
                blank = np.zeros((TILE_H, TILE_W, 3), np.uint8)  # no face seen yet
                tiles.append(crop_eyes(source.image, box) if box is not None else blank)
    if not ear:
        raise DataError(f"{path}: holds no video frame")
    trace = Trace(
        np.array(ear, float),
        np.array(blink, bool),
        np.array(ok, bool),
        np.array(closed, bool),
        np.array(times, float),
    )
    return trace, tiles


def write_sheets(out: Path, clip: str, trace: Trace, tiles: list[np.ndarray], cols: int) -> int:
    """Contact sheets ``out/<clip>_NNN.png`` of ``cols`` × 10 tiles; returns how many."""
    import cv2

    out.mkdir(parents=True, exist_ok=True)
    per_sheet = cols * 10
    starts = range(0, len(tiles), per_sheet)
    for first in starts:
        chunk = range(first, min(first + per_sheet, len(tiles)))
        rows = -(-len(chunk) // cols)
        sheet = np.full((rows * (TILE_H + TEXT_H), cols * TILE_W, 3), 255, np.uint8)
        for k, i in enumerate(chunk):
            y, x = (k // cols) * (TILE_H + TEXT_H), (k % cols) * TILE_W
            sheet[y : y + TILE_H, x : x + TILE_W] = tiles[i]
            text = f"{i}  {trace.ear[i]:.3f}" if trace.ok[i] else f"{i}  no face"
            cv2.putText(sheet, text, (x + 4, y + TILE_H + 14), cv2.FONT_HERSHEY_SIMPLEX, 0.5, 0, 1)
            cv2.line(sheet, (x, y), (x, y + TILE_H + TEXT_H), (200, 200, 200), 1)
        cv2.imwrite(str(out / f"{Path(clip).stem}_{first // per_sheet:03d}.png"), sheet)
    return len(starts)


def load_trace(path: Path, cache: Path | None) -> Trace:
    """The clip's trace, from ``cache`` when it holds one for this file (name and size)."""
    key = cache / f"{path.name}.{path.stat().st_size}.v2.npz" if cache else None
    if key is not None and key.is_file():
        with np.load(key) as z:
            return Trace(z["ear"], z["blink"], z["ok"], z["closed"], z["t_s"])
    trace, _ = extract(path, want_tiles=False)
    if key is not None:
        key.parent.mkdir(parents=True, exist_ok=True)
        np.savez(key, **vars(trace))
    return trace


def machine_line() -> str:
    from benchmarks.machine_info import cpu_name

    return f"Machine: {cpu_name()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def run(args: argparse.Namespace) -> int:
    if args.cols < 1:
        raise BadInputError(f"--cols must be at least 1, got {args.cols}")
    if args.sheets is not None:
        if not args.clips:
            raise BadInputError("--sheets needs --clips (the clips to render)")
        for name in args.clips:
            trace, tiles = extract(clip_path(name), want_tiles=True)
            n = write_sheets(args.sheets, name, trace, tiles, args.cols)
            print(f"{name}: {len(tiles)} frames, {n} sheets; blink lines {trace.lines()}")
        return 0
    labels = read_labels(args.labels)
    clips = args.clips or list(labels)
    unlabelled = [c for c in clips if c not in labels]
    if unlabelled:
        raise BadInputError(f"not labelled in {args.labels}: {', '.join(unlabelled)}")
    paths = {name: clip_path(name) for name in clips}  # every clip checked before any work
    print(f"Command: python -m benchmarks.bench_blinks {shlex.join(args.argv)}".rstrip())
    print(machine_line() + "\n")
    head = "| clip | frames | true blinks | detected runs | event recall | event precision "
    print(head + "| frame recall | frame precision |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    total: dict[str, int] = {}
    flag_total: dict[str, int] = {}
    notes = []
    for name in clips:
        trace = load_trace(paths[name], args.cache)
        truth, detected = labels[name], trace.lines()
        if truth and max(end for _, end in truth) >= len(trace.blink):
            raise DataError(f"{args.labels}: {name} has only {len(trace.blink)} frames: {truth}")
        s = score(truth, detected, len(trace.blink))
        for k, v in s.items():
            total[k] = total.get(k, 0) + v
        for k, v in score(truth, runs_of(trace.blink), len(trace.blink)).items():
            flag_total[k] = flag_total.get(k, 0) + v
        print(table_row(name, s))
        missed = [r for r in truth if not overlaps(r, detected)]
        false = [r for r in detected if not overlaps(r, truth)]
        no_face = int((~trace.ok).sum())
        notes.append(f"- {name}: no face in {no_face} frames; missed {missed}; false {false}")
    print(table_row("**total**", total))
    print(table_row("total, per-frame flag runs", flag_total))
    print("\nMissed true blinks and false detections (inclusive frame runs):")
    print("\n".join(notes))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_blinks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--labels", type=Path, default=LABELS, help="hand labels CSV")
    parser.add_argument("--clips", nargs="+", help="clips to run (default: all labelled)")
    parser.add_argument("--sheets", type=Path, help="write eye contact sheets to DIR, no score")
    parser.add_argument("--cols", type=int, default=10, help="tiles per sheet row (10)")
    parser.add_argument("--cache", type=Path, help="keep per-clip traces here between runs")
    args = parser.parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else list(argv)
    try:
        return run(args)
    except MexliveError as exc:
        return report_error(exc, parser.prog)


if __name__ == "__main__":
    raise SystemExit(main())
