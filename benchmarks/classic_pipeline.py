"""A classic micro-expression spotting pipeline, the yardstick of ``bench_end_to_end``.

What a lab script does without mexlive: decode every frame, find the face once, run dlib's
68-point predictor on every frame, align the face by a similarity on the eye corners and the
nose, compute dense Farneback flow from the frame ~100 ms earlier on the whole aligned face,
take the mean flow magnitude in three regions (brows, eyes, mouth) and find peaks of that
curve above median + 4·MAD. Run as its own process (``python -m benchmarks.classic_pipeline
VIDEO``) so its wall time includes its own start-up, like mexlive's.

Prints one JSON line: frames, peaks, seconds of analysis.
"""

from __future__ import annotations

import json
import sys
import time

import av
import cv2
import dlib
import numpy as np
from scipy.signal import find_peaks

from stream.face.models import model_path
from stream.face.rois import canonical_landmarks

SIZE = 160
STABLE = [36, 39, 42, 45, 27, 30]  # eye corners, nose ridge top and tip
REGIONS = {"brows": range(17, 27), "eyes": range(36, 48), "mouth": range(48, 68)}


def main(argv: list[str] | None = None) -> int:
    path = (argv if argv is not None else sys.argv[1:])[0]
    t0 = time.perf_counter()
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(model_path()))
    canonical = canonical_landmarks(SIZE)  # (68, 2)
    container = av.open(path)
    fps = float(container.streams.video[0].average_rate or 25)
    lag = max(1, round(0.1 * fps))  # flow from the frame ~100 ms earlier
    faces: list[np.ndarray] = []
    curve: list[float] = []
    box = None
    for frame in container.decode(video=0):
        gray = frame.to_ndarray(format="gray")
        if box is None:
            rects = detector(gray, 0)
            if not rects:
                continue
            box = max(rects, key=lambda r: r.area())
        shape = predictor(gray, box)
        points = np.array([(p.x, p.y) for p in shape.parts()], np.float32)  # (68, 2)
        x0, y0 = points.min(0)
        x1, y1 = points.max(0)
        box = dlib.rectangle(int(x0), int(y0), int(x1), int(y1))  # track with the landmarks
        matrix, _ = cv2.estimateAffinePartial2D(points[STABLE], canonical[STABLE])
        face = cv2.warpAffine(gray, matrix, (SIZE, SIZE))
        faces.append(face)
        if len(faces) <= lag:
            curve.append(0.0)
            continue
        flow = cv2.calcOpticalFlowFarneback(faces[-1 - lag], face, None, 0.5, 3, 15, 3, 5, 1.2, 0)
        magnitude = np.linalg.norm(flow, axis=-1)  # (S, S)
        aligned = (points @ matrix[:, :2].T + matrix[:, 2]).astype(int).clip(0, SIZE - 1)
        curve.append(
            max(
                float(magnitude[aligned[list(r), 1], aligned[list(r), 0]].mean())
                for r in REGIONS.values()
            )
        )
        faces = faces[-lag - 1 :]
    signal = np.asarray(curve)
    mad = float(np.median(np.abs(signal - np.median(signal)))) if signal.size else 0.0
    peaks, _ = find_peaks(signal, height=float(np.median(signal)) + 4 * mad if signal.size else 0)
    print(
        json.dumps({"frames": len(curve), "peaks": len(peaks), "seconds": time.perf_counter() - t0})
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
