"""The long-video row of ``benchmarks.bench_batch``: one looped real clip through ``mexlive batch``
whole and in chunks, with 1 and 2 workers (run it through ``bench_batch --only-long``)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from statistics import median

from benchmarks.bench_end_to_end import fixtures, mexlive_command, stopped_line, timed
from benchmarks.machine_info import cpu_name


def looped_clip(video: Path, minutes: float, path: Path) -> Path:
    """``video`` repeated to ``minutes``: its packets copied with shifted timestamps (no
    re-encoding, so every loop decodes like the original; each starts on its keyframe)."""
    import av

    with av.open(str(video)) as src:
        stream = src.streams.video[0]
        frame_ticks = round(1 / (stream.average_rate * stream.time_base))
        step = max(p.pts for p in src.demux(stream) if p.pts is not None) + frame_ticks
        loops = max(1, round(minutes * 60 / float(step * stream.time_base)))
    with av.open(str(path), "w") as dst:
        out = None
        for loop in range(loops):
            with av.open(str(video)) as src:
                stream = src.streams.video[0]
                out = out or dst.add_stream_from_template(stream)
                for packet in src.demux(stream):
                    if packet.size == 0:
                        continue
                    packet.pts += step * loop
                    packet.dts += step * loop
                    packet.stream = out
                    dst.mux(packet)
    return path


def events(log: Path) -> list[tuple]:
    found = []
    for line in log.read_text().splitlines():
        x = json.loads(line)
        if x.get("type") == "expression":
            found.append((x["apex_frame"], x["kind"], x["emotion"], x["confidence"]))
    return found


def run(clip: Path, out: Path, workers: int, chunk_s: float | None, warmup_s: float) -> float:
    command = [*mexlive_command(), "batch", str(clip), "--out", str(out), "--no-progress"]
    command += ["--workers", str(workers)]
    if chunk_s is not None:
        command += ["--chunk-s", str(chunk_s), "--warmup-s", str(warmup_s)]
    return timed(command)[0]


def long_table(args: argparse.Namespace) -> int:
    video = fixtures() / args.long
    if not video.is_file():
        print(f"fixture video not found: {video} (set MEXLIVE_FIXTURES)")
        return 2
    variants = {
        ("whole", 1): None, ("whole", 2): None,
        ("chunks", 1): args.chunk_s, ("chunks", 2): args.chunk_s,
    }  # fmt: skip
    walls: dict[tuple[str, int], list[float]] = {key: [] for key in variants}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        clip = looped_clip(video, args.long_minutes, work / f"long_{video.stem}.mp4")
        for repeat in range(args.repeats):
            for (mode, workers), chunk_s in variants.items():
                print(f"long {repeat + 1}/{args.repeats}: {mode} × {workers} ...", file=sys.stderr)
                out = work / f"{mode}{workers}_{repeat}"
                walls[(mode, workers)].append(run(clip, out, workers, chunk_s, args.warmup_s))
        log = f"{clip.stem}.jsonl"
        frames = stopped_line(work / "whole1_0" / log)["processed"]
        whole, chunked = events(work / "whole1_0" / log), events(work / "chunks1_0" / log)
    seconds = frames / 30.0
    print(
        f"\nMachine: {cpu_name()}, {os.cpu_count()} cores; {video.name} looped to "
        f"{seconds / 60:.1f} min ({frames} frames); chunks of {args.chunk_s:g} s with "
        f"{args.warmup_s:g} s of warm-up; medians of {args.repeats}.\n"
    )
    base = median(walls[("whole", 1)])
    print("| long video | workers | wall s | frames/s | speed-up vs whole × 1 |")
    print("|---|---|---|---|---|")
    for (mode, workers), chunk_s in variants.items():
        wall = median(walls[(mode, workers)])
        label = "whole (one task)" if chunk_s is None else f"chunks of {chunk_s:g} s"
        print(f"| {label} | {workers} | {wall:.1f} | {frames / wall:.0f} | {base / wall:.2f}× |")
    same = sum(a == b for a, b in zip(whole, chunked, strict=False))
    print(
        f"\nEvents: whole {len(whole)}, chunked {len(chunked)}, identical (apex, kind, emotion, "
        f"confidence) {same}."
    )
    return 0
