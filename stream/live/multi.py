"""Several sources at once: one pipeline per source, one spotter engine stepping them all.

``stream.live.builder.build_many`` wires them: each source gets its own capture thread, ring,
worker thread, face tracker and decoder (all per-stream state); the spotter steps of all
streams meet in `engines.runtime.batching.SharedSteps`, which runs one batched engine step per
round. Events of every stream go to the one event bus, told apart by their ``stream`` field.
``run_streams`` runs them: a stream that ends or fails leaves the batch; the others go on.
"""

from __future__ import annotations

from collections.abc import Callable

from stream.live.builder import LiveRun


def run_streams(runs: list[LiveRun], should_stop: Callable[[], bool]) -> None:
    """Start all, wait until each ends (or `should_stop`), stop all; summaries filled in."""
    started = []
    try:
        for run in runs:
            run.pipeline.start()
            started.append(run)
        pending = list(started)
        while pending and not should_stop():
            for run in list(pending):
                if run.pipeline.wait(0.05):
                    _finish(run)
                    pending.remove(run)
    finally:
        for run in started:
            if run.summary is None:
                _finish(run)


def _finish(run: LiveRun) -> None:
    run.summary = run.pipeline.stop()
    if run.spotter is not None:
        run.spotter.close()  # the other streams stop waiting for this one
