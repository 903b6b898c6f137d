"""How far a chunk of a long video is from a single run over the whole file, on real video.

    python -m benchmarks.bench_chunk_parity [--videos lp_d6.mp4,lp_d9.mp4] [--warmups 3,10,20]
    python -m benchmarks.bench_chunk_parity --videos lp_d6.mp4 --loop-minutes 4 --start-s 150

For each video the second half is analysed as ``mexlive batch`` analyses a chunk (seek to the
keyframe before the warm-up, inline alignment, a fresh tracker, spotter and decoder) with each
warm-up, and compared frame by frame with the whole-file run over the frames the chunk owns:
the largest and the median |apex score difference|, the frames where exactly one of the two
is above the spotter's threshold, and the decided intervals (reported or not) of each. A
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
    args = parser.parse_args(argv)
    videos, missing = fixture_videos(args.videos)
    if missing:
        print(f"fixture videos not found in {fixtures()}: {missing} (set MEXLIVE_FIXTURES)")
        return 2
    level = threshold()
    rows = []
    tmp = tempfile.TemporaryDirectory()
    for video in videos:
        if args.loop_minutes > 0:
            video = looped_clip(video, args.loop_minutes, Path(tmp.name) / video.name)
        scan = scan_video(video)
        start = scan.frames // 2 if args.start_s is None else round(args.start_s * scan.fps)
        end = min(scan.frames, start + round(args.owned_s * scan.fps))
        stop = min(scan.frames, end + round(10 * scan.fps))  # the decoder's tail
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
            rows.append(
                f"| {video.name} | {warmup_s:g}{' (frame 0)' if warm == 0 else ''} | "
                f"{start}–{end - 1} | {max(gaps):.3f} | "
                f"{median(gaps):.4f} | {flips} | {len(whole.owned(start, end))} | "
                f"{len(chunk.owned(start, end))} |"
            )
    print(f"\nMachine: {cpu_name()}, {os.cpu_count()} cores; spotter threshold {level:.3f}.\n")
    print(
        "| video | warm-up s | owned frames | max abs score diff | median abs score diff | "
        "frames on opposite sides of the threshold | intervals whole | intervals chunk |"
    )
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
