"""What the node spotter reads: landmark-node motion against the person's calm-frame noise,
plus the face's context (blink, speech, head speed) and the frame rate.

Per frame the front end (``stream/face/nodes.py``) gives the residual motion of 58 facial
nodes at 3 time offsets (40 / 80 / 160 ms), in px on the 160-px aligned face, rigid head
motion removed. Per node the spotter reads 12 numbers (``NODE_WIDTH``):

    [0:6]   residual / noise, (dx, dy) per offset: z-scores against this person's own noise
    [6:12]  residual in px, (dx, dy) per offset: the absolute size (speech moves 3-5 px,
            a micro-expression 0.3-2.3 px)

then ``EXTRA`` channels: which offsets are valid (3), blink, speaking, head speed / 100 px/s
at 90 px between the eyes, the frame rate over 30, and how settled the noise estimate is.

The noise is learned from calm frames only — no blink, no speech, head slower than
``calm_head_px_s`` — so blinking, talking and nodding do not raise the bar a micro-expression
has to clear (the old running threshold rose with them; issue 22). Until enough calm frames
are seen, a population prior (``NOISE_PRIOR_PX``, measured on the training videos' calm
frames) stands in, weighted as ``prior_frames`` frames.

The estimate covers the calm frames of the last ``window_s`` seconds of media time, summed in
one-second blocks on the media clock. Its memory is finite and its sums do not depend on when
the stream started: a chunk of a long video whose warm-up covers the window computes the very
numbers a run from the start computes (an exponential forgetting, used before, never forgot
the start: 60 s after it a chunk's z-scores were still ~1 % off).

Live (``stream/live/spotting.py``) and training (``engines/train/data.py``) run the same
``NodeInput.update`` loop; ``node_inputs`` runs it over a whole feature file.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from engines.context import ContextTracker, FrameContext

NODE_INPUT = "nodes/v1"  # the manifest's "input" for weights trained on these rows
N_OFFSETS = 3
N_NODES = 58
NODE_WIDTH = 4 * N_OFFSETS  # z (dx, dy) and px (dx, dy) per offset
# Nodes per facial group, in the front end's node order (stream/face/nodes.py NODES: brows,
# eyes, nose, mouth, chin, cheeks; each a contiguous range). engines never imports stream, so
# the sizes are written here and tests/engines/test_node_inputs.py holds them to NODES.
GROUP_NAMES = ("brows", "eyes", "nose", "mouth", "chin", "cheeks")
GROUP_SIZES = (13, 12, 13, 8, 4, 8)
# Each node's mirror image (the front end's ``_l``/``_r`` pairs swapped; nodes on the midline
# map to themselves): a face seen in a mirror is a face, which training uses to double the
# few real backgrounds it has (engines/train/augment.py). Held to NODES by a test.
MIRROR_NODES = (1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 10, 12, 11, 14, 13, 16, 15, 18, 17, 20, 19, 22,
                21, 24, 23, 25, 26, 27, 28, 29, 31, 30, 33, 32, 35, 34, 37, 36, 39, 38, 41, 40,
                42, 44, 43, 45, 46, 47, 49, 48, 51, 50, 53, 52, 55, 54, 57, 56)  # fmt: skip
EXTRA = ("valid_40ms", "valid_80ms", "valid_160ms", "blink", "speaking", "head_speed",
         "frame_rate", "noise_settled")  # fmt: skip
# RMS residual per axis (px, 160-px aligned face) of a node on calm frames, per offset: the
# median over nodes, then over the plain real TRAINING videos (python -m
# benchmarks.node_noise_prior RECIPE/train/real_plain/*.npz; docs/models.md has the table).
NOISE_PRIOR_PX = (0.218, 0.271, 0.699)


def node_input_names() -> tuple[str, ...]:
    """The input channels, node-major: ``node{n}_{z|px}{offset}_{x|y}``, then ``EXTRA``."""
    per_node = [
        f"{what}{o}_{axis}" for what in ("z", "px") for o in range(N_OFFSETS) for axis in "xy"
    ]
    return (*(f"node{n}_{c}" for n in range(N_NODES) for c in per_node), *EXTRA)


def input_width() -> int:
    return N_NODES * NODE_WIDTH + len(EXTRA)


@dataclass(frozen=True)
class NodeInputConfig:
    # Calm frames of this trailing span make the noise estimate: about the statistical weight
    # of the exponential forgetting with a 14-s half-life, and short enough that mexlive
    # batch's default 60-s warm-up covers it.
    window_s: float = 40.0
    block_s: float = 1.0  # the estimate's sums are kept per block of media time
    prior_frames: float = 30.0  # weight of NOISE_PRIOR_PX, in calm frames
    settled_s: float = 2.0  # calm seconds after which the estimate counts as the person's
    calm_head_px_s: float = 50.0  # head speed (px/s at 90 px IOD) above which a frame is not calm
    z_clip: float = 12.0
    px_clip: float = 12.0


class NodeInput:
    """Node residuals (O, N, 2) + context → the node spotter's input row (D,), one stream."""

    def __init__(self, config: NodeInputConfig | None = None) -> None:
        self.config = config or NodeInputConfig()
        self.width = input_width()
        self._out = np.zeros(self.width, np.float32)  # (D,) reused
        self._prior_sq = np.square(np.asarray(NOISE_PRIOR_PX, np.float64))[:, None]  # (O, 1)
        self.reset()

    def reset(self) -> None:
        """A gap: the person may have changed; start again from the prior."""
        o, n = N_OFFSETS, N_NODES
        # One entry per block of media time with calm frames: (block index, (O, N) sum of calm
        # squared residuals, (O, 1) count of calm frames), oldest first.
        self._blocks: deque[tuple[int, np.ndarray, np.ndarray]] = deque()
        self._sum_sq = np.zeros((o, n))  # (O, N) all blocks: calm squared residuals
        self._weight = np.zeros((o, 1))  # (O, 1) all blocks: calm frames
        self._sum_done()  # the blocks before the newest: none
        self._calm_s = 0.0
        self._last_t: float | None = None

    @property
    def noise_px(self) -> np.ndarray:
        """(O, N) this person's calm noise per offset and node (RMS of |residual| per axis)."""
        k = self.config.prior_frames
        return np.sqrt((self._sum_sq + k * self._prior_sq) / (self._weight + k))

    def update(
        self,
        residual: np.ndarray | None,
        offset_valid: np.ndarray | None,
        context: FrameContext | None,
        t_s: float,
        valid: bool,
    ) -> np.ndarray:
        """This frame's input row (D,) float32 (a reused buffer); zeros when not ``valid``.

        Args:
            residual: (O, N, 2) px; offset_valid: (O,) bool; context: the frame's context
                (None: unknown, treated as not calm).
        """
        out = self._out
        out[:] = 0.0
        if not valid or residual is None or offset_valid is None:
            self.reset()
            return out
        dt = self._step_time(t_s)
        self._forget(t_s)
        res = np.nan_to_num(np.asarray(residual, np.float64))  # (O, N, 2)
        ok = np.asarray(offset_valid, bool)  # (O,)
        res[~ok] = 0.0
        noise = self.noise_px  # (O, N): the noise BEFORE this frame, so a frame is not its own bar
        cfg = self.config
        z = np.clip(res / noise[..., None], -cfg.z_clip, cfg.z_clip)  # (O, N, 2)
        px = np.clip(res, -cfg.px_clip, cfg.px_clip)  # (O, N, 2)
        nodes = out[: N_NODES * NODE_WIDTH].reshape(N_NODES, NODE_WIDTH)  # view (N, 12)
        nodes[:, : 2 * N_OFFSETS] = z.transpose(1, 0, 2).reshape(N_NODES, -1)
        nodes[:, 2 * N_OFFSETS :] = px.transpose(1, 0, 2).reshape(N_NODES, -1)
        extra = out[N_NODES * NODE_WIDTH :]
        extra[:N_OFFSETS] = ok
        calm = context is not None and self._calm(context)
        if context is not None:
            extra[3] = float(context.blink)
            extra[4] = float(context.speaking)
            speed = context.head_speed
            extra[5] = 0.0 if not math.isfinite(speed) else min(speed / 100.0, 5.0)
        extra[6] = 1.0 if dt is None else float(np.clip(1.0 / (30.0 * dt), 0.1, 10.0))
        if calm:
            self._learn(res, ok, dt, t_s)
        extra[7] = min(self._calm_s / cfg.settled_s, 1.0)
        return out

    def _calm(self, context: FrameContext) -> bool:
        speed = context.head_speed
        slow = math.isfinite(speed) and speed <= self.config.calm_head_px_s
        return slow and not context.blink and not context.speaking

    def _step_time(self, t_s: float) -> float | None:
        last, self._last_t = self._last_t, t_s
        return None if last is None or t_s <= last else t_s - last

    def _block(self, t_s: float) -> int:
        return math.floor(t_s / self.config.block_s)

    def _forget(self, t_s: float) -> None:
        """Drop the blocks that have left the window."""
        oldest = self._block(t_s) - round(self.config.window_s / self.config.block_s) + 1
        if self._blocks and self._blocks[0][0] < oldest:
            while self._blocks and self._blocks[0][0] < oldest:
                self._blocks.popleft()
            self._sum_done()

    def _sum_done(self) -> None:
        """The blocks before the newest, summed in block order from zero: the same blocks
        give the same bits, whatever the stream saw before them."""
        o, n = N_OFFSETS, N_NODES
        self._done_sq, self._done_weight = np.zeros((o, n)), np.zeros((o, 1))
        for _, sum_sq, weight in list(self._blocks)[:-1]:
            self._done_sq += sum_sq
            self._done_weight += weight
        self._add_newest()

    def _add_newest(self) -> None:
        _, sum_sq, weight = self._blocks[-1] if self._blocks else (None, 0.0, 0.0)
        np.add(self._done_sq, sum_sq, out=self._sum_sq)  # in place: every calm frame comes here
        np.add(self._done_weight, weight, out=self._weight)

    def _learn(self, res: np.ndarray, ok: np.ndarray, dt: float | None, t_s: float) -> None:
        index = self._block(t_s)
        if not self._blocks or self._blocks[-1][0] != index:
            o, n = N_OFFSETS, N_NODES
            self._blocks.append((index, np.zeros((o, n)), np.zeros((o, 1))))
            self._sum_done()  # the block before is complete
        _, sum_sq, weight = self._blocks[-1]
        sum_sq += 0.5 * np.square(res).sum(-1)  # (O, N) per axis; invalid offsets are 0 here
        weight += ok[:, None]
        self._add_newest()
        self._calm_s += dt if dt is not None else 1.0 / 30.0


def node_inputs(
    residual: np.ndarray,
    offset_valid: np.ndarray,
    landmarks_px: np.ndarray,
    valid: np.ndarray,
    t_s: np.ndarray,
    config: NodeInputConfig | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """A whole clip's input rows (L, D) float32 and its context flags (L, 3) [blink, speaking,
    head moving], frame by frame as live.

    Args:
        residual: (L, O, N, 2); offset_valid: (L, O); landmarks_px: (L, 68, 2); valid: (L,);
        t_s: (L,) seconds.
    """
    inputs, tracker = NodeInput(config), ContextTracker()
    rows = np.zeros((len(valid), inputs.width), np.float32)  # (L, D)
    flags = np.zeros((len(valid), 3), bool)  # (L, 3)
    for i in range(len(valid)):
        ok = bool(valid[i])
        context = tracker.update(landmarks_px[i] if ok else None, float(t_s[i]), ok)
        rows[i] = inputs.update(residual[i], offset_valid[i], context, float(t_s[i]), ok)
        flags[i] = (context.blink, context.speaking, context.head_moving)
    return rows, flags
