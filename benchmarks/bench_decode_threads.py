"""Decoder threads when every core runs its own stream, as in ``mexlive batch``: N copies of
``mexlive --source CLIP --headless --align inline`` at once (N = cores), with FFmpeg's frame
threads (``--decode-threads 0``, a single run's default) and with one decoder thread (``1``,
what batch workers use), interleaved so the machine's drift falls on both alike.

    python -m benchmarks.bench_decode_threads [--video lp_d6.mp4] [--minutes 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path
from statistics import median

from benchmarks.bench_batch_long import looped_clip
from benchmarks.bench_end_to_end import fixtures, mexlive_command
from benchmarks.machine_info import cpu_name


def streams_wall(clip: Path, threads: int, copies: int, out: Path) -> float:
    """Wall seconds until all ``copies`` runs are done."""
    started = time.perf_counter()
    runs = []
    for i in range(copies):
        command = [*mexlive_command(), "--source", str(clip), "--headless", "--align", "inline"]
        command += ["--decode-threads", str(threads), "--events", str(out / f"{threads}_{i}.jsonl")]
        runs.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    if any(run.wait() != 0 for run in runs):
        raise RuntimeError(f"a run with --decode-threads {threads} failed")
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_decode_threads", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--video", default="lp_d6.mp4", help="a fixture video, looped")
    parser.add_argument("--minutes", type=float, default=2.0, help="length after looping")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    video = fixtures() / args.video
    if not video.is_file():
        print(f"fixture video not found: {video} (set MEXLIVE_FIXTURES)")
        return 2
    copies = os.cpu_count() or 1
    walls: dict[int, list[float]] = {0: [], 1: []}
    with tempfile.TemporaryDirectory() as tmp:
        clip = looped_clip(video, args.minutes, Path(tmp) / video.name)
        for _ in range(args.repeats):
            for threads in walls:
                walls[threads].append(streams_wall(clip, threads, copies, Path(tmp)))
    print(
        f"\nMachine: {cpu_name()}, {copies} cores; {copies} streams of {args.video} looped to "
        f"{args.minutes:g} min at once; {args.repeats} interleaved repeats.\n"
    )
    print("| decoder threads | wall s per repeat | median | vs frame threads |")
    print("|---|---|---|---|")
    base = median(walls[0])
    for threads, values in walls.items():
        label = "0 (FFmpeg's frame threads)" if threads == 0 else "1 (mexlive batch)"
        each = " / ".join(f"{v:.1f}" for v in values)
        print(f"| {label} | {each} | {median(values):.1f} | {median(values) / base:.3f}× |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
