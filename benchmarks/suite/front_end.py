"""The front end's signal and noise: what the region shift and the node residual measure of
an injected expression, and what they measure anyway on the same video with nothing injected
(``curve.measure`` puts it in ``Measured.front_end``; ``report.front_end_table`` prints it).
"""

from __future__ import annotations

import numpy as np

from benchmarks.suite.labels import EventLabel, roi_group
from benchmarks.suite.stages import SuiteClip
from engines.eval.detection import window_peaks

ALIGNED_IOD_PX = 0.325 * 160  # eye distance in the aligned face (stream/face/rois.py)


def front_end(labels: list[EventLabel], pairs: list[tuple[SuiteClip, SuiteClip]]) -> dict:
    """Per expression, what the front end measures of it and what it measures anyway.

    signal: the peak, inside the interval, of the injected clip's own-group region shift MINUS
    the plain clip's at the same frames (vector difference: the expression's own flow, the
    world's motion cancelled, since both clips hold the same real frames); noise: the median
    peak of the plain clip's own-group shift over equal-length windows; floor: the same
    difference as ``signal`` over windows far from every expression (what two H.264 encodings
    of the same frames differ by: the part of ``signal`` that is not the expression). Window
    (≈ 1 s) and onset (≈ 133 ms) baselines, aligned-face px; ``injected`` is the apex amplitude
    in aligned-face px. (K,) arrays each, NaN where the two clips differ in length.
    """
    from benchmarks.suite.stages import region_vectors
    from engines.motion import roi_names

    keys = ("injected", "signal_win", "noise_win", "floor_win", "signal_on", "noise_on")
    keys += ("signal_node", "noise_node")
    out = {k: np.full(len(labels), np.nan) for k in keys}
    cache: dict[int, dict] = {}
    for k, e in enumerate(labels):
        clip, plain = pairs[e.clip]
        out["injected"][k] = e.amplitude_90 * ALIGNED_IOD_PX / 90.0
        if clip.length != plain.length:
            continue
        if e.clip not in cache:
            cache[e.clip] = {
                b: (region_vectors(clip, b), region_vectors(plain, b)) for b in ("win", "on")
            }
        rois = roi_names(clip.names)
        cols = [i for i, r in enumerate(rois) if roi_group(r) == e.group]
        span = slice(e.onset, e.offset + 1)
        length = e.offset - e.onset + 1
        for b in ("win", "on"):
            inj, pla = cache[e.clip][b]
            own = np.linalg.norm(inj[span][:, cols] - pla[span][:, cols], axis=-1)  # (T, C)
            out[f"signal_{b}"][k] = own.max()
            plain_own = np.linalg.norm(pla[:, cols], axis=-1).max(axis=1)  # (L,)
            peaks = window_peaks(plain_own, plain.valid, length, max(length // 2, 1))
            out[f"noise_{b}"][k] = float(np.median(peaks)) if peaks.size else np.nan
            if b == "win" and clip.node_residual is not None and plain.node_residual is not None:
                _node_front_end(out, k, e, clip, plain, span, length)
            if b == "win":  # the same difference away from every expression: the codec's part
                far = _far_from_events(clip, round(0.5 * clip.fps))
                diff = np.linalg.norm(inj[:, cols] - pla[:, cols], axis=-1).max(axis=1)  # (L,)
                peaks = window_peaks(diff, far & clip.valid & plain.valid, length, length)
                out["floor_win"][k] = float(np.median(peaks)) if peaks.size else np.nan
    return out


def _node_front_end(out, k, e, clip, plain, span, length) -> None:
    """``_front_end``'s signal and noise for the node residual of the expression's group."""
    from stream.face.nodes import NODE_GROUPS, STABLE_NODES

    cols = [i for i, g in enumerate(NODE_GROUPS) if g == e.group and i not in STABLE_NODES]
    inj = clip.node_residual[span][:, :, cols].astype(np.float64)  # (T, O, C, 2)
    pla = plain.node_residual[span][:, :, cols].astype(np.float64)
    both = (clip.node_valid[span] & plain.node_valid[span])[:, :, None]  # (T, O, 1)
    out["signal_node"][k] = (np.linalg.norm(inj - pla, axis=-1) * both).max()
    whole = np.linalg.norm(plain.node_residual[:, :, cols].astype(np.float64), axis=-1)
    own = (whole * plain.node_valid[:, :, None]).max(axis=(1, 2))  # (L,)
    peaks = window_peaks(own, plain.valid, length, max(length // 2, 1))
    out["noise_node"][k] = float(np.median(peaks)) if peaks.size else np.nan


def _far_from_events(clip: SuiteClip, margin: int) -> np.ndarray:
    """(L,) frames at least ``margin`` frames from every true interval of the clip."""
    far = np.ones(clip.length, bool)
    for onset, offset in zip(clip.onset, clip.offset, strict=True):
        far[max(int(onset) - margin, 0) : int(offset) + margin + 1] = False
    return far


NODE_NOISE_KEYS = ("signal_p50", "signal_p90", "noise_p50", "noise_p99", "noise_calm_p99")
# the rigid fit's own nodes: what flow and fit leave on skin that does not move; the temples
# apart, as they sit at the face's edge, where a turning head shows its side
STABLE_ROW = "stable skin, centre (inner canthi, nose: flow + fit floor)"
TEMPLES_ROW = "stable skin, temples (the face's edge)"
VIDEO_KEYS = ("calm_share", "spottable_share", "brows", "mouth", STABLE_ROW)


def node_noise(
    labels: list[EventLabel],
    pairs: list[tuple[SuiteClip, SuiteClip]],
    plain: list[SuiteClip],
    calm: list[np.ndarray],
) -> dict[str, dict[str, float]]:
    """Per node group: what its nodes measure of an expression and what they measure anyway.

    signal: per expression of the group (``EventLabel.group``), the peak over its interval of
    the injected clip's node residual MINUS the plain clip's at the same frames (the
    expression's own flow, aligned px; the largest over the group's nodes and the offsets);
    its median and 90th percentile over the group's expressions. noise: per frame of the plain
    clips, the group's largest node residual over the offsets; its median and 99th percentile
    over all valid frames and the 99th over ``calm`` frames ((L,) bool per plain clip: no
    blink, speech or head motion). The last rows hold the stable nodes the rigid fit is made
    on. NaN where nothing was measured.
    """
    out = {}
    for row, cols in node_rows().items():
        signal = [
            _node_peak_difference(*pairs[e.clip], e, cols)
            for e in labels
            if e.group == row and pairs[e.clip][0].node_residual is not None
        ]
        measured = [
            (*_node_frames(clip, cols), quiet)
            for clip, quiet in zip(plain, calm, strict=True)
            if clip.node_residual is not None
        ]
        every = np.concatenate([f[v] for f, v, _ in measured]) if measured else np.zeros(0)
        quiet = np.concatenate([f[v & q] for f, v, q in measured]) if measured else np.zeros(0)
        signal = np.array([s for s in signal if np.isfinite(s)])
        out[row] = {
            "n": float(len(signal)),
            "signal_p50": _percentile(signal, 50),
            "signal_p90": _percentile(signal, 90),
            "noise_p50": _percentile(every, 50),
            "noise_p99": _percentile(every, 99),
            "noise_calm_p99": _percentile(quiet, 99),
        }
    return out


def node_rows() -> dict[str, list[int]]:
    """The node columns of each row of ``node_noise``: every group's moving nodes, then the
    stable ones split into the centre and the temples."""
    from stream.face.nodes import GROUPS, NODE_GROUPS, STABLE_NODES

    rows = {
        g: [i for i, n in enumerate(NODE_GROUPS) if n == g and i not in STABLE_NODES]
        for g in GROUPS
    }
    rows[STABLE_ROW] = [i for i in STABLE_NODES if NODE_GROUPS[i] != "cheeks"]
    rows[TEMPLES_ROW] = [i for i in STABLE_NODES if NODE_GROUPS[i] == "cheeks"]
    return rows


def node_noise_by_video(
    plain: list[SuiteClip], calm: list[np.ndarray], still: list[np.ndarray] | None = None
) -> dict[str, dict]:
    """Per plain video: the share of its frames that are calm, the share the live rule calls
    spottable (calm, and the brows still: ``still``, (L,) per clip, ``brows_still`` when not
    given), and the 99th percentile over the calm frames of the brows', the mouth's and the
    central stable nodes' largest residual (aligned px; ``node_noise``'s noise, one video at a
    time): how still a "calm" face is."""
    groups = {name: node_rows()[name] for name in VIDEO_KEYS[2:]}
    still = still if still is not None else [brows_still(clip) for clip in plain]
    out = {}
    for clip, quiet, brows in zip(plain, calm, still, strict=True):
        if clip.node_residual is None:
            continue
        row = {"calm_share": float(quiet[clip.valid].mean()) if clip.valid.any() else np.nan}
        row["spottable_share"] = (
            float((quiet & brows)[clip.valid].mean()) if clip.valid.any() else np.nan
        )
        for name, cols in groups.items():
            largest, valid = _node_frames(clip, cols)
            row[name] = _percentile(largest[valid & quiet], 99)
        out[clip.video] = row
    return out


def brows_still(clip: SuiteClip, still_px: float | None = None) -> np.ndarray:
    """(L,) frames the live ``spottable`` rule (``BrowMotion``, its ``STILL_PX`` unless
    ``still_px``) calls brows-still (a gap restarts it)."""
    from stream.live.context import STILL_PX, BrowMotion

    if clip.node_residual is None:  # no node motion: nothing is claimed (as live)
        return np.ones(clip.length, bool)
    rule, still = (
        BrowMotion(STILL_PX if still_px is None else still_px),
        np.zeros(clip.length, bool),
    )
    for t in range(clip.length):
        if not clip.valid[t]:
            rule.reset()
            continue
        still[t] = rule.update(t / clip.fps, clip.node_residual[t], clip.node_valid[t]) is False
    return still


def _node_frames(clip: SuiteClip, cols: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """(L,) the largest residual of the ``cols`` nodes over the offsets, (L,) where valid."""
    magnitude = np.linalg.norm(clip.node_residual[:, :, cols].astype(np.float64), axis=-1)
    magnitude = np.where(clip.node_valid[:, :, None], magnitude, -np.inf)  # (L, O, C)
    largest = magnitude.max(axis=(1, 2))  # (L,)
    return largest, clip.valid & np.isfinite(largest)


def _node_peak_difference(clip: SuiteClip, plain: SuiteClip, e: EventLabel, cols) -> float:
    if clip.length != plain.length or plain.node_residual is None or not cols:
        return float("nan")
    span = slice(e.onset, e.offset + 1)
    inj = clip.node_residual[span][:, :, cols].astype(np.float64)  # (T, O, C, 2)
    pla = plain.node_residual[span][:, :, cols].astype(np.float64)
    both = clip.node_valid[span] & plain.node_valid[span]  # (T, O)
    if not both.any():
        return float("nan")
    return float((np.linalg.norm(inj - pla, axis=-1) * both[:, :, None]).max())


def _percentile(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q)) if values.size else float("nan")
