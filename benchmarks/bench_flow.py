"""Flow benchmark: accuracy and speed of mexlive's Numba ROI flow (stream/face/flow.py) against
OpenCV DIS and Farneback and scikit-image TV-L1.

    python -m benchmarks.bench_flow [--seeds 5] [--rounds 10]

Goal: Numba EPE within 1.2× TV-L1's at ≥ 50× its speed (the ROI-only timing is the one the
pipeline pays, every frame).

Data (160×160 grayscale in 0..1):
  faces   the first frame of each fixture video (../shared/fixtures/videos or
          $MEXLIVE_FIXTURES/videos), dlib face + 68 landmarks (stream/face/models.py), aligned
          by a similarity (cv2.estimateAffinePartial2D on the eye corners and the nose tip)
          onto the canonical layout of stream/face/rois.py
  brick   a crop of skimage.data.brick (strong edges, flat mortar: a hard case for local flow)
  noisy   the faces with sensor noise (σ = 2/255) added to both frames: flow on real video
          never sees noise-free pairs
Warps: smooth random displacement fields (a few bumps across the image, the largest vector
drawn in 0.1–3 px), cur built with cv2.remap so that ref(x) = cur(x + d(x)) exactly
(stream/face/flow_ref.py: smooth_displacement, warp_pair). EPE = mean |flow - d| over the 14 ROI
patches (24×24 at the canonical ROI positions, passed as corners) and over the whole image
less an 8-px border. Full-frame methods are scored on the patches by cropping their field.

Hold-out: the kernel's defaults (levels, iterations, window, damping) were tuned on seeds
100–103; this script reports seeds 0 … seeds-1, which the tuning never saw.

Timing: ms per frame pair, median and p99 over all calls, one thread (cv2.setNumThreads(1);
the Numba kernel is single-threaded; skimage's TV-L1 runs in NumPy). The methods take turns in
rounds (30 RoiFlow calls, 10 of most others, 5 Farneback, 1 TV-L1 per round), so that load
from elsewhere on a shared machine hits them alike.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numba
import numpy as np
import skimage
from skimage import data
from skimage.registration import optical_flow_tvl1

from stream.face.flow import FlowConfig, RoiFlow, dense_flow, warm_up
from stream.face.flow_ref import smooth_displacement, warp_pair
from stream.face.models import detect_largest_face, landmarks_68
from stream.face.rois import canonical_landmarks, roi_corners

SIZE = 160
BORDER = 8
# The canonical face of stream/face/rois.py: eye corners + nose tip for the alignment, and the
# ROI patches' top-left corners (24 px patches).
_CANONICAL = canonical_landmarks(SIZE)
CANON = {i: tuple(_CANONICAL[i]) for i in (36, 39, 42, 45, 30)}
CORNERS = roi_corners(_CANONICAL, 24, SIZE)  # (14, 2) x, y
PATCH = 24
NOISE = 2.0 / 255.0

Flow = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (ref, cur) 0..1 → (H, W, 2)


def fixture_videos() -> list[Path]:
    root = (
        os.environ.get("MEXLIVE_FIXTURES")
        or Path(__file__).resolve().parents[2] / "shared/fixtures"
    )
    videos = Path(root) / "videos"
    return sorted(videos.glob("*.mp4")) if videos.is_dir() else []


def aligned_faces() -> list[np.ndarray]:
    """First frame of each fixture video, aligned to the canonical 160×160 face."""
    faces = []
    dst = np.array(list(CANON.values()), np.float32)  # (5, 2)
    for path in fixture_videos():
        cap = cv2.VideoCapture(str(path))
        ok, bgr = cap.read()
        cap.release()
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) if ok else None
        box = detect_largest_face(rgb) if ok else None
        if box is None:
            print(f"skipped {path.name}: no frame or no face")
            continue
        src = landmarks_68(rgb, box)[list(CANON)]  # (5, 2)
        warp, _ = cv2.estimateAffinePartial2D(src, dst, method=cv2.LMEDS)
        gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
        faces.append(cv2.warpAffine(gray, warp, (SIZE, SIZE), flags=cv2.INTER_LINEAR) / 255.0)
    return [f.astype(np.float32) for f in faces]


def texture() -> np.ndarray:
    return (data.brick()[100 : 100 + SIZE, 100 : 100 + SIZE] / 255.0).astype(np.float32)


def cases(images: list[np.ndarray], seeds: int, noise: float) -> list[tuple]:
    """(ref, cur, gt) per image and seed; the seed fixes the field, its size and the noise."""
    out = []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        for i, image in enumerate(images):
            gt = smooth_displacement(image.shape, rng.uniform(0.1, 3.0), seed * 10 + i)
            ref, cur = image, warp_pair(image, gt)
            if noise:
                ref = ref + rng.normal(0.0, noise, ref.shape).astype(np.float32)
                cur = cur + rng.normal(0.0, noise, cur.shape).astype(np.float32)
            out.append((ref, cur, gt))
    return out


def patches(field: np.ndarray) -> np.ndarray:
    return np.stack([field[y : y + PATCH, x : x + PATCH] for x, y in CORNERS])  # (R, P, P, 2)


def epe(flow: np.ndarray, gt: np.ndarray) -> float:
    return float(np.sqrt(((flow - gt) ** 2).sum(-1)).mean())


def as_u8(image: np.ndarray) -> np.ndarray:
    return np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)


def full_frame_methods() -> dict[str, Flow]:
    dis_medium = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    dis_fast = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)

    def farneback(ref: np.ndarray, cur: np.ndarray) -> np.ndarray:
        return cv2.calcOpticalFlowFarneback(as_u8(ref), as_u8(cur), None, 0.5, 3, 15, 3, 5, 1.2, 0)

    def tvl1(ref: np.ndarray, cur: np.ndarray) -> np.ndarray:
        v, u = optical_flow_tvl1(ref, cur)  # skimage returns (row, col) components
        return np.stack([u, v], axis=-1).astype(np.float32)

    return {
        "numba dense_flow": lambda ref, cur: dense_flow(ref, cur),
        "DIS medium": lambda ref, cur: dis_medium.calc(as_u8(ref), as_u8(cur), None),
        "DIS ultrafast": lambda ref, cur: dis_fast.calc(as_u8(ref), as_u8(cur), None),
        "Farneback": farneback,
        "TV-L1 (skimage)": tvl1,
    }


def accuracy(sets: dict[str, list[tuple]]) -> dict[str, dict[str, tuple[float, float]]]:
    """method → set → (EPE on the ROI patches, EPE on the whole image)."""
    roi_flow = RoiFlow(FlowConfig(), n_rois=len(CORNERS))
    inner = (slice(BORDER, -BORDER), slice(BORDER, -BORDER))
    table: dict[str, dict[str, tuple[float, float]]] = {"numba RoiFlow": {}}
    for name, pairs in sets.items():
        errors = []
        for ref, cur, gt in pairs:
            roi_flow.compute(ref, cur, CORNERS)
            errors.append(epe(roi_flow.flow, patches(gt)))
        table["numba RoiFlow"][name] = (float(np.mean(errors)), float("nan"))  # patches only
    for method, flow in full_frame_methods().items():
        table[method] = {}
        for name, pairs in sets.items():
            fields = [(flow(r, c), g) for r, c, g in pairs]
            table[method][name] = (
                float(np.mean([epe(patches(f), patches(g)) for f, g in fields])),
                float(np.mean([epe(f[inner], g[inner]) for f, g in fields])),
            )
    return table


def timings(ref: np.ndarray, cur: np.ndarray, rounds: int) -> dict[str, tuple[str, np.ndarray]]:
    """method → (input, per-call seconds (rounds, calls per round)). Interleaved in rounds
    so that load from elsewhere on the machine and clock changes hit every method alike."""
    calls: dict[str, tuple[str, Callable[[], object], int]] = {}
    for n_rois in (len(CORNERS), 16):
        corners = np.resize(CORNERS, (n_rois, 2)).astype(np.int32)  # 16: two patches again
        roi_flow = RoiFlow(FlowConfig(), n_rois=n_rois)
        call = lambda f=roi_flow, c=corners: f.compute(ref, cur, c)  # noqa: E731
        calls[f"numba RoiFlow ×{n_rois}"] = (f"{n_rois} patches 24²", call, 30)
    per_round = {"TV-L1 (skimage)": 1, "Farneback": 5}
    for method, flow in full_frame_methods().items():
        call = lambda f=flow: f(ref, cur)  # noqa: E731
        calls[method] = (f"{SIZE}²", call, per_round.get(method, 10))
    samples = {method: np.zeros((rounds, n)) for method, (_, _, n) in calls.items()}
    for _, call, _ in calls.values():
        call()  # warm: first-call costs are not per-frame costs
    for r in range(rounds):
        for method, (_, call, n) in calls.items():
            for i in range(n):
                t0 = time.perf_counter()
                call()
                samples[method][r, i] = time.perf_counter() - t0
    return {method: (calls[method][0], samples[method]) for method in calls}


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_flow", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--seeds", type=int, default=5, help="reported seeds 0 … n-1")
    parser.add_argument("--rounds", type=int, default=10, help="interleaved timing rounds")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    print(f"machine: {platform.platform()}, {platform.machine()}, {os.cpu_count()} logical cores")
    print(
        f"numpy {np.__version__}, numba {numba.__version__}, opencv {cv2.__version__}, "
        f"scikit-image {skimage.__version__}; FlowConfig() = {FlowConfig()}\n"
    )
    warm_up()
    faces = aligned_faces()
    sets = {"faces": cases(faces, args.seeds, 0.0)} if faces else {}
    sets["brick"] = cases([texture()], args.seeds, 0.0)
    if faces:
        sets["noisy faces"] = cases(faces, args.seeds, NOISE)
    else:
        print("no fixture faces found: texture only\n")
    n_pairs = {name: len(pairs) for name, pairs in sets.items()}
    print(f"## Endpoint error, px (mean; seeds 0–{args.seeds - 1}; pairs per set: {n_pairs})\n")
    table = accuracy(sets)
    names = list(sets)
    print("| method | " + " | ".join(f"{n} ROI | {n} full" for n in names) + " |")
    print("|---|" + "---:|---:|" * len(names))
    for method, row in table.items():
        cells = [
            f"{row[n][0]:.3f} | " + ("–" if np.isnan(row[n][1]) else f"{row[n][1]:.3f}")
            for n in names
        ]
        print(f"| {method} | " + " | ".join(cells) + " |")
    ref, cur, _ = (sets.get("faces") or sets["brick"])[0]
    times = timings(ref, cur, args.rounds)
    tvl1_ms = np.median(times["TV-L1 (skimage)"][1]) * 1e3
    print("\n## Time per frame pair, ms (one thread)\n")
    print("quiet: the lowest per-round median, the cost while nothing else loads the machine\n")
    print("| method | input | median | p99 | quiet | TV-L1 / this |")
    print("|---|---|---:|---:|---:|---:|")
    for method, (what, samples) in times.items():
        ms = samples * 1e3  # (rounds, calls per round)
        quiet = np.median(ms, axis=1).min()
        print(
            f"| {method} | {what} | {np.median(ms):.3f} | {np.percentile(ms, 99):.3f} | "
            f"{quiet:.3f} | {tvl1_ms / np.median(ms):.0f}× |"
        )
    first = names[0]
    ratio = table["numba RoiFlow"][first][0] / table["TV-L1 (skimage)"][first][0]
    speed = tvl1_ms / (np.median(times[f"numba RoiFlow ×{len(CORNERS)}"][1]) * 1e3)
    verdict = "met" if ratio <= 1.2 and speed >= 50 else "NOT met"
    print(
        f"\nGoal (EPE ≤ 1.2× TV-L1 at ≥ 50× its speed) on {first} ROIs: EPE ratio {ratio:.2f}, "
        f"speed {speed:.0f}× → {verdict}"
    )


if __name__ == "__main__":
    main()
