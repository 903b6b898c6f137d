"""Black-box attack evaluation of privacy stickers: one recognizer query per clip.

The recognizers queried (``stream.privacy.recognizers``) see only a clip's (protected)
frames; alignment, feature rows and aligned faces are computed once per clip
(``Clip.analysis``) for all of them.

Clips are cut around each micro-expression of a synthetic test video (``ClipSource``), with
``pre_s`` of neutral face before the onset, or from a real video with micro-expressions
injected into it (``injected_clips``). A protected clip is the same frames with a sticker
drawn by ``StickerPlacer`` from the protector's own face tracking of the clean frames.

Attack success = share of the clips recognised correctly without a sticker whose prediction
is no longer correct with it (the paper's "the predicted emotion changes from the correct one").
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from stream.contracts import AlignedFace
from stream.face.align import FaceTracker
from stream.face.features import FeatureExtractor
from stream.privacy.stickers import Placement, Sticker, StickerPlacer
from stream.synthetic.animator import FaceAnimator, SyntheticConfig
from stream.synthetic.injected import InjectedClip, InjectionConfig, inject


@dataclass
class ClipAnalysis:
    """What the live path computes from a clip's frames, once for every recognizer.

    values (T, F) float32 and valid (T,) bool: the feature rows (the spotters' input);
    faces (T, S, S) uint8, landmarks (T, 68, 2) float32 and faces_ok (T,) bool: the aligned
    faces (the MPFNet recognizer's input); nodes (T, O, N, 2), nodes_valid (T, O) and
    landmarks_px (T, 68, 2, NaN without a face): the node spotter's input.
    """

    values: np.ndarray
    valid: np.ndarray
    faces: np.ndarray
    landmarks: np.ndarray
    faces_ok: np.ndarray
    nodes: np.ndarray
    nodes_valid: np.ndarray
    landmarks_px: np.ndarray


@dataclass
class Clip:
    """Frames (BGR uint8 (H, W, 3) each) around one expression, with its truth.

    ``analysis()`` (alignment, feature rows and the aligned faces, as the live path computes
    them) is computed once and shared by every recognizer, so four recognizers cost one
    alignment; with ``cache`` set it is also kept on disk for a rerun.
    """

    frames: list[np.ndarray]
    fps: float
    emotion: str
    onset: int  # frame indices inside the clip
    offset: int
    identity: str = ""
    clip_id: str = ""
    placements: list[Placement | None] = field(default_factory=list)
    cache: Path | None = None  # .npz of the analysis: a rerun (another recognizer) reuses it
    apex: int = -1  # frame index inside the clip (the annotation a recognizer may read)
    _analysis: ClipAnalysis | None = None

    @classmethod
    def from_injected(cls, clip: InjectedClip) -> Clip:
        """A clip cut from a real video with a micro-expression injected into it."""
        return cls(
            frames=clip.frames,
            fps=clip.fps,
            emotion=clip.emotion,
            onset=clip.onset,
            offset=clip.offset,
            identity=clip.identity,
            clip_id=clip.clip_id,
            apex=clip.apex,
        )

    def features(self) -> tuple[np.ndarray, np.ndarray]:
        """(values (T, F) float32, valid (T,) bool) of a fresh tracker and extractor."""
        analysis = self.analysis()
        return analysis.values, analysis.valid

    def analysis(self) -> ClipAnalysis:
        if self._analysis is None and self.cache is not None and self.cache.is_file():
            with np.load(self.cache) as data:
                fields = set(ClipAnalysis.__dataclass_fields__)
                if fields <= set(data.files) and len(data["faces"]) == len(self.frames):
                    self._analysis = ClipAnalysis(**{k: data[k] for k in fields})
        if self._analysis is None:
            self._analysis = self._analyse()
            if self.cache is not None:
                self.cache.parent.mkdir(parents=True, exist_ok=True)
                np.savez(self.cache, **dataclasses.asdict(self._analysis))
        return self._analysis

    def _analyse(self) -> ClipAnalysis:
        from stream.face.nodes import NodeFlow

        tracker, extractor, node_flow = FaceTracker(), FeatureExtractor(), NodeFlow()
        values, valid, faces, landmarks, faces_ok = [], [], [], [], []
        nodes, nodes_valid, landmarks_px = [], [], []
        for i, image in enumerate(self.frames):
            t_s = i / self.fps
            aligned = tracker.update(image, i, round(t_s * 1e9), t_s)
            ok = aligned.ok and aligned.face is not None  # copies: the tracker reuses buffers
            faces.append(aligned.face.copy() if ok else None)
            landmarks.append(aligned.landmarks.copy() if ok else np.zeros((68, 2), np.float32))
            faces_ok.append(ok)
            row = extractor.update(aligned)
            values.append(row.values.copy())
            valid.append(row.valid)
            node = node_flow.update(aligned)
            nodes.append(node.residual)
            nodes_valid.append(node.valid)
            seen = aligned.ok and aligned.landmarks_px is not None
            landmarks_px.append(aligned.landmarks_px.copy() if seen else np.full((68, 2), np.nan))
        shape = next((f.shape for f in faces if f is not None), (1, 1))
        blank = np.zeros(shape, np.uint8)
        return ClipAnalysis(
            np.stack(values),
            np.array(valid, bool),
            np.stack([blank if f is None else f for f in faces]),  # (T, S, S)
            np.stack(landmarks).astype(np.float32),  # (T, 68, 2)
            np.array(faces_ok, bool),
            np.stack(nodes),  # (T, O, N, 2)
            np.stack(nodes_valid),  # (T, O)
            np.stack(landmarks_px).astype(np.float32),  # (T, 68, 2)
        )


@dataclass
class ClipSource:
    """A synthetic test video of one identity and the micro-expression clips cut from it."""

    photo: str | None
    seed: int
    seconds: float = 30.0
    fps: float = 30.0
    micro_per_min: float = 16.0
    pre_s: float = 1.3
    post_s: float = 0.3
    lead_region: str | None = None

    def animator(self) -> FaceAnimator:
        return FaceAnimator(
            SyntheticConfig(
                seed=self.seed,
                photo=self.photo,
                fps=self.fps,
                micro_per_min=self.micro_per_min,
                macro_per_min=0.0,
                blinks_per_min=6.0,
                lead_region=self.lead_region,
            )
        )

    def clips(self, animator: FaceAnimator | None = None) -> Iterator[Clip]:
        """Each micro-expression with ``pre_s`` before and ``post_s`` after it (frames
        rendered on demand, one clip in memory at a time)."""
        animator = animator or self.animator()
        n_frames = round(self.seconds * self.fps)
        pre, post = round(self.pre_s * self.fps), round(self.post_s * self.fps)
        name = identity_name(self.photo)
        for k, event in enumerate(animator.events_between(0, n_frames)):
            start, stop = event.onset - pre, event.offset + post + 1
            if event.kind != "micro" or start < 0 or stop > n_frames:
                continue
            frames = [animator.render(i) for i in range(start, stop)]
            yield Clip(
                frames,
                self.fps,
                event.emotion,
                pre,
                event.offset - start,
                name,
                f"{name}/{self.seed}/{k}",
                apex=event.apex - start,
            )


def injected_clips(path: str | Path, config: InjectionConfig | None = None) -> Iterator[Clip]:
    """The clips of ``stream.synthetic.injected.inject`` (real video, injected truth)."""
    return (Clip.from_injected(item.clip) for item in inject(path, config))


def identity_name(photo: str | None) -> str:
    return "astronaut" if photo is None else photo.rsplit("/", 1)[-1]


def protector_faces(clip: Clip) -> list[AlignedFace]:
    """The protector's own tracking of the clean frames (it places the sticker)."""
    tracker = FaceTracker()
    faces = []
    for i, image in enumerate(clip.frames):
        t_s = i / clip.fps
        face = tracker.update(image, i, round(t_s * 1e9), t_s)
        faces.append(detached(face))
    return faces


def detached(face: AlignedFace) -> AlignedFace:
    """A copy that keeps no reference to the tracker's reused buffers (no aligned pixels)."""
    copy = None if face.landmarks is None else face.landmarks.copy()
    transform = None if face.transform is None else face.transform.copy()
    return dataclasses.replace(face, face=None, landmarks=copy, transform=transform)


def protect(
    clip: Clip,
    faces: Sequence[AlignedFace],
    sticker: Sticker,
    region: str,
    overlay_s: list[float] | None = None,
) -> Clip:
    """A copy of the clip with the sticker on ``region`` of every frame with a face;
    ``overlay_s`` collects the seconds each frame's sticker took (placement, warp, blend)."""
    placer = StickerPlacer(sticker, region)
    frames, placements = [], []
    for image, face in zip(clip.frames, faces, strict=True):
        out = image.copy()
        t0 = time.perf_counter()
        placer.apply(out, face)
        if overlay_s is not None:
            overlay_s.append(time.perf_counter() - t0)
        frames.append(out)
        placements.append(placer.last)
    cache = None
    if clip.cache is not None:
        cache = clip.cache.with_name(f"{clip.cache.stem}_{sticker.name}_{region}.npz")
    return Clip(
        frames,
        clip.fps,
        clip.emotion,
        clip.onset,
        clip.offset,
        clip.identity,
        clip.clip_id,
        placements,
        cache,
        apex=clip.apex,
    )


@dataclass(frozen=True)
class Query:
    """One recognizer query: which clip, which condition, what came out."""

    recognizer: str
    clip_id: str
    identity: str
    truth: str
    condition: str  # "none" | "causal" | "random"
    design: str  # "" for no sticker
    region: str  # "" for no sticker
    placement_k: int  # index of the random placement (0 for causal / none)
    prediction: str
    area_fraction: float


def attack_success(clean: Sequence[Query], attacked: Sequence[Query]) -> tuple[float, int]:
    """(share of the clips correct without a sticker that are wrong with it, how many were
    correct without it). ``attacked`` holds one query per clip of one condition."""
    correct = {q.clip_id for q in clean if q.prediction == q.truth}
    flipped = sum(q.prediction != q.truth for q in attacked if q.clip_id in correct)
    return (flipped / len(correct) if correct else float("nan")), len(correct)
