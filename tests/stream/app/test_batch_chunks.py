"""Long videos in chunks on a real local Ray runtime: the chunks partition the video; with a
warm-up that covers the chain's memory the merged events equal a whole run's (confidences to
the stated tolerance, docs/benchmarks.md "Chunks"), with a short one they come close; a killed
worker and an interrupted run lose and duplicate nothing, a rerun redoes only missing chunks,
and events.parquet holds every event in time order."""

from __future__ import annotations

import itertools
import os
import signal
import time
from pathlib import Path

import pytest

from stream.app.batch_chunks import keep, owner_frame, plan_chunks
from stream.app.batch_inputs import VideoJob
from stream.capture.stretch import VideoScan
from stream.synthetic.animator import write_synthetic_set
from tests.helpers import log_lines as lines
from tests.helpers import partial_files as partials
from tests.helpers import run_batch as batch
from tests.helpers import start_batch

pytest.importorskip("ray", reason="mexlive batch needs Ray (the dev environment has it)")

CHUNKED = ("--chunk-s", "6", "--warmup-s", "3")  # 20-s clips: chunks at 0, 6, 12, 18 s
# A 3-s warm-up is shorter than the chain's memory (the calm-noise window, 40 s): per matched
# event apex ±2 frames and confidence ±0.03 when measured, and an event near the threshold can
# come or go: of the whole run's 6 events 5 matched, with 1 extra (0.667, threshold 0.633;
# measured with the first node spotter).
APEX_FRAMES, CONFIDENCE, MATCHED = 6, 0.1, 0.75
# A warm-up over the chain's memory: the tracker agrees within a second, the face smoothing
# within 3 s, the noise window after 40 s; only the spotter's state still carries the start
# (its slowest channel forgets in ~23 s): confidences within 2e-4 measured on looped lp_d6.
EXACT = ("--chunk-s", "43", "--warmup-s", "42")  # a 100-s clip: chunks at 0, 43, 86 s
EXACT_CONFIDENCE = 0.005


def job(name: str = "v") -> VideoJob:
    return VideoJob(f"/videos/{name}.mp4", name, "/out", None, {"spotter": "", "recognizer": ""})


@pytest.mark.parametrize(
    "frames, chunk_s, warmup_s",
    [
        (1000, 6.0, 3.0),  # a 33-s video in 6-s chunks
        (181, 6.0, 3.0),  # one frame past a chunk: a last chunk of one frame
        (540, 6.0, 5.9),  # the warm-up almost a chunk
    ],
)
def test_chunks_partition_the_video_and_each_line_has_one_owner(frames, chunk_s, warmup_s):
    scan = VideoScan(frames, 30.0, tuple(i / 30 for i in range(frames)))
    chunks = plan_chunks(job(), scan, chunk_s, warmup_s, tail_s=10.0)
    assert chunks[0].start == 0 and chunks[-1].end == frames
    for a, b in itertools.pairwise(chunks):
        assert a.end == b.start  # no frame skipped, none twice
    for c in chunks:
        assert c.warm == max(0, c.start - round(warmup_s * 30)) and c.stop == min(
            frames, c.end + 300
        )
        assert c.warm_pts_s == scan.pts_s[c.warm]
    for apex in range(frames):
        line = {"type": "expression", "apex_frame": apex, "seq": min(apex + 9, frames - 1)}
        assert sum(keep(c, line) for c in chunks) == 1
    started = {"type": "status", "status": "started", "seq": None}
    assert [keep(c, started) for c in chunks] == [True] + [False] * (len(chunks) - 1)
    assert owner_frame({"type": "blink", "onset_frame": 7, "seq": 12}) == 7


def test_a_video_of_one_chunk_runs_whole():
    scan = VideoScan(180, 30.0, tuple(i / 30 for i in range(180)))
    assert plan_chunks(job(), scan, 6.0, 3.0) == []


def expressions(log: Path) -> list[dict]:
    return [x for x in lines(log) if x["type"] == "expression"]


def key(event: dict) -> tuple:
    return (event["onset_frame"], event["apex_frame"], event["offset_frame"], event["kind"],
            event["emotion"], event["confidence"])  # fmt: skip


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    """Two 20-second synthetic clips with expressions (4 chunks each at --chunk-s 6)."""
    folder = tmp_path_factory.mktemp("clips")
    write_synthetic_set(folder, count=2, seconds=20.0, fps=30.0, seed=5, progress=False)
    return folder


@pytest.fixture(scope="module")
def runs(clips, tmp_path_factory) -> tuple[Path, Path]:
    """The same clips whole and chunked."""
    whole, chunked = tmp_path_factory.mktemp("whole"), tmp_path_factory.mktemp("chunked")
    done = batch(str(clips), "--out", str(whole), "--workers", "2")
    assert done.returncode == 0, done.stderr[-3000:]
    done = batch(str(clips), "--out", str(chunked), "--workers", "2", *CHUNKED)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "2 in 8 chunks of 6 s" in done.stderr
    return whole, chunked


def matches(a: dict, b: dict) -> bool:
    return (
        abs(a["apex_frame"] - b["apex_frame"]) <= APEX_FRAMES
        and a["emotion"] == b["emotion"]
        and abs(a["confidence"] - b["confidence"]) <= CONFIDENCE
    )


@pytest.mark.slow
def test_merged_chunks_with_a_short_warm_up_come_close_to_a_whole_run(clips, runs):
    whole, chunked = runs
    single_all, merged_all, matched_single, matched_merged = 0, 0, 0, 0
    for clip in sorted(clips.glob("*.mp4")):
        single = expressions(whole / f"{clip.stem}.jsonl")
        merged = expressions(chunked / f"{clip.stem}.jsonl")
        apexes = [e["apex_frame"] for e in merged]
        assert apexes == sorted(set(apexes)), "an event twice, or out of order, at a border"
        single_all, merged_all = single_all + len(single), merged_all + len(merged)
        matched_single += sum(any(matches(a, b) for b in merged) for a in single)
        matched_merged += sum(any(matches(a, b) for a in single) for b in merged)
        # every frame once: the merged stopped line counts the video, warm-ups aside
        stopped = lines(chunked / f"{clip.stem}.jsonl")[-1]
        assert stopped["status"] == "stopped" and stopped["processed"] == 600
        assert stopped["chunks"] == 4 and stopped["analysed_with_warmups"] > 600
        assert not (chunked / f"{clip.stem}.chunks").exists()  # merged, then removed
    assert single_all >= 4, "the clips should give events to compare"
    assert matched_single >= MATCHED * single_all, (matched_single, single_all)
    assert matched_merged >= MATCHED * merged_all, (matched_merged, merged_all)
    assert not partials(chunked)


@pytest.mark.slow
def test_merged_chunks_with_a_warm_up_over_the_memory_equal_a_whole_run(tmp_path_factory):
    """One 100-s clip in three chunks of 43 s, warm-ups of 42 s: the chunks from 43 s and 86 s
    start their own tracker, noise estimate and spotter mid-video, and give the whole run's
    events: the same frames, kinds and emotions, confidences within EXACT_CONFIDENCE."""
    folder = tmp_path_factory.mktemp("long")
    write_synthetic_set(folder, count=1, seconds=100.0, fps=30.0, seed=7, progress=False)
    whole, chunked = tmp_path_factory.mktemp("whole"), tmp_path_factory.mktemp("chunked")
    for out, flags in ((whole, ()), (chunked, EXACT)):
        done = batch(str(folder), "--out", str(out), "--workers", "2", *flags, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
    assert "1 in 3 chunks of 43 s" in done.stderr
    single = expressions(whole / "synthetic_000.jsonl")
    merged = expressions(chunked / "synthetic_000.jsonl")
    later = [e for e in single if e["apex_frame"] >= 43 * 30]  # owned by a chunk begun mid-video
    assert len(later) >= 3, "the clip should give events past the first chunk to compare"
    assert [key(e)[:-1] for e in merged] == [key(e)[:-1] for e in single]
    gaps = [abs(a["confidence"] - b["confidence"]) for a, b in zip(single, merged, strict=True)]
    assert max(gaps) <= EXACT_CONFIDENCE, gaps


@pytest.mark.slow
def test_events_parquet_holds_every_event_in_time_order(runs):
    pd = pytest.importorskip("pandas")
    _, chunked = runs
    table = pd.read_parquet(chunked / "events.parquet")
    logs = {p.stem: expressions(p) for p in chunked.glob("*.jsonl")}
    assert len(table) == sum(map(len, logs.values())) > 0
    assert set(table["video"]) <= set(logs)
    for name, rows in table.groupby("video", sort=False):
        assert list(rows["onset_s"]) == sorted(rows["onset_s"])
        assert sorted(rows["apex_frame"]) == sorted(e["apex_frame"] for e in logs[name])
    probs = table[["prob_negative", "prob_positive", "prob_surprise"]].sum(axis=1)
    assert ((probs - 1).abs() < 0.01).all()
    assert {"kind", "emotion", "confidence", "rois", "speaking", "head_speed"} <= set(table)
    assert not list(chunked.glob(".*partial*"))


def wait_for_chunk(out: Path, process, least: int = 0, timeout_s: float = 180) -> Path:
    """A chunk partial (a worker inside a chunk) once ``least`` chunks are done."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        done = chunk_records(out)
        found = [p for p in partials(out) if ".chunk" in p.name]
        if found and len(done) >= least:
            return found[0]
        assert process.poll() is None, process.communicate()[1][-2000:]
        time.sleep(0.02)
    raise AssertionError("no worker started a chunk")


def chunk_records(out: Path) -> list[Path]:
    return sorted(out.glob("*.chunks/*.done.json"))


@pytest.mark.slow
def test_a_killed_worker_an_interrupt_and_a_rerun_lose_and_duplicate_nothing(clips, runs, tmp_path):
    """One run: a worker killed inside a chunk (Ray runs that chunk again), then Ctrl-C once
    two chunks are done, then a rerun that runs only the chunks without a record; the merged
    events are exactly those of the undisturbed chunked run."""
    _, chunked = runs
    out = tmp_path / "out"
    out.mkdir()
    process = start_batch(str(clips), "--out", str(out), "--workers", "2", *CHUNKED)
    partial = wait_for_chunk(out, process)
    os.kill(int(partial.name.split(".")[2]), signal.SIGKILL)  # the Ray worker in that chunk
    wait_for_chunk(out, process, least=2)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr[-3000:]
    records = chunk_records(out)
    assert len(records) >= 2 and not partials(out)
    again = batch(str(clips), "--out", str(out), "--workers", "2", *CHUNKED)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"{len(records)} chunks already done" in again.stderr  # only the others ran
    for clip in clips.glob("*.mp4"):
        resumed = [key(e) for e in expressions(out / f"{clip.stem}.jsonl")]
        assert resumed == [key(e) for e in expressions(chunked / f"{clip.stem}.jsonl")]
    assert not list(out.glob("*.chunks")) and not partials(out)


@pytest.mark.slow
def test_a_container_that_cannot_seek_is_decoded_from_the_start_and_said_once(
    fixtures_dir, tmp_path
):
    import av

    raw = tmp_path / "raw.h264"  # lp_d5's H.264 without a container: no timestamps to seek by
    with av.open(str(fixtures_dir / "videos" / "lp_d5.mp4")) as src:
        stream = src.streams.video[0]
        with av.open(str(raw), "w", format="h264") as dst:
            out_stream = dst.add_stream_from_template(stream)
            for packet in src.demux(stream):
                if packet.dts is not None:
                    packet.stream = out_stream
                    dst.mux(packet)
    out = tmp_path / "out"
    result = batch(str(raw), "--out", str(out), "--workers", "2", "--chunk-s", "4", *CHUNKED[2:])
    assert result.returncode == 0, result.stderr[-3000:]
    said = [x for x in result.stderr.splitlines() if "cannot seek" in x]
    assert said == [
        "mexlive batch: raw: the container cannot seek; its chunks decoded from the start"
    ]
    stopped = lines(out / "raw.jsonl")[-1]
    assert stopped["processed"] == 148 and stopped["chunks"] == 2


@pytest.mark.parametrize(
    "flags, said",
    [
        # each chunk would be all warm-up
        (("--chunk-s", "5", "--warmup-s", "5"), "--chunk-s 5 must be longer than the warm-up"),
        # shorter than the spotter's 2-s calibration
        (("--warmup-s", "1"), "--warmup-s 1 is too short"),
        # nothing listens on port 1
        (("--address", "127.0.0.1:1"), "cannot join the Ray cluster at 127.0.0.1:1"),
    ],
)
def test_bad_chunk_and_cluster_flags_are_one_line_exit_2_and_no_folder(
    fixtures_dir, tmp_path, flags, said
):
    out = tmp_path / "out"
    result = batch(str(fixtures_dir / "videos" / "lp_d5.mp4"), "--out", str(out), *flags)
    assert result.returncode == 2
    stderr = result.stderr.strip().splitlines()
    assert len(stderr) == 1 and said in stderr[0], result.stderr
    assert "Traceback" not in result.stderr and not out.exists()
