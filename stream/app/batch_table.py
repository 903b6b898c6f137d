"""``OUT/events.parquet``: every expression event of the archive in one table.

One row per expression of every analysed video (this run's and an earlier run's), in time order
within a video (onset, then apex), videos by name. Columns: the video (its output name and
path), kind, emotion, the probability of each emotion, onset / apex / offset (frames and
seconds), duration, confidence, the regions that moved, the context (speaking, blink, head
speed) and the model's sha256. Written under a temporary name and renamed, like every output.

    import pandas as pd
    events = pd.read_parquet("results/events.parquet")
    events.groupby(["video", "kind"]).size()
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from engines.labels import EMOTIONS
from stream.app.batch_inputs import VideoJob, VideoResult

TABLE_NAME = "events.parquet"
TIMES = ("onset_frame", "apex_frame", "offset_frame", "onset_s", "apex_s", "offset_s")


def event_row(job: VideoJob, line: dict) -> dict:
    """One expression line of ``job``'s log as a table row."""
    probs = line.get("emotion_probs") or {}
    context = line.get("context") or {}
    return {
        "video": job.name,
        "video_path": job.video,
        "kind": line["kind"],
        "emotion": line["emotion"],
        **{f"prob_{name}": float(probs.get(name, float("nan"))) for name in EMOTIONS},
        **{key: line[key] for key in TIMES},
        "duration_ms": float(line.get("duration_ms", 0.0)),
        "confidence": float(line["confidence"]),
        "rois": list(line.get("rois") or []),
        "speaking": context.get("speaking"),
        "blink": context.get("blink"),
        "head_speed": context.get("head_speed"),
        "model_sha256": (line.get("model") or {}).get("sha256", ""),
    }


def archive_rows(jobs: list[VideoJob], results: list[VideoResult]) -> list[dict]:
    """The expression rows of every video whose log is complete, in time order per video."""
    analysed = {r.name for r in results if r.status in ("done", "skipped")}
    rows: list[dict] = []
    for job in sorted(jobs, key=lambda j: j.name):
        if job.name not in analysed:
            continue
        with open(job.log_path, encoding="utf-8") as log:
            lines = [json.loads(text) for text in log]
        found = [event_row(job, x) for x in lines if x.get("type") == "expression"]
        rows += sorted(found, key=lambda r: (r["onset_s"], r["apex_s"]))
    return rows


def write_events_table(out_dir: Path, rows: list[dict]) -> Path | None:
    """``out_dir/events.parquet`` complete or not at all; None without pyarrow."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return None
    schema = pa.schema(
        [
            ("video", pa.string()),
            ("video_path", pa.string()),
            ("kind", pa.string()),
            ("emotion", pa.string()),
            *[(f"prob_{name}", pa.float64()) for name in EMOTIONS],
            *[(key, pa.int64() if key.endswith("frame") else pa.float64()) for key in TIMES],
            ("duration_ms", pa.float64()),
            ("confidence", pa.float64()),
            ("rois", pa.list_(pa.string())),
            ("speaking", pa.bool_()),
            ("blink", pa.bool_()),
            ("head_speed", pa.float64()),
            ("model_sha256", pa.string()),
        ]
    )
    table = pa.Table.from_pylist(rows, schema=schema)
    path = out_dir / TABLE_NAME
    temporary = out_dir / f".{TABLE_NAME}.{os.getpid()}.partial"
    pq.write_table(table, temporary)
    os.replace(temporary, path)
    return path
