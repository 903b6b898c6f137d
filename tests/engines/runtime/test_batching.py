"""SharedSteps: many streams on one engine give each stream exactly what stepping it alone gives.

Tolerance: 1e-5 max abs (float32; a batched matmul may sum in another order than batch 1).
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from engines.models.spotter import Spotter, SpotterConfig
from engines.runtime.backends import OnnxRuntimeEngine, TorchEngine
from engines.runtime.batching import SharedSteps
from engines.runtime.export import export_step

TOL = 1e-5
F = 12


@pytest.fixture(scope="module")
def model() -> Spotter:
    torch.manual_seed(1)
    torch.set_num_threads(1)
    return Spotter(SpotterConfig(n_features=F, d_model=16, n_layers=2)).eval()


def _alone(model: Spotter, rows: np.ndarray, gaps: set[int]) -> np.ndarray:
    """Reference: one stream on its own engine; a gap row resets and is not stepped."""
    engine = TorchEngine(model)
    state = engine.init_state(1)
    out = []
    for t, x in enumerate(rows):
        if t in gaps:
            state = engine.init_state(1)
            out.append(np.nan)
            continue
        apex, _, state = engine.step(x[None], state)
        out.append(float(apex[0]))
    return np.array(out)


def _run_streams(batch: SharedSteps, plans: list[tuple[int, np.ndarray, set[int]]]) -> list:
    """Each plan (start delay in rounds, rows (T, F), gap frames) runs in its own thread."""
    results: list[np.ndarray | None] = [None] * len(plans)
    start = threading.Barrier(len(plans))

    def run(i: int, delay: int, rows: np.ndarray, gaps: set[int]) -> None:
        start.wait()
        threading.Event().wait(0.002 * delay)  # join later than the others
        slot = batch.join()
        out = []
        for t, x in enumerate(rows):
            if t in gaps:
                batch.reset(slot)
                out.append(np.nan)
                continue
            apex, probs = batch.step(slot, x)
            assert probs.shape == (3,)
            out.append(apex)
        batch.leave(slot)
        results[i] = np.array(out)

    threads = [threading.Thread(target=run, args=(i, *p)) for i, p in enumerate(plans)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_streams_joining_and_leaving_match_alone(
    model: Spotter, backend: str, tmp_path: Path
) -> None:
    rng = np.random.default_rng(0)
    # Different lengths (streams leave at different times), late joins, gaps in one stream.
    plans = [
        (0, rng.standard_normal((60, F)).astype(np.float32), set()),
        (5, rng.standard_normal((25, F)).astype(np.float32), {7, 8}),
        (10, rng.standard_normal((80, F)).astype(np.float32), set()),
        (0, rng.standard_normal((40, F)).astype(np.float32), {0, 30}),
        (2, rng.standard_normal((45, F)).astype(np.float32), set()),
    ]
    if backend == "torch":
        engine = TorchEngine(model)
    else:
        pytest.importorskip("onnxruntime")
        engine = OnnxRuntimeEngine(export_step(model, tmp_path / "step.onnx"))
    batch = SharedSteps(engine, F, max_wait_s=0.05)
    got = _run_streams(batch, plans)
    for i, (_, rows, gaps) in enumerate(plans):
        np.testing.assert_allclose(got[i], _alone(model, rows, gaps), atol=TOL, err_msg=f"{i}")


def test_rounds_are_batched(model: Spotter) -> None:
    # Both streams joined before either steps, and no round can time out (10 s): every engine
    # step serves both, whatever the thread scheduling.
    batch = SharedSteps(TorchEngine(model), F, max_wait_s=10.0)
    slots = [batch.join(), batch.join()]
    rows = np.random.default_rng(4).standard_normal((2, 30, F)).astype(np.float32)
    got: list[list[float]] = [[], []]

    def run(i: int) -> None:
        got[i] = [batch.step(slots[i], x)[0] for x in rows[i]]

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert (batch.steps, batch.rows) == (30, 60)
    for i in range(2):
        np.testing.assert_allclose(got[i], _alone(model, rows[i], set()), atol=TOL)


def test_slots_are_reused_and_grow(model: Spotter) -> None:
    batch = SharedSteps(TorchEngine(model), F)
    a, b, c = batch.join(), batch.join(), batch.join()
    assert (a, b, c) == (0, 1, 2) and batch._capacity == 4
    batch.leave(b)
    assert batch.join() == 1  # the freed slot, with a fresh state
    with pytest.raises(ValueError, match="not joined"):
        batch.step(7, np.zeros(F, np.float32))


def test_a_stalled_stream_does_not_hold_the_others(model: Spotter) -> None:
    batch = SharedSteps(TorchEngine(model), F, max_wait_s=0.01)
    stalled = batch.join()  # joined, sends nothing for a while (a stalled camera)
    live = batch.join()
    rows = np.random.default_rng(3).standard_normal((20, F)).astype(np.float32)
    got = [batch.step(live, x)[0] for x in rows]  # each round times out after 10 ms
    np.testing.assert_allclose(got, _alone(model, rows, set()), atol=TOL)
    # The stalled stream's state was carried through those 20 rounds untouched: when its
    # camera comes back it continues from a fresh state, as if stepped alone.
    batch.leave(live)
    got = [batch.step(stalled, x)[0] for x in rows[:5]]
    np.testing.assert_allclose(got, _alone(model, rows[:5], set()), atol=TOL)
