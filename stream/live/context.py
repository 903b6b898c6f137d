"""The context stage: blinks, speaking and head speed per frame, blink lines, ``spottable``.

On real video a blink, a word or a nod moves the face more than a micro-expression does
(``docs/benchmarks.md``, "Where the signal is lost": blinks are the largest group of false
alarms at every stage). So every frame gets its context from the raw landmarks
(``engines.context.ContextTracker``: causal, by timestamp), each blink is logged as its own
``"type": "blink"`` line once the eyes are open again (``engines.blink_runs``: closures longer
than a blink are not logged), and a frame is *spottable* when a micro-expression could
be seen on it: a face, no blink, no speaking, no fast head motion, and — where the node front
end runs (the learned spotter) — brows that held still over the last second (``BrowMotion``).
Without blink, speech or head motion, most talking faces still move their brows by 3-10 px
(docs/benchmarks.md, "Where the signal is lost", answer 4): more than a 2-px expression's own.

``ContextGate`` decides, from the context over an expression's interval, whether the spotting
stage may report it (``SpottingStage(gate=...)``):
- a micro-expression that coincides with a blink (within ``blink_margin_s``) is the blink:
  never reported as a micro-expression (blink rate is what the blink lines are for);
- an expression during speaking is reported only when the upper face (brows, eyes) is among
  its moving regions: talking moves the mouth and jaw, and alone must not make events.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from engines.blink_runs import BlinkRun, BlinkRuns
from engines.context import ContextConfig, ContextTracker, FrameContext
from stream.contracts import Frame, FrameResults, Stage
from stream.output.events import BlinkEvent

UPPER_FACE = ("brow", "eye")  # region name prefixes (stream/face/rois.py)
# The brows hold still while their largest node motion over the last STILL_WINDOW_S stays at
# or under STILL_PX (aligned-face px, 160-px face): the median motion that an injected
# micro-expression of >= 2 px (at 90 px between the eyes) gives its own brow nodes on the
# VALIDATION clips (2.42 px, 14 expressions: python -m benchmarks.brow_still, docs/models.md)
STILL_PX = 2.4
STILL_WINDOW_S = 1.0


class BrowMotion:
    """Whether the brows moved more than ``still_px`` in the last ``window_s`` of media time.

    Reads the node front end's residual (``FeatureRow.nodes``, (O, N, 2) aligned px, rigid
    motion removed) at the brow nodes, the largest over the valid offsets. The lids are left to
    the blink detector and the mouth to the speaking detector."""

    def __init__(self, still_px: float = STILL_PX, window_s: float = STILL_WINDOW_S) -> None:
        from stream.face.nodes import NODE_GROUPS, STABLE_NODES

        self.still_px = still_px
        self.window_s = window_s
        brows = [i for i, g in enumerate(NODE_GROUPS) if g == "brows" and i not in STABLE_NODES]
        self._brows = np.asarray(brows, np.int64)
        # (t_s, largest brow motion px) of the window, each entry larger than every later one
        # (a later, larger motion outlasts it): the window's largest is the first, O(1) a frame
        self._recent: deque[tuple[float, float]] = deque()

    def reset(self) -> None:
        self._recent.clear()

    def update(self, t_s: float, nodes: np.ndarray | None, valid: np.ndarray | None) -> bool | None:
        """True: the brows moved in the window; None: no node motion (no front end, or no
        offset with a reference yet), so nothing is claimed."""
        if nodes is None or valid is None:
            return None
        if valid.any():
            brows = nodes[np.asarray(valid, bool)][:, self._brows]  # (V, B, 2)
            largest = float(np.sqrt((brows * brows).sum(-1)).max())
            while self._recent and self._recent[-1][1] <= largest:
                self._recent.pop()
            self._recent.append((t_s, largest))
        while self._recent and t_s - self._recent[0][0] > self.window_s:
            self._recent.popleft()
        if not self._recent:
            return None
        return self._recent[0][1] > self.still_px


@dataclass(frozen=True)
class ContextGate:
    """When an expression is not reported (see the module docstring)."""

    blink_margin_s: float = 0.2
    speech_needs_upper_face: bool = True

    def reason(self, kind: str, context: dict, rois: list[str]) -> str | None:
        """Why an expression with this ``context`` (``ContextStage.summary``) and these moving
        regions is not reported; None when it is."""
        if kind == "micro" and context.get("blink"):
            return "blink"
        upper = any(roi.startswith(UPPER_FACE) for roi in rois)
        if self.speech_needs_upper_face and context.get("speaking") and not upper:
            return "speaking"
        return None


class ContextStage:
    """Per frame: ``results.context`` and ``results.spottable``; a blink line per blink.

    Args:
        emit: called with each ``BlinkEvent``.
        stream_name: the ``stream`` field.
        config: the detectors' thresholds.
        history_s: how long per-frame context is kept for ``summary`` (the decoder decides an
            expression a look-ahead after its offset, so its frames must still be here).
        brows: the brow-stillness rule of ``spottable`` (default ``BrowMotion()``).
    """

    def __init__(
        self,
        emit: Callable[[BlinkEvent], None],
        stream_name: str = "cam0",
        config: ContextConfig | None = None,
        history_s: float = 4.0,
        brows: BrowMotion | None = None,
    ) -> None:
        self.emit = emit
        self.stream_name = stream_name
        self.tracker = ContextTracker(config)
        self.blink_runs = BlinkRuns(config)
        self.history_s = history_s
        self.brows = brows or BrowMotion()
        # (seq, t_s, blink, speaking, head_speed) of recent frames with a face
        self._history: deque[tuple[int, float, bool, bool, float]] = deque()
        self.blinks = 0
        self._seq = -1  # the latest frame seen

    def stage(self) -> Stage:
        return Stage("context", self)

    def __call__(self, frame: Frame, results: FrameResults) -> None:
        self._seq = frame.seq
        aligned = results.aligned
        ok = aligned is not None and aligned.ok and aligned.landmarks_px is not None
        if results.gap or not ok:
            self._log(self.blink_runs.gap(), frame.seq)
            self.tracker.reset()
            self.brows.reset()
            results.context, results.spottable = None, False if aligned is not None else None
            return
        context = self.tracker.update(aligned.landmarks_px, frame.t_s, True)
        results.context = context
        row = results.features
        nodes, nodes_valid = (None, None) if row is None else (row.nodes, row.nodes_valid)
        results.brows_moving = self.brows.update(frame.t_s, nodes, nodes_valid)
        busy = context.blink or context.speaking or context.head_moving
        results.spottable = not (busy or results.brows_moving)
        self._remember(frame, context)
        self._log(self.blink_runs.update(frame.seq, frame.t_s, context.eyes_closed), frame.seq)

    def _remember(self, frame: Frame, context: FrameContext) -> None:
        speed = context.head_speed if context.head_speed == context.head_speed else 0.0
        self._history.append((frame.seq, frame.t_s, context.blink, context.speaking, speed))
        while frame.t_s - self._history[0][1] > self.history_s:
            self._history.popleft()

    def _log(self, blinks: list[BlinkRun], seq: int) -> None:
        for run in blinks:
            self.blinks += 1
            self.emit(
                BlinkEvent(
                    seq=seq,
                    stream=self.stream_name,
                    onset_frame=run.onset,
                    offset_frame=run.offset,
                    onset_s=round(run.onset_s, 3),
                    offset_s=round(run.offset_s, 3),
                )
            )

    def finish(self) -> None:
        """The stream ended: a blink whose eyes reopened is logged; a closure still shut is
        not (nobody knows yet whether it is one)."""
        self._log(self.blink_runs.gap(), self._seq)

    def summary(self, onset_seq: int, offset_seq: int, margin_s: float = 0.2) -> dict:
        """Context over frames ``onset_seq``..``offset_seq`` (blinks within ``margin_s``):
        ``{"speaking", "blink", "head_speed"}`` (head speed: the most, px/s at 90 px between
        the eyes)."""
        inside = [h for h in self._history if onset_seq <= h[0] <= offset_seq]
        if not inside:
            return {"speaking": False, "blink": False, "head_speed": 0.0}
        t0, t1 = inside[0][1] - margin_s, inside[-1][1] + margin_s
        near = [h for h in self._history if t0 <= h[1] <= t1]
        return {
            "speaking": any(h[3] for h in inside),
            "blink": any(h[2] for h in near),
            "head_speed": round(max(h[4] for h in inside), 1),
        }
