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
