"""What the synthetic camera shows and when: ``SyntheticConfig`` and the schedule of its
driving sequences (stream/synthetic/animator.py renders them).

Events are scheduled lazily in ``BLOCK_S`` blocks, each a pure function of (seed, block):
expressions and blinks from ``np.random.default_rng((seed, block, 0))``, head jerks from
``(seed, block, 2)``, each frame's noise window from ``(seed, block, 3)``, and the optional
variety of expressions (``asymmetry``, ``profile_jitter``) from ``(seed, block, 4)``, so that
turning it on changes the shapes of the same events, not when they happen. Every pulse is a
raised cosine over onset -> apex -> offset (an expression's two halves raised to their own
powers under ``profile_jitter``); the truth of each is a ``TruthEvent``.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from stream.errors import MexliveError
from stream.synthetic.au import (
    BLINK_AU,
    EMOTIONS,
    IMAGE_LEFT,
    MIRROR,
    check_lead,
    combo_pattern,
    make_warpable,
)
from stream.synthetic.truth import TruthEvent

BLOCK_S = 30.0  # schedule block length: events never straddle a block edge
MICRO_S, MACRO_S, BLINK_S = (0.2, 0.5), (0.5, 4.0), (0.1, 0.4)  # onset -> offset
MICRO_PX, MACRO_PX = (1.0, 4.0), (6.0, 15.0)  # peak landmark displacement
EXPRESSION_GAP_S = 0.5  # quiet time between expression events
BLINK_MARGIN_S = 0.2  # blinks keep this far from expressions and from each other
JERKS_PER_MIN = 1.5
NOISE_SPAN = 1 << 16  # distinct noise windows: consecutive frames never share noise
DEFORMATIONS = ("tps", "mesh", "kernel")  # stream/synthetic/deform.py: WARPERS


@dataclass
class SyntheticConfig:
    """What the synthetic camera shows. Rates are events per minute."""

    width: int = 640
    height: int = 480
    fps: float = 30.0
    seed: int = 0
    photo: str | None = None  # None -> skimage astronaut
    face_height_px: float = 200.0  # face box height in the output frame
    micro_per_min: float = 6.0
    macro_per_min: float = 2.0
    blinks_per_min: float = 12.0
    head_motion: bool = True  # slow drift + occasional small jerks
    noise_sigma: float = 2.0  # sensor noise, grey levels
    light_drift: bool = True  # slow global gain/offset change
    lead_in_s: float = 2.0  # quiet neutral stretch at the start (for baselines)
    # A driving region (a stream/face/rois.py name): its landmarks move up at each expression's
    # onset and the rest of the expression follows ``lead_frames`` later (synthetic_au.py).
    lead_region: str | None = None
    lead_frames: int = 4
    # The warp family that renders the landmarks (stream/synthetic/deform.py): "tps" (thin-plate
    # spline), "mesh" (piecewise affine) or "kernel" (Gaussian RBF). Train on some, validate on
    # another: a model trained on one generator learns that generator.
    deformation: str = "tps"
    micro_px: tuple[float, float] = MICRO_PX  # micro-expression peak displacement range, px
    # Per expression, one half of the face (au.IMAGE_LEFT or its mirror) moves by a factor
    # drawn in [1 - asymmetry, 1] of the other (0: only combo_pattern's mild imbalance).
    asymmetry: float = 0.0
    # Per expression, the rise and the fall of the raised cosine are raised to powers drawn
    # log-uniformly in [e^-j, e^j] (j = profile_jitter): sharper or flatter onsets and offsets,
    # skewed profiles. Onset, apex and offset frames (weight 0, 1, 0) stay exact. 0: off.
    profile_jitter: float = 0.0

    def __post_init__(self) -> None:
        # A person sets these from the command line: say what is wrong, no traceback.
        if self.fps < 10:
            raise MexliveError(
                f"synthetic fps must be >= 10 to show a 200 ms micro-expression: {self.fps}"
            )
        if self.width < 64 or self.height < 64 or self.face_height_px < 32:
            raise MexliveError("synthetic frames must be at least 64x64 px and faces 32 px tall")
        if self.seed < 0:
            raise MexliveError(f"synthetic seed must be >= 0: {self.seed}")
        if self.lead_region is not None:
            check_lead(self.lead_region, self.lead_frames, self.fps, EXPRESSION_GAP_S)
        if self.deformation not in DEFORMATIONS:
            raise MexliveError(
                f"unknown deformation {self.deformation!r}: choose one of {', '.join(DEFORMATIONS)}"
            )
        self.micro_px = (float(self.micro_px[0]), float(self.micro_px[1]))
        if not 0 < self.micro_px[0] <= self.micro_px[1]:
            raise MexliveError(f"micro_px must be a range 0 < lo <= hi: {self.micro_px}")
        if not 0.0 <= self.asymmetry < 1.0:
            raise MexliveError(f"asymmetry must be in [0, 1): {self.asymmetry}")
        if not 0.0 <= self.profile_jitter <= 2.0:
            raise MexliveError(f"profile_jitter must be in [0, 2]: {self.profile_jitter}")


@dataclass
class PulseSequence:
    """Non-overlapping raised-cosine pulses of one driving sequence inside one block."""

    onset: np.ndarray  # (K,) int
    apex: np.ndarray  # (K,) int
    offset: np.ndarray  # (K,) int
    pattern: np.ndarray  # (K, ...) displacement at the apex
    events: list[TruthEvent]
    power: np.ndarray | None = None  # (K, 2) exponents of the rise and the fall; None: 1

    def at(self, index: int) -> tuple[int, float]:
        """(pulse k, weight in [0, 1]) active at frame ``index``; (-1, 0) when none."""
        k = int(np.searchsorted(self.onset, index, side="right")) - 1
        if k < 0 or index > self.offset[k]:
            return -1, 0.0
        apex = int(self.apex[k])
        weight = raised_cosine(index, int(self.onset[k]), apex, int(self.offset[k]))
        if self.power is not None:
            weight **= float(self.power[k, 0 if index <= apex else 1])
        return k, weight


@dataclass
class Block:
    """One block's driving sequences and each of its frames' noise window."""

    expressions: PulseSequence
    blinks: PulseSequence
    jerks: PulseSequence  # pattern (K, 3): tx px, ty px, angle rad
    noise_offsets: np.ndarray  # (block_frames,) int, start of each frame's noise window


def raised_cosine(index: int, onset: int, apex: int, offset: int) -> float:
    """0 at onset and offset, 1 at apex, smooth (half a cosine) on either side."""
    if index <= apex:
        return 0.5 * (1.0 - math.cos(math.pi * (index - onset) / (apex - onset)))
    return 0.5 * (1.0 + math.cos(math.pi * (index - apex) / (offset - apex)))


def duration_frames(seconds: tuple[float, float], fps: float) -> tuple[int, int]:
    """Range (lo, hi) of durations n = offset - onset, frames, for a range in seconds.

    n / fps and (n + 1) / fps both lie inside the range, whichever way a reader counts the
    inclusive offset frame.
    """
    lo = max(2, math.ceil(seconds[0] * fps - 1e-6))
    return lo, max(lo, math.floor(seconds[1] * fps + 1e-6) - 1)


def apex_step(n: int, rng: np.random.Generator) -> int:
    """Frames from onset to apex of an n-frame event: the apex lies at 30-50 % of it."""
    k_lo = max(1, math.ceil(0.3 * n - 1e-9))
    k_hi = max(k_lo, min(n - 1, math.floor(0.5 * n + 1e-9)))
    return int(rng.integers(k_lo, k_hi + 1))


class EventSchedule:
    """When each pulse of the driving sequences happens, block by block (cached).

    Args:
        config: what the camera shows (rates, fps, seed, lead-in, head motion).
        base: rest landmarks (68, 2) float64 in the output frame; roll: the face's roll.
        blink: lid displacement (68, 2) at full closure; blink_peak_px: its truth.
        lead: unit push (68, 2) of the driving region, or None.
    """

    def __init__(
        self,
        config: SyntheticConfig,
        base: np.ndarray,
        roll: float,
        blink: np.ndarray,
        blink_peak_px: float,
        lead: np.ndarray | None,
    ) -> None:
        self.config = config
        self.block_frames = round(BLOCK_S * config.fps)
        self.lead_in = math.ceil(config.lead_in_s * config.fps - 1e-6)
        self._base, self._roll, self._lead = base, roll, lead
        self._blink, self._blink_peak_px = blink, blink_peak_px
        self._blocks: dict[int, Block] = {}

    def at(self, index: int) -> Block:
        """The block that holds frame ``index``."""
        return self.block(index // self.block_frames)

    def events_between(self, start: int, stop: int) -> list[TruthEvent]:
        """Truth events (expressions and blinks) with onset in [start, stop), by onset."""
        if stop <= start:
            return []
        events: list[TruthEvent] = []
        for b in range(max(start, 0) // self.block_frames, (stop - 1) // self.block_frames + 1):
            block = self.block(b)
            events += block.expressions.events + block.blinks.events
        return sorted((e for e in events if start <= e.onset < stop), key=lambda e: e.onset)

    def block(self, b: int) -> Block:
        if b < 0:
            raise IndexError("synthetic frame indices start at 0")
        block = self._blocks.get(b)
        if block is None:
            if len(self._blocks) >= 8:  # a live source only ever needs the current block
                self._blocks.pop(next(iter(self._blocks)))
            block = self._blocks[b] = self._make_block(b)
        return block

    def _frames(self, seconds: tuple[float, float]) -> tuple[int, int]:
        return duration_frames(seconds, self.config.fps)

    def _make_block(self, b: int) -> Block:
        cfg, fps, size = self.config, self.config.fps, self.block_frames
        gap = math.ceil(EXPRESSION_GAP_S * fps - 1e-6)
        margin = math.ceil(BLINK_MARGIN_S * fps - 1e-6)
        half = (gap + 1) // 2  # half the gap at both block edges keeps the gap across them
        lo, hi = max(b * size + half, self.lead_in), (b + 1) * size - 1 - half
        frames = {"micro": self._frames(MICRO_S), "macro": self._frames(MACRO_S)}
        frames["blink"] = self._frames(BLINK_S)

        # Expression and blink sequences are placed together so that blinks never touch an
        # expression (a blink inside a micro-expression would corrupt its truth). Counts are
        # rate x time, randomly rounded; a Poisson process with a given count has uniformly
        # spread events, which is what the random split of the slack below gives.
        rng = np.random.default_rng((cfg.seed, b, 0))
        minutes = max(hi - lo, 0) / fps / 60.0
        rates = {"micro": cfg.micro_per_min, "macro": cfg.macro_per_min}
        rates["blink"] = cfg.blinks_per_min
        kinds = [k for k, rate in rates.items() for _ in range(int(rate * minutes + rng.random()))]
        rng.shuffle(kinds)
        lengths = [int(rng.integers(frames[k][0], frames[k][1] + 1)) for k in kinds]
        while True:  # more than fits (absurd rates): drop events at random
            gaps = [gap if "blink" not in pair else margin for pair in itertools.pairwise(kinds)]
            slack = hi - lo - sum(lengths) - sum(gaps)
            if slack >= 0 or not kinds:
                break
            drop = int(rng.integers(len(kinds)))
            del kinds[drop], lengths[drop]
        shifts = np.floor(np.sort(rng.uniform(0, max(slack, 0), len(kinds)))).astype(int)
        rows: dict[str, list] = {"expression": [], "blink": []}
        variety = np.random.default_rng((cfg.seed, b, 4))  # asymmetry and profile only
        powers = []
        for i, (kind, n) in enumerate(zip(kinds, lengths, strict=True)):
            onset = lo + int(shifts[i]) + sum(lengths[:i]) + sum(gaps[:i])
            apex, offset = onset + apex_step(n, rng), onset + n
            if kind == "blink":
                peak = round(self._blink_peak_px, 3)
                event = _row(onset, apex, offset, kind, "", (BLINK_AU,), self._blink, peak)
                rows["blink"].append(event)
                continue
            emotion = str(rng.choice(list(EMOTIONS)))
            aus = EMOTIONS[emotion][int(rng.integers(len(EMOTIONS[emotion])))]
            unit = combo_pattern(aus, cfg.face_height_px, self._roll, rng)  # (68, 2)
            if cfg.asymmetry > 0:
                unit = one_side_weaker(unit, cfg.asymmetry, variety)
            if cfg.profile_jitter > 0:
                powers.append(np.exp(variety.uniform(-1.0, 1.0, 2) * cfg.profile_jitter))
            pattern = unit * rng.uniform(*(cfg.micro_px if kind == "micro" else MACRO_PX))
            if self._lead is not None:  # the driver always moves, as far as the expression
                pattern += self._lead * np.linalg.norm(pattern, axis=1).max()
            make_warpable(pattern, self._base)
            amp = np.linalg.norm(pattern, axis=1).max()
            peak = round(float(amp), 3)  # the truth as written; the pattern matches it exactly
            pattern *= peak / amp
            rows["expression"].append(_row(onset, apex, offset, kind, emotion, aus, pattern, peak))
        expressions, blinks = _sequence(rows["expression"]), _sequence(rows["blink"])
        if powers:
            expressions.power = np.array(powers)  # (K, 2)

        rng = np.random.default_rng((cfg.seed, b, 2))
        rows_j: list[tuple[int, int, int, np.ndarray, None]] = []
        if cfg.head_motion:
            scale = 60.0 * fps / JERKS_PER_MIN
            t = max(b * size + 1, self.lead_in) + rng.exponential(scale)
            while True:
                rise = int(rng.integers(math.ceil(0.08 * fps), math.ceil(0.15 * fps) + 1))
                fall = int(rng.integers(math.ceil(0.5 * fps), math.ceil(1.5 * fps) + 1))
                onset = int(t)
                if onset + rise + fall >= (b + 1) * size - 1:
                    break
                direction = rng.uniform(0, 2 * np.pi)
                shift = rng.uniform(1.0, 3.0)
                angle = np.radians(rng.uniform(-0.5, 0.5))
                move = np.array([shift * np.cos(direction), shift * np.sin(direction), angle])
                rows_j.append((onset, onset + rise, onset + rise + fall, move, None))
                t = onset + rise + fall + 1 + rng.exponential(scale)

        rng = np.random.default_rng((cfg.seed, b, 3))
        noise_offsets = rng.integers(0, NOISE_SPAN, size)
        return Block(expressions, blinks, _sequence(rows_j, (3,)), noise_offsets)


def one_side_weaker(unit: np.ndarray, asymmetry: float, rng: np.random.Generator) -> np.ndarray:
    """An expression (68, 2) with one random half (image-left or image-right, the midline
    untouched) scaled by a factor in [1 - asymmetry, 1], renormalised to a largest
    displacement of 1 (the amplitude drawn next keeps its range)."""
    side = IMAGE_LEFT if rng.random() < 0.5 else MIRROR[IMAGE_LEFT]
    out = unit.copy()  # (68, 2)
    out[side] *= rng.uniform(1.0 - asymmetry, 1.0)
    return out / np.linalg.norm(out, axis=1).max()


def _row(onset, apex, offset, kind, emotion, aus, pattern, peak) -> tuple:
    """(onset, apex, offset, pattern, TruthEvent) of one scheduled pulse."""
    moved = tuple(int(i) for i in np.flatnonzero(np.linalg.norm(pattern, axis=1) >= 0.5))
    aus = tuple(int(a) for a in aus)
    event = TruthEvent(onset, apex, offset, kind, emotion, aus, float(peak), moved)
    return onset, apex, offset, pattern, event


def _sequence(rows: list, shape: tuple[int, ...] = (68, 2)) -> PulseSequence:
    times = np.array([r[:3] for r in rows], np.int64).reshape(-1, 3)  # (K, 3)
    pattern = np.array([r[3] for r in rows], np.float64).reshape(-1, *shape)  # (K, ...)
    events = [r[4] for r in rows if r[4] is not None]
    return PulseSequence(times[:, 0], times[:, 1], times[:, 2], pattern, events)
