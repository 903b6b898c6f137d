"""The node input's noise prior (``engines.node_inputs.NOISE_PRIOR_PX``), measured.

    python -m benchmarks.node_noise_prior RECIPE/train/real_plain/*.npz

Per plain real training clip (nothing injected): the calm frames (a face, no blink, no speech,
head slower than 50 px/s at 90 px between the eyes; ``engines.context``), per time offset the
RMS node residual per axis, its median over the nodes; then the median over clips. Training
clips only: the suite's clips never set a number the suite reports.
"""

from __future__ import annotations

import sys

import numpy as np

from engines.context import ContextTracker

MIN_FRAMES = 30  # calm frames a clip needs to count for an offset


def calm_frames(landmarks_px: np.ndarray, valid: np.ndarray, fps: float) -> np.ndarray:
    tracker, calm = ContextTracker(), np.zeros(len(valid), bool)
    for i in range(len(valid)):
        seen = bool(valid[i]) and bool(np.isfinite(landmarks_px[i]).all())
        c = tracker.update(landmarks_px[i] if seen else None, i / fps, seen)
        still = np.isfinite(c.head_speed) and c.head_speed <= 50.0
        calm[i] = seen and still and not c.blink and not c.speaking
    return calm


def main(paths: list[str]) -> int:
    if not paths:
        print("usage: python -m benchmarks.node_noise_prior FILE.npz ...", file=sys.stderr)
        return 2
    per_offset: list[list[float]] = [[], [], []]
    print("| clip | calm share | 40 ms | 80 ms | 160 ms |\n|---|---:|---:|---:|---:|")
    for path in paths:
        with np.load(path) as z:
            residual = z["node_residual"].astype(np.float32)  # (L, O, N, 2)
            calm = calm_frames(z["landmarks_px"], z["valid"], float(z["fps"]))
            ok = z["node_valid"]  # (L, O)
        cells = []
        for o in range(residual.shape[1]):
            rows = calm & ok[:, o]
            if rows.sum() < MIN_FRAMES:
                cells.append("–")
                continue
            rms = np.sqrt(0.5 * np.square(residual[rows, o]).sum(-1).mean(0))  # (N,)
            per_offset[o].append(float(np.median(rms)))
            cells.append(f"{per_offset[o][-1]:.3f}")
        print(f"| {path.rsplit('/', 1)[-1]} | {calm.mean():.2f} | " + " | ".join(cells) + " |")
    medians = [f"{np.median(v):.3f}" if v else "–" for v in per_offset]
    print(f"| **median over clips** | | {' | '.join(medians)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
