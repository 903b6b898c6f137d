"""``mexlive batch --address`` on a real two-node Ray cluster started on this machine (Ray's own
``ray.cluster_utils.Cluster``: a head and a second node, each a raylet with one CPU), one node
removed while its worker holds a chunk: the run completes and every frame and event is there,
the same events as the same chunks run on a local runtime."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from stream.synthetic.animator import write_synthetic_set
from tests.helpers import log_lines as lines
from tests.helpers import partial_files as partials
from tests.helpers import run_batch as batch
from tests.helpers import start_batch

pytest.importorskip("ray", reason="mexlive batch needs Ray (the dev environment has it)")
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]  # minutes on a loaded machine

CHUNKED = ("--chunk-s", "5", "--warmup-s", "3")  # a 15-s clip: 3 chunks


def alive(pid: int) -> bool:
    """Running (a killed worker may linger as a zombie nobody reaps in a container)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def chunk_pids(out: Path) -> set[int]:
    """The workers inside a chunk now (from their partial logs' names)."""
    return {int(p.name.split(".")[2]) for p in partials(out) if ".chunk" in p.name}


@pytest.fixture
def cluster(monkeypatch):
    from ray.cluster_utils import Cluster

    # workers at normal priority, as `mexlive batch` starts its own runtime (Ray's nice 15
    # starves them on a loaded machine); the raylets started here inherit it
    monkeypatch.setenv("RAY_worker_niceness", "0")

    small = {"num_cpus": 1, "object_store_memory": 80 * 1024 * 1024, "include_dashboard": False}
    cluster = Cluster(initialize_head=True, head_node_args=small)
    second = cluster.add_node(**{k: v for k, v in small.items() if k != "include_dashboard"})
    cluster.wait_for_nodes()
    yield cluster, second
    cluster.shutdown()


def expressions(log: Path) -> list[tuple]:
    return [
        (x["onset_frame"], x["apex_frame"], x["offset_frame"], x["kind"], x["emotion"])
        for x in lines(log)
        if x["type"] == "expression"
    ]


def test_a_node_removed_mid_run_loses_nothing(cluster, tmp_path):
    cluster, second = cluster
    clips = tmp_path / "clips"
    write_synthetic_set(clips, count=1, seconds=15.0, fps=30.0, seed=5, progress=False)
    out = tmp_path / "out"
    out.mkdir()
    process = start_batch(str(clips), "--out", str(out), "--address", cluster.address, *CHUNKED)
    deadline = time.monotonic() + 240
    while len(chunk_pids(out)) < 2:  # two chunks at once: one on each one-CPU node
        assert process.poll() is None, process.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "the two nodes never ran chunks at once"
        time.sleep(0.02)
    busy = chunk_pids(out)
    cluster.remove_node(second, allow_graceful=False)  # its raylet and workers die now
    lost: set[int] = set()
    for _ in range(100):  # its workers exit once they see their raylet gone
        lost = {pid for pid in busy if not alive(pid)}
        if lost:
            break
        time.sleep(0.1)
    try:
        _, stderr = process.communicate(timeout=400)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail(f"the run did not finish: {process.communicate()[1][-3000:]}")
    assert process.returncode == 0, stderr[-3000:]
    assert lost, "no chunk was running on the removed node"
    log = out / "synthetic_000.jsonl"
    stopped = lines(log)[-1]
    assert stopped["processed"] == 450 and stopped["chunks"] == 3
    assert not partials(out) and not (out / "synthetic_000.chunks").exists()
    # the same chunks on a local runtime give the same events: none lost, none twice
    local = tmp_path / "local"
    done = batch(str(clips), "--out", str(local), "--workers", "2", *CHUNKED)
    assert done.returncode == 0, done.stderr[-3000:]
    assert expressions(log) == expressions(local / "synthetic_000.jsonl")
    assert expressions(log), "the clip should give events to compare"
