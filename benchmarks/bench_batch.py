"""``mexlive batch`` with 1 and 2 Ray workers beside a plain ``mexlive --source`` loop, and one
long video whole and in chunks.

    python -m benchmarks.bench_batch [--videos lp_d5.mp4,...] [--synthetic 2] [--repeats 2]
    python -m benchmarks.bench_batch --only-long --long lp_d6.mp4 --long-minutes 5

The same set (fixture videos at their own resolution from ../shared/fixtures/videos or
$MEXLIVE_FIXTURES, and ``--synthetic`` 8-second synthetic clips) goes through: a loop of
single ``mexlive --source VIDEO --headless`` processes, one after another; ``mexlive batch``
with ``--workers 1``; and with ``--workers 2``, taking turns in each repeat so load hits them
alike. Each is timed from the command to its exit (Ray's start included) into a fresh output
folder; the table gives medians: videos/min, frames/s, and the speed-up over the loop.

The long row: ``--long`` looped (its packets copied with shifted timestamps, nothing
re-encoded) to ``--long-minutes``, through ``mexlive batch`` whole (one task) and in chunks
(``--chunk-s`` / ``--warmup-s``), each with 1 and 2 workers; the speed-up is over one worker
on the whole video, and the events of the chunked run are compared with the whole run's.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from statistics import median

from benchmarks.bench_batch_long import long_table
from benchmarks.bench_end_to_end import (
    fixture_videos,
    fixtures,
    mexlive_command,
    stopped_line,
    timed,
)
from benchmarks.machine_info import cpu_name
from stream.synthetic.animator import write_synthetic_set

VIDEOS = ("lp_d5.mp4", "lp_d3.mp4", "lp_d11.mp4", "st_rd2.mp4")


def frames_of(videos: list[Path], out: Path) -> int:
    return sum(stopped_line(out / f"{v.stem}.jsonl")["processed"] for v in videos)


def single_loop(videos: list[Path], out: Path) -> tuple[float, int]:
    out.mkdir()
    wall = 0.0
    for video in videos:
        log = out / f"{video.stem}.jsonl"
        command = [*mexlive_command(), "--source", str(video), "--headless"]
        wall += timed([*command, "--events", str(log)])[0]
    return wall, frames_of(videos, out)


def batch_run(videos: list[Path], out: Path, workers: int) -> tuple[float, int]:
    command = [*mexlive_command(), "batch", *map(str, videos), "--out", str(out)]
    wall = timed([*command, "--workers", str(workers), "--no-progress"])[0]
    return wall, frames_of(videos, out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_batch", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--videos", default=",".join(VIDEOS), help="fixture video names")
    parser.add_argument("--synthetic", type=int, default=2, help="synthetic 8-s clips added")
    parser.add_argument("--repeats", type=int, default=2, help="paired runs")
    parser.add_argument("--long", default="lp_d6.mp4", help="fixture video looped for the long row")
    parser.add_argument("--long-minutes", type=float, default=5.0, help="0: no long row")
    parser.add_argument("--chunk-s", type=float, default=75.0, help="the long row's chunks")
    parser.add_argument("--warmup-s", type=float, default=15.0, help="the long row's warm-up")
    parser.add_argument("--only-long", action="store_true", help="skip the short-video table")
    args = parser.parse_args(argv)
    if args.only_long:
        return long_table(args)
    videos, missing = fixture_videos(args.videos)
    if missing:
        print(f"fixture videos not found in {fixtures()}: {missing} (set MEXLIVE_FIXTURES)")
        return 2
    runs: dict[str, list[tuple[float, int]]] = {"loop": [], "1": [], "2": []}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.synthetic:
            videos += write_synthetic_set(
                work / "synthetic", count=args.synthetic, seconds=8.0, fps=30.0, seed=11,
                progress=False,
            )  # fmt: skip
        for repeat in range(args.repeats):
            print(f"repeat {repeat + 1}/{args.repeats} ...", file=sys.stderr, flush=True)
            runs["loop"].append(single_loop(videos, work / f"loop{repeat}"))
            for workers in ("1", "2"):
                out = work / f"batch{workers}_{repeat}"
                runs[workers].append(batch_run(videos, out, int(workers)))
    n = len(videos)
    loop_wall = median(w for w, _ in runs["loop"])
    print(
        f"\nMachine: {cpu_name()}, {os.cpu_count()} cores; {n} videos "
        f"({runs['loop'][0][1]} frames); medians of {args.repeats} paired runs.\n"
    )
    print("| run | wall s | videos/min | frames/s | speed-up vs the loop |\n|---|---|---|---|---|")
    for key, label in (
        ("loop", "`mexlive --source` per video, one after another"),
        ("1", "`mexlive batch --workers 1`"),
        ("2", "`mexlive batch --workers 2`"),
    ):
        wall = median(w for w, _ in runs[key])
        frames = runs[key][0][1]
        print(
            f"| {label} | {wall:.1f} | {n / wall * 60:.1f} | {frames / wall:.0f} | "
            f"{loop_wall / wall:.2f}× |"
        )
    return long_table(args) if args.long_minutes > 0 else 0


if __name__ == "__main__":
    raise SystemExit(main())
