"""Node flow benchmark: endpoint error at the landmark-local nodes (stream/face/nodes.py) on
KNOWN injected motion, and the cost per frame, for each dense flow candidate.

    python -m benchmarks.bench_nodes [--faces 31] [--rounds 15] [--noise 2] [--head 1]

Faces: the fixture photos and frames 5 and 35 of each fixture video (../shared/fixtures or
$MEXLIVE_FIXTURES), aligned to 160 px by ``stream.face.align.FaceTracker``.
Motion: per face and amplitude A (1, 2, 3 px at 90 px between the eye centres, i.e. A·52/90
px on the 160-px face), three Gaussian bumps (σ = ``--sigma`` inter-ocular distances, peak A,
random directions) on random non-stable nodes of three different groups: a local muscle
pattern. Each pair is made twice, once plus a global affine motion (translation ≤ ``--head``
px of the 160-px face, linear part ≤ 0.015·``--head``: a yaw or a nod the similarity
alignment leaves behind).
cur = warp_pair(face, field), so ref(x) = cur(x + field(x)) exactly (stream/face/flow_ref.py);
then sensor noise (σ ``--noise`` grey levels) on both frames, rounded to uint8.
Columns, EPE in px at 90 px IOD (the 160-px face's px × 90/52), mean / median, over all nodes
of all faces and over the moving ones (true bump flow ≥ A/2):
  node flow EPE     |node flow − the bumps' true flow sampled the same way| (no affine)
  residual EPE      |residual after the rigid fit − the bumps' flow| (no affine)
  + affine          the same with the global affine injected: the fit must remove it
  measured/injected least-squares gain of the node flow on the bumps' flow at the moving
                    nodes: 1 = the whole displacement measured, 0.5 = half
  ms/frame          NodeFlow.update with that flow on a 30-fps stream: 3 offsets = 3 flows +
                    sampling + fit, one thread (cv2.setNumThreads(1)), median and p99 over
                    interleaved rounds
Candidates: OpenCV DIS presets (at 160 px and on the face upsampled ×2), Farneback (pyramid
0.5 × 3, window 15), the project's Numba Lucas–Kanade as ``dense_flow`` with the ROI defaults
(allocating) and as ``LKFlow`` with ``NodeConfig().flow`` (3 levels, light coarse damping; the
one NodeFlow uses). "zeros" answers no motion at all: the scale of the task.
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np

from benchmarks.machine_info import cpu_name
from stream.contracts import AlignedFace
from stream.datasets.identities import fixtures_photos_dir, fixtures_videos_dir
from stream.face.align import FaceTracker
from stream.face.flow import dense_flow
from stream.face.flow_ref import warp_pair
from stream.face.nodes import (
    GROUPS,
    NODE_GROUPS,
    STABLE_NODES,
    LKFlow,
    NodeConfig,
    NodeFlow,
    node_positions,
    node_residual,
)
from stream.face.rois import IOD, canonical_landmarks

SIZE = 160
TO_90 = 90.0 / (IOD * SIZE)  # aligned-face px → px at 90 px between the eye centres
AMPLITUDES = (1.0, 2.0, 3.0)  # px at 90 px IOD
MOVING = 0.5  # a node moves when its true bump flow is ≥ this share of the amplitude
DIS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


class CvFlow:
    """An OpenCV flow as NodeFlow takes it: ``flow(ref, cur)`` → (S·k, S·k, 2), ``scale`` = k
    (k = 2: on the face upsampled ×2, buffers reused)."""

    def __init__(self, method: str, scale: int = 1) -> None:
        self.method, self.scale = method, scale
        side = SIZE * scale
        self.field = np.zeros((side, side, 2), np.float32)
        self._up = np.zeros((2, side, side), np.uint8)
        self._dis = cv2.DISOpticalFlow_create(DIS[method]) if method in DIS else None

    def __call__(self, ref: np.ndarray, cur: np.ndarray) -> np.ndarray:
        if self.scale != 1:
            ref = cv2.resize(ref, self._up.shape[1:], dst=self._up[0])
            cur = cv2.resize(cur, self._up.shape[1:], dst=self._up[1])
        if self._dis is not None:
            return self._dis.calc(ref, cur, self.field)
        return cv2.calcOpticalFlowFarneback(ref, cur, self.field, 0.5, 3, 15, 3, 5, 1.2, 0)


class DenseLK:
    """``stream.face.flow.dense_flow`` as it stands (allocates per call): LKFlow's cost gap."""

    scale = 1

    def __call__(self, ref: np.ndarray, cur: np.ndarray) -> np.ndarray:
        f = np.float32(1 / 255)
        return dense_flow(ref.astype(np.float32) * f, cur.astype(np.float32) * f)


def candidates() -> dict:
    return {
        "DIS ultrafast": CvFlow("ultrafast"),
        "DIS fast": CvFlow("fast"),
        "DIS medium": CvFlow("medium"),
        "DIS ultrafast ×2": CvFlow("ultrafast", 2),
        "DIS fast ×2": CvFlow("fast", 2),
        "Farneback": CvFlow("farneback"),
        "Numba LK, FlowConfig() (dense_flow)": DenseLK(),
        "Numba LK, NodeConfig().flow (LKFlow)": LKFlow(SIZE, NodeConfig().flow),
    }


def aligned_faces(limit: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(face (S, S) uint8, landmarks (68, 2)) of the fixture photos and video frames 5, 35."""
    tracker, out = FaceTracker(), []
    for path in sorted(fixtures_photos_dir().glob("*.[jp][pn]g")):
        tracker.reset()
        face = tracker.update(cv2.imread(str(path)), 0, 0, 0.0)
        if face.ok:
            out.append((face.face.copy(), face.landmarks.copy()))
    for path in sorted(fixtures_videos_dir().glob("*.mp4")):
        tracker.reset()
        cap = cv2.VideoCapture(str(path))
        for i in range(36):
            ok, image = cap.read()
            face = tracker.update(image, i, 0, i / 30) if ok else None
            if face is not None and face.ok and i in (5, 35):
                out.append((face.face.copy(), face.landmarks.copy()))
        cap.release()
    return out[:limit]


def bump_field(positions, amplitude: float, sigma_iod: float, rng) -> np.ndarray:
    """(S, S, 2) float32: three Gaussian bumps of peak ``amplitude`` px, random directions, on
    non-stable nodes of three different groups."""
    ys, xs = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    field = np.zeros((SIZE, SIZE, 2), np.float32)
    sigma = sigma_iod * IOD * SIZE
    for group in rng.choice(GROUPS, 3, replace=False):
        members = [i for i, g in enumerate(NODE_GROUPS) if g == group and i not in STABLE_NODES]
        x, y = positions[rng.choice(members)]
        angle = rng.uniform(0, 2 * np.pi)
        bump = np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma**2))  # (S, S)
        field += amplitude * bump[..., None] * np.array([np.cos(angle), np.sin(angle)], "f4")
    return field


def affine_field(rng, head_px: float) -> np.ndarray:
    """(S, S, 2) float32 global affine motion about the face centre."""
    ys, xs = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) - SIZE / 2
    lin = rng.uniform(-0.015, 0.015, (2, 2)) * head_px
    t = rng.uniform(-head_px, head_px, 2)
    dx = lin[0, 0] * xs + lin[0, 1] * ys + t[0]
    return np.stack([dx, lin[1, 0] * xs + lin[1, 1] * ys + t[1]], -1).astype(np.float32)


def camera(image: np.ndarray, noise: float, rng) -> np.ndarray:
    noisy = image + rng.normal(0.0, noise, image.shape)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def cases(faces, noise: float, sigma_iod: float, head_px: float, seed: int = 0) -> list[dict]:
    """Per face and amplitude: (ref, cur) pairs without and with the affine, node positions,
    and the bumps' true flow at the nodes (sampled like the measured flow)."""
    rng, out = np.random.default_rng(seed), []
    for face, landmarks in faces:
        positions = node_positions(landmarks, SIZE)  # (N, 2)
        image = face.astype(np.float32)
        for amplitude in AMPLITUDES:
            bumps = bump_field(positions, amplitude / TO_90, sigma_iod, rng)  # (S, S, 2)
            total = bumps + affine_field(rng, head_px)
            out.append(
                dict(
                    amplitude=amplitude,
                    positions=positions,
                    plain=(camera(image, noise, rng), camera(warp_pair(image, bumps), noise, rng)),
                    affine=(camera(image, noise, rng), camera(warp_pair(image, total), noise, rng)),
                    truth=node_residual(bumps, positions)[0],  # (N, 2)
                )
            )
    return out


def accuracy(flow, pairs: list[dict]) -> dict[float, dict[str, float]]:
    """amplitude → scores in px at 90 px IOD (flow None: answer no motion)."""
    acc: dict[float, dict[str, list]] = {}
    for case in pairs:
        a = acc.setdefault(case["amplitude"], {k: [] for k in ("node", "res", "aff", "mov", "g")})
        truth = case["truth"]  # (N, 2)
        moving = np.linalg.norm(truth, axis=1) >= MOVING * case["amplitude"] / TO_90  # (N,)
        out = {}
        for key in ("plain", "affine"):
            field = np.zeros((SIZE, SIZE, 2), np.float32) if flow is None else flow(*case[key])
            scale = 1 if flow is None else flow.scale
            out[key] = node_residual(field, case["positions"], scale=scale)
        sampled, residual = out["plain"][0], out["plain"][1]
        a["node"].append(np.linalg.norm(sampled - truth, axis=1) * TO_90)
        a["res"].append(np.linalg.norm(residual - truth, axis=1) * TO_90)
        a["aff"].append(np.linalg.norm(out["affine"][1] - truth, axis=1) * TO_90)
        a["mov"].append(moving)
        a["g"].append((sampled[moving], truth[moving]))
    scores = {}
    for amplitude, a in acc.items():
        moving = np.concatenate(a["mov"])
        row = {}
        for key in ("node", "res", "aff"):
            errors = np.concatenate(a[key])
            row[key] = (errors.mean(), np.median(errors))
            row[f"{key}_moving"] = (errors[moving].mean(), np.median(errors[moving]))
        measured = np.concatenate([m for m, _ in a["g"]])
        truth = np.concatenate([g for _, g in a["g"]])
        row["gain"] = float((measured * truth).sum() / (truth * truth).sum())
        scores[amplitude] = row
    return scores


def timings(pairs: list[dict], flows: dict, rounds: int, per_round: int = 10) -> dict:
    """name → seconds per NodeFlow.update (rounds · per_round,): a 30-fps stream of the
    benchmark's faces (every offset valid), the methods taking turns so load hits all alike."""
    landmarks = canonical_landmarks(SIZE)  # (68, 2)
    faces = [face for case in pairs[:8] for face in case["plain"]]
    nodes = {name: NodeFlow(NodeConfig(), flow=flow) for name, flow in flows.items()}
    samples: dict[str, list[float]] = {name: [] for name in flows}
    for r in range(-1, rounds):  # round -1 fills the history: not timed
        for name, node_flow in nodes.items():
            for i in range(per_round):
                n = (r + 1) * per_round + i
                face = AlignedFace(n, 0, faces[n % len(faces)], landmarks, True, t_s=n / 30)
                t0 = time.perf_counter()
                row = node_flow.update(face)
                if r >= 0:
                    samples[name].append(time.perf_counter() - t0)
                    assert row.valid.all()
    return {name: np.array(s) for name, s in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_nodes", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--faces", type=int, default=31, help="at most this many faces")
    parser.add_argument("--rounds", type=int, default=15, help="interleaved timing rounds")
    parser.add_argument("--noise", type=float, default=2.0, help="sensor noise, grey levels")
    parser.add_argument("--sigma", type=float, default=0.12, help="bump σ, inter-ocular units")
    parser.add_argument("--head", type=float, default=1.0, help="affine translation ≤ px")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    faces = aligned_faces(args.faces)
    if not faces:
        raise SystemExit("no fixture faces found: set MEXLIVE_FIXTURES")
    pairs = cases(faces, args.noise, args.sigma, args.head)
    flows = candidates()
    table = {"zeros (no motion)": accuracy(None, pairs)}
    table.update({name: accuracy(flow, pairs) for name, flow in flows.items()})
    times = timings(pairs, flows, args.rounds)
    print(
        f"Machine: {cpu_name()}, one thread. {len(faces)} real faces × {len(AMPLITUDES)} "
        f"amplitudes, bump σ {args.sigma} IOD, noise σ {args.noise} grey levels, affine ≤ "
        f"{args.head:g} px. EPE in px at 90 px IOD, mean / median; moving: nodes whose true "
        f"flow ≥ {MOVING:g}·A.\n"
    )
    print(
        "| method | A px | node flow EPE | moving | residual EPE | moving | + affine: residual "
        "EPE | moving | measured / injected | ms/frame median | p99 |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, rows in table.items():
        for amplitude, row in rows.items():
            cells = [
                f"{row[k][0]:.3f} / {row[k][1]:.3f}"
                for k in ("node", "node_moving", "res", "res_moving", "aff", "aff_moving")
            ]
            ms = times[name] * 1e3 if name in times and amplitude == AMPLITUDES[0] else None
            cost = "| " if ms is None else f"{np.median(ms):.2f} | {np.percentile(ms, 99):.2f}"
            print(
                f"| {name} | {amplitude:g} | "
                + " | ".join(cells)
                + f" | {row['gain']:.2f} | {cost} |"
            )


if __name__ == "__main__":
    main()
