"""How far a chunk of a long video is from a single run over the whole file, on real video.

    python -m benchmarks.bench_chunk_parity [--videos lp_d6.mp4,lp_d9.mp4] [--warmups 3,10,20]
    python -m benchmarks.bench_chunk_parity --videos lp_d6.mp4 --loop-minutes 4 --start-s 150
    python -m benchmarks.bench_chunk_parity --videos "" --synthetic 100 --start-s 50

For each video the second half is analysed as ``mexlive batch`` analyses a chunk (seek to the
keyframe before the warm-up, inline alignment, a fresh tracker, spotter and decoder) with each
warm-up, and compared frame by frame with the whole-file run over the frames the chunk owns:
the largest and the median |apex score difference|, the share of frames with the very same
score, the frames where exactly one of the two is above the spotter's threshold, and the
decided intervals (reported or not) of each, and how many of the chunk's are the whole run's
(same frames, kind, emotion and fate, apex score within 0.005). A
warm-up that reaches back to frame 0 is the whole run itself (marked). ``--loop-minutes``
loops each video first (``bench_batch_long.looped_clip``) so a chunk can start minutes in.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from statistics import median

from benchmarks.bench_batch_long import looped_clip
from benchmarks.bench_end_to_end import fixture_videos, fixtures
from benchmarks.machine_info import cpu_name
from stream.app.chunk_parity import stretch_trace
from stream.capture.stretch import scan_video


def threshold() -> float:
    from engines.weights import DEFAULT_WEIGHTS, MANIFEST_NAME, read_manifest

    return read_manifest(DEFAULT_WEIGHTS.parent / MANIFEST_NAME)["operating_point"]["threshold"]


def same_intervals(whole: list[tuple], chunk: list[tuple], tolerance: float = 0.005) -> int:
    """Decided intervals of the chunk equal to one of the whole run's: onset, apex, offset,
    kind, emotion and whether reported, with the apex score within ``tolerance``."""
    return sum(
        any(a[:5] == b[:5] and a[6] == b[6] and abs(a[5] - b[5]) <= tolerance for a in whole)
        for b in chunk
    )


def digests(into: dict[int, dict[str, bytes | None]]):
    """A probe: per frame a digest of what each stage with memory produced."""
    import hashlib

    def digest(array) -> bytes | None:
        return None if array is None else hashlib.blake2b(array.tobytes(), digest_size=16).digest()

    def probe(frame, results) -> None:
        aligned, features, context = results.aligned, results.features, results.context
        into[frame.seq] = {
            "face tracker (landmarks)": digest(aligned and aligned.landmarks_px),
            "aligned face": digest(aligned and aligned.face),
            "node motion": digest(features and features.nodes),
            "context (blink, speaking, head speed)": None
            if context is None
            else repr((context.blink, context.speaking, context.head_speed)).encode(),
            "apex score": None if results.apex_score is None else repr(results.apex_score).encode(),
        }

    return probe


def stage_table(video: Path, warm: int, stop: int, pts_s: float) -> None:
    """How many frames after a chunk's first each stage's output equals the whole run's."""
    whole, chunk = {}, {}
    stretch_trace(str(video), 0, stop, also=digests(whole))
    stretch_trace(str(video), warm, stop, pts_s, also=digests(chunk))
    print(f"\n{video.name}: a chunk from frame {warm} against the whole run, to frame {stop}\n")
    print("| stage | identical from (frames after the chunk's first) |")
    print("|---|---|")
    for stage in whole[warm]:
        differ = [s for s in range(warm, stop) if whole[s][stage] != chunk[s][stage]]
        if differ and differ[-1] == stop - 1:
            print(f"| {stage} | never (differs to the last frame) |")
        else:
            print(f"| {stage} | {differ[-1] + 1 - warm if differ else 0} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_chunk_parity", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--videos", default="lp_d6.mp4,lp_d9.mp4,lp_d3.mp4")
    parser.add_argument("--warmups", default="3,10,20", help="warm-ups in seconds")
    parser.add_argument("--loop-minutes", type=float, default=0.0, help="0: the clips as they are")
    parser.add_argument(
        "--start-s", type=float, default=None, help="the chunk's start (default: half)"
    )
    parser.add_argument("--owned-s", type=float, default=30.0, help="the frames the chunk owns")
    parser.add_argument(
        "--synthetic",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="also a synthetic clip with expressions of this length (seed 7): real clips give "
        "the shipped spotter no interval to compare",
    )
    parser.add_argument(
        "--stages",
        type=float,
        default=0.0,
        metavar="WARMUP_S",
        help="first, for the first video: after how many frames of a chunk with this warm-up "
        "each stage's output is bit for bit the whole run's",
    )
    args = parser.parse_args(argv)
    videos, missing = fixture_videos(args.videos) if args.videos else ([], [])
    if missing:
        print(f"fixture videos not found in {fixtures()}: {missing} (set MEXLIVE_FIXTURES)")
        return 2
    level = threshold()
    rows = []
    tmp = tempfile.TemporaryDirectory()
    if args.synthetic > 0:
        from stream.synthetic.animator import write_synthetic_set

        folder = Path(tmp.name) / "synthetic"  # not where the looped copies go
        videos += write_synthetic_set(folder, 1, args.synthetic, 30.0, seed=7, progress=False)
    for number, video in enumerate(videos):
        if args.loop_minutes > 0:
            video = looped_clip(video, args.loop_minutes, Path(tmp.name) / video.name)
        scan = scan_video(video)
        start = scan.frames // 2 if args.start_s is None else round(args.start_s * scan.fps)
        end = min(scan.frames, start + round(args.owned_s * scan.fps))
        stop = min(scan.frames, end + round(10 * scan.fps))  # the decoder's tail
        if args.stages > 0 and number == 0:
            warm = max(0, start - round(args.stages * scan.fps))
            stage_table(video, warm, stop, scan.pts_s[warm])
        whole = stretch_trace(str(video), 0, stop)
        for warmup_s in (float(w) for w in args.warmups.split(",")):
            warm = max(0, start - round(warmup_s * scan.fps))
            chunk = stretch_trace(str(video), warm, stop, scan.pts_s[warm])
            both = [
                (whole.scores[s], chunk.scores[s])
                for s in range(start, end)
                if whole.scores.get(s) is not None and chunk.scores.get(s) is not None
            ]
            gaps = [abs(a - b) for a, b in both]
            flips = sum((a >= level) != (b >= level) for a, b in both)
            decided = whole.owned(start, end), chunk.owned(start, end)
            rows.append(
                f"| {video.name} | {warmup_s:g}{' (frame 0)' if warm == 0 else ''} | "
                f"{start}–{end - 1} | {max(gaps):.1e} | {median(gaps):.1e} | "
                f"{sum(g == 0 for g in gaps) / len(gaps):.0%} | {flips} | {len(decided[0])} | "
                f"{len(decided[1])} | {same_intervals(*decided)} |"
            )
    print(f"\nMachine: {cpu_name()}, {os.cpu_count()} cores; spotter threshold {level:.3f}.\n")
    print(
        "| video | warm-up s | owned frames | max abs score diff | median abs score diff | "
        "frames with equal scores | frames on opposite sides of the threshold | intervals whole "
        "| intervals chunk | the same intervals |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
