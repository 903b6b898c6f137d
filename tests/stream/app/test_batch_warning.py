"""A video whose header promises more frames than it holds: ``mexlive batch`` analyses every
frame there and marks the row done with a warning (one job, in this process: no Ray)."""

from __future__ import annotations

import json

from stream.app.batch_inputs import VideoJob, completed, shipped_weights
from stream.app.batch_work import analyse_video


def test_a_cut_video_is_done_with_a_warning(fixtures_dir, tmp_path):
    data = (fixtures_dir / "videos" / "tpsmm_driving.mp4").read_bytes()  # index at the front
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    out = tmp_path / "out"
    out.mkdir()
    job = VideoJob(str(cut), "cut", str(out), None, shipped_weights())

    result = analyse_video(job)

    assert result.status == "done" and result.error == "", result.error
    assert "ends early" in result.warning and 0 < result.frames < 169
    record = json.loads(job.record_path.read_text())
    assert record["status"] == "done" and "ends early" in record["warning"]
    assert completed(job) is not None  # a rerun skips it like any finished video
    statuses = [json.loads(line).get("status") for line in job.log_path.read_text().splitlines()]
    assert statuses.count("source_ended_early") == 1 and statuses[-1] == "stopped"
