"""Landmark-local flow nodes: dense flow sampled at 58 facial points, at several time offsets,
with the residual rigid motion removed by a robust affine fit over stable skin.

An action unit moves a few points of skin by 0.5–4 px at 90 px between the eye centres
(0.3–2.3 px on the 160-px aligned face); pooled over big squares it drowns in speech, jaw and
head motion. Per frame and per time offset (default 40, 80, 160 ms):

1. Reference: the stored face whose age (by timestamp, not frame count) is closest to the
   offset, within ``tolerance`` × it; none → the offset is invalid this frame. A gap (face
   lost, re-detection, the clock going back) empties the history.
2. Dense flow, reference → current face: the project's Numba pyramidal Lucas–Kanade
   (stream/face/flow.py, 3 levels) on the whole face in preallocated buffers, chosen over
   OpenCV DIS and Farneback by endpoint error at the nodes and cost (bench_nodes.py). As in
   flow.py, ``ref(x) ≈ cur(x + flow(x))`` in aligned-face px, x right, y down; the field is
   indexed by reference positions, so nodes sit on the REFERENCE face's landmarks.
3. Sampling: a node's flow is the Gaussian-weighted mean (σ = radius / 2, cut at the radius,
   default 0.08 inter-ocular distances ≈ 4 px at 160 px) of the field over a disk.
4. Rigid fit: an affine motion ``flow(p) = A·p + t`` fitted to the stable nodes by iteratively
   reweighted least squares (from the median translation; Huber, then Tukey weights; scale
   from the median residual), so a stable node moved by an expression or a bad flow vector is
   outvoted. The residual (node flow minus the fitted motion) is what expressions leave.

Steps 3–4 are one Numba kernel; ``stream/face/nodes_ref.py`` is its NumPy reference.

Example::

    nodes = NodeFlow(NodeConfig())    # once: allocates the history and every buffer
    row = nodes.update(aligned)       # per frame: NodeRow
    row.residual[row.valid]           # (V, N, 2) px, one (N, 2) per valid offset
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numba import njit

from stream.contracts import AlignedFace
from stream.face.flow import FlowConfig
from stream.face.flow_kernels import N_PLANES, _pyramid_flow
from stream.face.rois import IOD


@dataclass(frozen=True)
class Node:
    """Centre = mean of ``landmarks`` + ``offset`` (inter-ocular units, x right, y down)."""

    name: str
    landmarks: tuple[int, ...]
    offset: tuple[float, float]
    group: str
    stable: bool = False  # stable skin: used by the rigid fit


def _pair(name: str, left: tuple, right: tuple, offset: tuple, group: str, stable: bool = False):
    """A mirror pair: ``_l`` on the image's left (the subject's right, landmarks ``left``)."""
    node_l = Node(f"{name}_l", left, offset, group, stable)
    return node_l, Node(f"{name}_r", right, (-offset[0], offset[1]), group, stable)


# Stable skin (the rigid fit's nodes): the nose ridge 27–30 lies on nasal bone and cartilage
# that no action unit moves (AU9 wrinkles the skin beside it); the inner eye corners are tied to
# bone by the medial canthal tendon (lids move, the canthus does not), sampled just medial of
# 39/42 so the disk holds skin, not eyeball; the temples (0/16 moved inwards and up, off the
# face's edge) are skin over the temporal fascia, no mimetic muscle; the nose base (33 moved up
# onto the columella) stays while AU10 lifts the lip below it. Together they span the face's
# width (temples, canthi) and the nose's height, which an affine fit needs. The outer eye
# corners are NOT stable: AU6/AU7 and blinks pull them.
NODES: tuple[Node, ...] = (
    *_pair("brow_outer", (17,), (26,), (0.0, -0.08), "brows"),
    *_pair("brow_outer_mid", (18,), (25,), (0.0, -0.08), "brows"),
    *_pair("brow_mid", (19,), (24,), (0.0, -0.08), "brows"),
    *_pair("brow_inner_mid", (20,), (23,), (0.0, -0.08), "brows"),
    *_pair("brow_inner", (21,), (22,), (0.0, -0.08), "brows"),
    Node("glabella", (21, 22), (0.0, 0.0), "brows"),  # AU4 corrugator
    *_pair("forehead", (19, 20), (23, 24), (0.0, -0.3), "brows"),  # AU1/AU2 frontalis
    *_pair("eye_outer", (36,), (45,), (-0.05, 0.0), "eyes"),
    *_pair("eye_inner", (39,), (42,), (0.06, 0.0), "eyes", stable=True),
    *_pair("lid_upper_outer", (37,), (44,), (0.0, -0.05), "eyes"),
    *_pair("lid_upper_inner", (38,), (43,), (0.0, -0.05), "eyes"),
    *_pair("lid_lower_inner", (40,), (47,), (0.0, 0.06), "eyes"),  # AU7 lid tightener
    *_pair("lid_lower_outer", (41,), (46,), (0.0, 0.06), "eyes"),
    Node("nose_root", (27,), (0.0, 0.0), "nose", stable=True),
    Node("nose_ridge_upper", (28,), (0.0, 0.0), "nose", stable=True),
    Node("nose_ridge_lower", (29,), (0.0, 0.0), "nose", stable=True),
    Node("nose_tip", (30,), (0.0, 0.0), "nose", stable=True),
    Node("nose_base", (33,), (0.0, -0.06), "nose", stable=True),
    *_pair("nose_side", (29,), (29,), (-0.15, 0.0), "nose"),  # AU9 nose wrinkler
    *_pair("nose_wing", (31,), (35,), (-0.06, -0.06), "nose"),
    *_pair("nasolabial_upper", (31, 48), (35, 54), (-0.12, -0.08), "nose"),
    *_pair("nasolabial_lower", (48,), (54,), (-0.14, -0.04), "nose"),
    *_pair("lip_corner", (48,), (54,), (0.0, 0.0), "mouth"),  # AU12/AU15
    *_pair("lip_upper", (50,), (52,), (0.0, 0.0), "mouth"),
    Node("lip_upper_mid", (51,), (0.0, 0.0), "mouth"),
    *_pair("lip_lower", (58,), (56,), (0.0, 0.0), "mouth"),
    Node("lip_lower_mid", (57,), (0.0, 0.0), "mouth"),
    Node("chin_mentalis", (57, 8), (0.0, 0.0), "chin"),  # AU17 chin raiser
    Node("chin", (8,), (0.0, -0.12), "chin"),
    *_pair("chin_side", (7,), (9,), (0.05, -0.2), "chin"),
    *_pair("cheek_malar", (41,), (46,), (-0.05, 0.3), "cheeks"),  # AU6 cheek raiser
    *_pair("cheek_lateral", (1,), (15,), (0.2, 0.0), "cheeks"),
    *_pair("cheek_buccal", (2, 48), (14, 54), (0.0, 0.0), "cheeks"),  # AU12/AU13, speech
    *_pair("temple", (0,), (16,), (0.16, -0.12), "cheeks", stable=True),
)
N_NODES = len(NODES)
NODE_NAMES = tuple(node.name for node in NODES)
GROUPS = ("brows", "eyes", "nose", "mouth", "chin", "cheeks")
NODE_GROUPS = tuple(node.group for node in NODES)
STABLE_NODES = tuple(i for i, node in enumerate(NODES) if node.stable)
_WEIGHTS = np.array(
    [[(i in n.landmarks) / len(n.landmarks) for i in range(68)] for n in NODES], np.float32
)  # (N, 68): centres = weights @ landmarks
_OFFSETS = np.array([node.offset for node in NODES], np.float32)  # (N, 2) inter-ocular units


def node_positions(landmarks_aligned: np.ndarray, face_size: int = 160) -> np.ndarray:
    """Node centres (N, 2) float32 in aligned-face px from the aligned landmarks (68, 2)."""
    return _WEIGHTS @ landmarks_aligned + _OFFSETS * np.float32(IOD * face_size)  # (N, 2)


@dataclass(frozen=True)
class NodeConfig:
    """Node flow parameters. ``tolerance``: a reference qualifies when low·offset ≤ its age ≤
    high·offset. ``max_fps`` sizes the history. ``sigma_min_px``: floor of the rigid fit's
    residual scale (flow noise), so an exact fit does not make every slightly-off node an
    outlier. ``flow``: the Lucas–Kanade parameters (stream/face/flow.py)."""

    face_size: int = 160
    offsets_ms: tuple[float, ...] = (40.0, 80.0, 160.0)
    tolerance: tuple[float, float] = (0.6, 1.6)
    radius_iod: float = 0.08  # sampling disk radius, inter-ocular distances
    max_fps: float = 240.0
    huber_iterations: int = 2
    tukey_iterations: int = 4
    sigma_min_px: float = 0.05
    # Three levels and a light coarse damping: the whole face moves by several px when the head
    # does (the ROI defaults, tuned on 24-px patches, lose a 3-px shift; bench_nodes.py).
    flow: FlowConfig = field(default_factory=lambda: FlowConfig(levels=3, coarse_damping=1e-5))

    def __post_init__(self) -> None:
        positive = self.offsets_ms and min(self.offsets_ms) > 0 and self.sigma_min_px > 0
        if not positive or not 0 < self.tolerance[0] <= 1 <= self.tolerance[1]:
            raise ValueError(f"offsets and sigma_min_px > 0, 0 < low ≤ 1 ≤ high: {self}")
        if min(self.huber_iterations, self.tukey_iterations) < 0:
            raise ValueError("iterations must be ≥ 0")

    @property
    def radius_px(self) -> float:
        return self.radius_iod * IOD * self.face_size

    @property
    def history(self) -> int:
        """Faces kept: enough to reach the oldest qualifying reference at ``max_fps``."""
        return math.ceil(max(self.offsets_ms) * self.tolerance[1] / 1e3 * self.max_fps) + 2


@dataclass(slots=True)
class NodeRow:
    """One frame's node motion, O = len(offsets_ms), N = N_NODES; fresh arrays, safe to keep.

    residual (O, N, 2) float32 px in the aligned face: node flow minus the rigid fit; flow
    (O, N, 2): node flow before it; affine (O, 6) float32 (a, b, tx, c, d, ty): the fitted
    motion (a·x + b·y + tx, c·x + d·y + ty) at aligned-face px (x, y); valid (O,) bool: a
    reference of the right age existed (else zeros); age_ms (O,) float32: its age (0: none).
    """

    seq: int
    t_mono_ns: int
    t_s: float
    residual: np.ndarray
    flow: np.ndarray
    affine: np.ndarray
    valid: np.ndarray
    age_ms: np.ndarray


class LKFlow:
    """``stream.face.flow.dense_flow`` of (S, S) uint8 faces / 255 in preallocated buffers (the
    same numbers): ``LKFlow(160)(ref, cur)`` → a reused (S, S, 2) float32 field."""

    scale = 1  # field px per face px (a flow on an upsampled face would say 2)

    def __init__(self, face_size: int, config: FlowConfig | None = None) -> None:
        c = self.config = config or FlowConfig()
        n = face_size + 2 * c.pad
        self._iters, self._damps = c.schedule()
        self._pyr = np.zeros((4, c.levels, n, n), np.float32)  # ref, cur, u, v per level
        self._planes = np.zeros((c.levels, N_PLANES, n, n), np.float32)
        self._rows, self._idx = np.zeros((7, n), np.float32), np.zeros(n, np.int32)
        self._rect = (c.pad, c.pad + face_size, c.pad, c.pad + face_size)
        self._unit = np.zeros((face_size, face_size), np.float32)  # (S, S) face in 0..1
        self.field = np.zeros((face_size, face_size, 2), np.float32)  # (S, S, 2)

    def __call__(self, ref: np.ndarray, cur: np.ndarray) -> np.ndarray:
        (y0, y1, x0, x1), c = self._rect, self.config
        for i, face in enumerate((ref, cur)):  # contiguous cast and scale: numpy adds no buffer
            self._unit[...] = face
            self._unit *= np.float32(1 / 255)
            self._pyr[i, 0, y0:y1, x0:x1] = self._unit
        _pyramid_flow(
            self._pyr, self._planes, self._rows, self._idx, y1 - y0, x1 - x0, c.pad, self._rect,
            0, self._iters, c.window, self._damps,
        )  # fmt: skip
        self.field[..., 0] = self._pyr[2, 0, y0:y1, x0:x1]
        self.field[..., 1] = self._pyr[3, 0, y0:y1, x0:x1]
        return self.field


class NodeFlow:
    """Per-frame node flow at several time offsets; one per stream, fed every frame in order.
    ``flow(ref, cur)``: (S, S) uint8 faces → (S·k, S·k, 2) float32 field with attribute
    ``scale`` = k (default ``LKFlow``; benchmarks pass others). Every buffer is allocated here;
    ``update`` allocates only the returned row's small arrays."""

    def __init__(
        self, config: NodeConfig | None = None, flow: Callable[..., np.ndarray] | None = None
    ) -> None:
        c = self.config = config or NodeConfig()
        n_off = len(c.offsets_ms)
        self.flow = flow or LKFlow(c.face_size, c.flow)
        self._faces = np.zeros((c.history, c.face_size, c.face_size), np.uint8)  # (H, S, S)
        self._t_s = np.zeros(c.history, np.float64)
        self._landmarks = np.zeros((c.history, 68, 2), np.float32)  # (H, 68, 2)
        self._count = 0  # faces stored since the last reset
        self._positions = np.zeros((N_NODES, 2), np.float32)  # (N, 2) on the reference
        self._sampled = np.zeros((n_off, N_NODES, 2), np.float32)  # (O, N, 2)
        self._residual = np.zeros((n_off, N_NODES, 2), np.float32)  # (O, N, 2)
        self._affine = np.zeros((n_off, 6), np.float64)  # (O, 6)
        self._valid, self._age_ms = np.zeros(n_off, bool), np.zeros(n_off, np.float32)
        self._stable = np.asarray(STABLE_NODES, np.int64)
        self.resets = 0
        warm_up()

    def reset(self) -> None:
        """Forget the history (a gap): nothing is compared across it."""
        self._count = 0
        self.resets += 1

    def update(self, face: AlignedFace, gap: bool = False) -> NodeRow:
        """This frame's node motion against each offset's reference; ``gap``: frames were lost
        just before it."""
        c = self.config
        last_t_s = self._t_s[(self._count - 1) % c.history]
        if gap or not face.ok or face.redetected or (self._count and face.t_s <= last_t_s):
            self.reset()
        for buffer in (self._valid, self._sampled, self._residual, self._affine, self._age_ms):
            buffer[...] = 0
        if face.ok:
            slot = self._count % c.history
            self._faces[slot], self._t_s[slot] = face.face, face.t_s
            self._landmarks[slot] = face.landmarks
            self._count += 1
            for k, ref in enumerate(self._references(face.t_s)):
                if ref >= 0:
                    self._compute(k, ref, slot)
        return NodeRow(
            face.seq, face.t_mono_ns, face.t_s, self._residual.copy(), self._sampled.copy(),
            self._affine.astype(np.float32), self._valid.copy(), self._age_ms.copy(),
        )  # fmt: skip

    def _references(self, t_s: float) -> list[int]:
        """Per offset, the history slot of its reference (-1: none of the right age)."""
        c = self.config
        slots = (self._count - 1 - np.arange(1, min(self._count, c.history))) % c.history
        ages_ms = (t_s - self._t_s[slots]) * 1e3  # (n_past,) newest first
        refs = []
        for offset in c.offsets_ms:
            low, high = c.tolerance[0] * offset, c.tolerance[1] * offset
            usable = np.flatnonzero((ages_ms >= low) & (ages_ms <= high))
            best = usable[np.argmin(np.abs(ages_ms[usable] - offset))] if usable.size else -1
            refs.append(int(slots[best]) if best >= 0 else -1)
        return refs

    def _compute(self, k: int, ref: int, cur: int) -> None:
        c = self.config
        field = self.flow(self._faces[ref], self._faces[cur])  # (S', S', 2)
        self._positions[...] = node_positions(self._landmarks[ref], c.face_size)
        _node_kernel(
            field, self._positions, float(self.flow.scale), c.radius_px, self._stable,
            c.huber_iterations, c.tukey_iterations, c.sigma_min_px,
            self._sampled[k], self._residual[k], self._affine[k],
        )  # fmt: skip
        self._valid[k] = True
        self._age_ms[k] = (self._t_s[cur] - self._t_s[ref]) * 1e3


# Numba kernels.
HUBER_K = 1.5  # Huber threshold, in residual scales
TUKEY_C = 4.0  # Tukey cut-off, in residual scales (on 2-D residual norms)
RAYLEIGH_MEDIAN = 1.1774  # median |r| / σ of an isotropic 2-D Gaussian residual
RIDGE = 1e-6  # on the linear terms (normalised coordinates): a degenerate set stays solvable


@njit(cache=True, nogil=True)
def _sample_nodes(field, positions, scale, radius, out):
    """out (N, 2): Gaussian-weighted mean (σ = radius / 2) of ``field`` (H, W, 2) sampled
    bilinearly at integer offsets within ``radius`` face px of each position (N, 2), / ``scale``
    (field px per face px, face px x at scale·(x + ½) - ½ as cv2.resize puts it). A stencil
    symmetric about the node: an affine field comes out exact (edges replicated)."""
    h, w, k = field.shape[0], field.shape[1], math.floor(radius)
    for n in range(positions.shape[0]):
        cx = scale * (positions[n, 0] + 0.5) - 0.5
        cy = scale * (positions[n, 1] + 0.5) - 0.5
        sw = sx = sy = 0.0
        for dy in range(-k, k + 1):
            for dx in range(-k, k + 1):
                if dx * dx + dy * dy > radius * radius:
                    continue
                wgt = math.exp(-2.0 * (dx * dx + dy * dy) / (radius * radius))
                x = min(max(cx + scale * dx, 0.0), w - 1.0)
                y = min(max(cy + scale * dy, 0.0), h - 1.0)
                ix, iy = min(int(x), w - 2), min(int(y), h - 2)
                fx, fy = x - ix, y - iy
                w00, w01 = (1 - fy) * (1 - fx) * wgt, (1 - fy) * fx * wgt
                w10, w11 = fy * (1 - fx) * wgt, fy * fx * wgt
                sx += w00 * field[iy, ix, 0] + w01 * field[iy, ix + 1, 0]
                sx += w10 * field[iy + 1, ix, 0] + w11 * field[iy + 1, ix + 1, 0]
                sy += w00 * field[iy, ix, 1] + w01 * field[iy, ix + 1, 1]
                sy += w10 * field[iy + 1, ix, 1] + w11 * field[iy + 1, ix + 1, 1]
                sw += wgt
        out[n, 0] = sx / sw / scale
        out[n, 1] = sy / sw / scale


@njit(cache=True, nogil=True)
def _fit_affine(points, flows, n_huber, n_tukey, sigma_min, affine):
    """Robust affine motion, affine (6,) = (a, b, tx, c, d, ty) with flow ≈ (a·x + b·y + tx,
    c·x + d·y + ty), from float64 points (M, 2) and their flows (M, 2), by IRLS."""
    m = points.shape[0]
    centre = points.sum(axis=0) / m
    length = math.sqrt(((points - centre) ** 2).sum() / m) + 1e-12
    design = np.ones((m, 3))  # (M, 3): 1 and centred unit-RMS coordinates (well conditioned)
    design[:, 1:] = (points - centre) / length
    design_t = np.ascontiguousarray(design.T)  # (3, M)
    params = np.zeros((3, 2))  # (t, ∂/∂qx, ∂/∂qy) per flow axis
    params[0, 0] = np.median(flows[:, 0])  # start: the median translation, deaf to outliers
    params[0, 1] = np.median(flows[:, 1])
    ridge = np.diag(np.array([0.0, 1.0, 1.0]))
    for it in range(n_huber + n_tukey):
        res = flows - design @ params  # (M, 2)
        norms = np.sqrt(res[:, 0] ** 2 + res[:, 1] ** 2)
        u = norms / max(np.median(norms) / RAYLEIGH_MEDIAN, sigma_min)
        if it < n_huber:
            wts = np.where(u <= HUBER_K, 1.0, HUBER_K / np.maximum(u, HUBER_K))
        else:
            wts = np.where(u < TUKEY_C, (1.0 - (u / TUKEY_C) ** 2) ** 2, 0.0)
        weighted = design_t * wts  # (3, M)
        normal = weighted @ design + ridge * (RIDGE * wts.sum() + 1e-12)  # (3, 3)
        params[...] = np.linalg.solve(normal, weighted @ flows)  # (3, 2)
    lin = params[1:] / length  # (2, 2) [∂/∂x, ∂/∂y] × flow axis
    for axis in range(2):  # back to px: flow = t + lin·(p - centre)
        affine[3 * axis], affine[3 * axis + 1] = lin[0, axis], lin[1, axis]
        affine[3 * axis + 2] = params[0, axis] - (lin[:, axis] * centre).sum()


@njit(cache=True, nogil=True)
def _node_kernel(
    field, positions, scale, radius, stable, n_huber, n_tukey, sigma_min, sampled, residual, affine
):
    """Sample ``field`` at the nodes, fit the rigid motion on the ``stable`` (M,) nodes, write
    sampled (N, 2), residual (N, 2) and affine (6,)."""
    _sample_nodes(field, positions, scale, radius, sampled)
    points, flows = np.empty((stable.shape[0], 2)), np.empty((stable.shape[0], 2))
    for i in range(stable.shape[0]):
        points[i], flows[i] = positions[stable[i]], sampled[stable[i]]
    _fit_affine(points, flows, n_huber, n_tukey, sigma_min, affine)
    for n in range(positions.shape[0]):
        x, y = float(positions[n, 0]), float(positions[n, 1])
        residual[n, 0] = sampled[n, 0] - (affine[0] * x + affine[1] * y + affine[2])
        residual[n, 1] = sampled[n, 1] - (affine[3] * x + affine[4] * y + affine[5])


def node_residual(
    field: np.ndarray, positions: np.ndarray, config: NodeConfig | None = None, scale: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What ``NodeFlow`` does with one (H, W, 2) field at node positions (N, 2): sampled and
    residual (N, 2) float32, affine (6,) float64 (see ``NodeRow``); ``scale``: field px per
    face px. Allocates: for tests, benchmarks and offline use."""
    c, f32 = config or NodeConfig(), np.float32
    sampled, residual = np.zeros((2, len(positions), 2), f32)
    affine = np.zeros(6)
    _node_kernel(
        np.ascontiguousarray(field, f32), np.ascontiguousarray(positions, f32), float(scale),
        c.radius_px, np.asarray(STABLE_NODES, np.int64), c.huber_iterations,
        c.tukey_iterations, c.sigma_min_px, sampled, residual, affine,
    )  # fmt: skip
    return sampled, residual, affine


def warm_up() -> None:
    """Compile (or load from Numba's cache) the kernels; NodeFlow calls it at construction."""
    blank = np.zeros((32, 32), np.uint8)
    field = LKFlow(32, FlowConfig(levels=2))(blank, blank)  # (32, 32, 2)
    node_residual(field, node_positions(np.full((68, 2), 16.0, np.float32), 32))
