"""Many streams on one engine: a batched state with slots that streams join and leave.

    batch = SharedSteps(engine, max_wait_s=0.004)
    slot = batch.join()                              # a fresh (zero) state for this stream
    apex, probs = batch.step(slot, x_row, valid)     # from the stream's own thread; blocks
    batch.reset(slot)                                # a gap: that stream starts afresh
    batch.leave(slot)                                # the slot is free for the next stream

Each stream's thread calls `step` with its row; one engine step runs for all streams as soon
as every joined stream has submitted a row, or `max_wait_s` after the first one did (a slow
or stalled stream never holds the others longer than that). A stream that submitted nothing
this round is carried through unchanged: its state is restored after the batched step, so
joining, leaving and waiting streams never disturb the others (tested: every stream's outputs
equal stepping it alone).

Slots grow by doubling; the state of a grown batch keeps every stream's rows. Works with any
engine of `engines.runtime.backends` whose state is a pair of (layers, streams, ...) arrays, numpy
or
torch (CUDA-graph states are restored in place).
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from engines.runtime.backends import Engine


def _keep_rows(old: Any, new: Any, keep: np.ndarray) -> Any:
    """new state with the streams where `keep` (B,) is True taken from `old` (same layout)."""
    if isinstance(new.conv, np.ndarray):
        k = keep[None, :, None, None]  # (1, B, 1, 1)
        return type(new)(np.where(k, old.conv, new.conv), np.where(k, old.ssm, new.ssm))
    import torch

    k = torch.from_numpy(keep).to(new.conv.device)  # (B,)
    with torch.inference_mode():  # eager steps return inference tensors: update them in it
        new.conv[:, k] = old.conv[:, k]  # in place: a CUDA graph's buffers stay its buffers
        new.ssm[:, k] = old.ssm[:, k]
    return new


def _snapshot(state: Any) -> Any:
    """A copy a later in-place step cannot change (numpy states are never changed in place)."""
    if isinstance(state.conv, np.ndarray):
        return state
    return type(state)(state.conv.clone(), state.ssm.clone())


class SharedSteps:
    """One engine stepping every joined stream in one batch (thread-safe)."""

    def __init__(self, engine: Engine, n_features: int, max_wait_s: float = 0.004) -> None:
        self.engine = engine
        self.n_features = n_features
        self.max_wait_s = max_wait_s
        self._cond = threading.Condition()
        self._capacity = 0
        self._joined: set[int] = set()
        self._free: list[int] = []
        self._state: Any = None
        self._pending: dict[int, tuple[np.ndarray, bool]] = {}
        self._round = 0
        self._results: dict[int, tuple[float, np.ndarray]] = {}
        self.steps = 0  # batched engine steps run (for stats: rows per step = streams served)
        self.rows = 0

    def join(self) -> int:
        """A slot for a new stream, with a fresh state."""
        with self._cond:
            if not self._free:
                self._grow(max(1, 2 * self._capacity))
            slot = self._free.pop(0)
            self._joined.add(slot)
            self._reset_locked(slot)
            return slot

    def leave(self, slot: int) -> None:
        """Free the slot; the others are not waited on for it any more."""
        with self._cond:
            self._joined.discard(slot)
            self._pending.pop(slot, None)
            self._free.append(slot)
            self._free.sort()
            if self._pending and len(self._pending) == len(self._joined):
                self._run_locked()  # everyone left is waiting: run their round now

    def reset(self, slot: int) -> None:
        """A gap in this stream: its state is zeroed (equal to a fresh start)."""
        with self._cond:
            self._reset_locked(slot)

    def step(self, slot: int, x: np.ndarray, valid: bool = True) -> tuple[float, np.ndarray]:
        """This stream's row (F,) → (apex score, emotion probabilities (3,)), after the round."""
        with self._cond:
            if slot not in self._joined:
                raise ValueError(f"slot {slot} has not joined")
            while slot in self._pending:  # our row of the previous round still waits
                self._cond.wait()
            self._pending[slot] = (x, valid)
            my_round = self._round
            if len(self._pending) == len(self._joined):
                self._run_locked()
            else:
                if not self._cond.wait_for(lambda: self._round != my_round, self.max_wait_s):
                    self._run_locked()  # the others are late: go without them
            return self._results.pop(slot)

    def _run_locked(self) -> None:
        if not self._pending:
            return
        # Buffers reused every round (sized in _grow): no allocation per frame.
        x, valid, waiting = self._x, self._valid, self._waiting  # (B, F), (B,), (B,)
        valid[:] = False
        waiting[:] = True  # streams with no row this round keep their state
        for slot, (row, ok) in self._pending.items():
            x[slot], valid[slot], waiting[slot] = row, ok, False
        before = _snapshot(self._state) if waiting.any() else None
        apex, probs, state = self.engine.step(x, self._state, valid)
        self._state = _keep_rows(before, state, waiting) if before is not None else state
        for slot in self._pending:
            self._results[slot] = (float(apex[slot]), probs[slot])
        self.steps += 1
        self.rows += len(self._pending)
        self._pending.clear()
        self._round += 1
        self._cond.notify_all()

    def _reset_locked(self, slot: int) -> None:
        mask = np.zeros(self._capacity, bool)
        mask[slot] = True
        self._state = self.engine.reset_streams(self._state, mask)

    def _grow(self, capacity: int) -> None:
        fresh = self.engine.init_state(capacity)
        if self._state is not None:
            old = self._capacity
            if isinstance(fresh.conv, np.ndarray):
                fresh.conv[:, :old], fresh.ssm[:, :old] = self._state.conv, self._state.ssm
            else:
                import torch

                with torch.inference_mode():
                    fresh.conv[:, :old].copy_(self._state.conv)
                    fresh.ssm[:, :old].copy_(self._state.ssm)
        self._x = np.zeros((capacity, self.n_features), np.float32)  # (B, F)
        self._valid = np.zeros(capacity, bool)  # (B,)
        self._waiting = np.ones(capacity, bool)  # (B,)
        self._free.extend(range(self._capacity, capacity))
        self._capacity = capacity
        self._state = fresh
