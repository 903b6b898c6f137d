"""Feature files → per-clip tensors for the spotter; identity splits.

Reads the .npz files that ``stream.datasets.features`` (or ``mexlive --dump-features`` on a
synthetic
source) writes: ``values (L, F)``, ``valid (L,)``, ``names (F,)``, ``fps`` and the truth rows
``truth_onset / truth_apex / truth_offset / truth_kind / truth_emotion``, plus ``identity`` and
``seed`` when present. Micro- and macro-expressions become spotting targets
(``engines.models.spotter.targets``); blinks stay out of the targets (the model learns to ignore
them).

Rows that are not valid (no face yet, face lost) are gaps: the live spotter resets its state
there, so `valid_runs` gives the stretches a model may be run over without a reset.

Example:
    clips = load_clips("/tmp/mexlive_data/train")
    train, val = split_by_identity(clips, val_identities=["tpsmm_source.png"])
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from engines.errors import DataError
from engines.labels import EMOTIONS, KINDS
from engines.models.spotter import IGNORE, Interval, SpotterTargets, targets

REQUIRED = (
    "values",
    "valid",
    "names",
    "fps",
    "truth_onset",
    "truth_apex",
    "truth_offset",
    "truth_kind",
    "truth_emotion",
)

NODE_ARRAYS = ("node_residual", "node_valid", "landmarks_px")


@dataclass(frozen=True)
class TruthInterval:
    """One micro/macro truth row: inclusive frames, kind and emotion as names."""

    onset: int
    apex: int
    offset: int
    kind: str  # "micro" | "macro"
    emotion: str  # one of EMOTIONS, or "" when unknown


@dataclass
class Clip:
    """One clip's tensors and truth.

    Attributes:
        x: (L, F) float32 feature rows (zeros where not valid).
        valid: (L,) bool.
        target: per-frame targets from the micro/macro truth (blinks excluded).
        truth: the micro/macro truth rows; blinks: how many blink rows the file held.
    """

    path: Path
    identity: str
    seed: int
    fps: float
    names: tuple[str, ...]
    x: Tensor  # (L, F)
    valid: Tensor  # (L,) bool
    target: SpotterTargets
    truth: list[TruthInterval]
    blinks: int
    source: dict = dataclasses.field(default_factory=dict)  # the file's "synthetic" JSON
    # the node front end's arrays when the file has them (node_residual (L, O, N, 2),
    # node_valid (L, O), landmarks_px (L, 68, 2)): what the node spotter's input is made of
    nodes: dict[str, np.ndarray] | None = None

    @property
    def family(self) -> str:
        """What made the clip: "real" (a real video, maybe with injections) or the
        deformation family of a synthetic face ("tps" when the file does not say)."""
        if self.source.get("background") == "real":
            return "real"
        return str(self.source.get("deformation", "tps"))

    @property
    def length(self) -> int:
        return self.x.shape[0]

    def intervals(self) -> list[Interval]:
        """The truth as `engines.models.spotter.Interval`s (kind and emotion indices)."""
        return [_interval(t) for t in self.truth]


def _interval(t: TruthInterval) -> Interval:
    emotion = EMOTIONS.index(t.emotion) if t.emotion in EMOTIONS else IGNORE
    return Interval(t.onset, t.apex, t.offset, KINDS.index(t.kind), emotion)


def load_clip(path: str | Path, expected_names: Sequence[str] | None = None) -> Clip:
    """One .npz feature file → `Clip`. Raises DataError naming the file on any problem."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [key for key in REQUIRED if key not in data.files]
            if missing:
                raise DataError(f"{path}: not a feature file, missing {', '.join(missing)}")
            arrays = {key: data[key] for key in data.files}
    except DataError:
        raise
    except Exception as exc:  # an untrusted file: zipfile and the .npy header parser raise
        # many kinds (BadZipFile, NotImplementedError, tokenize.TokenError, ...)
        raise DataError(f"{path}: cannot read ({type(exc).__name__}: {exc})") from None
    values, valid, names = arrays["values"], arrays["valid"], arrays["names"]
    names = tuple(str(n) for n in names.tolist())
    if values.ndim != 2 or values.shape[1] != len(names):
        raise DataError(
            f"{path}: values have shape {values.shape} but the file names {len(names)} features"
        )
    if valid.shape != (values.shape[0],):
        raise DataError(f"{path}: valid has shape {valid.shape}, values {values.shape}")
    if expected_names is not None and names != tuple(expected_names):
        raise DataError(
            f"{path}: its {len(names)} feature names differ from the expected "
            f"{len(expected_names)} (another feature layout: regenerate the data)"
        )
    fps = float(arrays["fps"]) if arrays["fps"].size == 1 else float("nan")
    if not np.isfinite(fps) or fps <= 0:
        raise DataError(f"{path}: fps is {arrays['fps']}; the truth needs a frame rate")
    length = values.shape[0]
    columns = [arrays[k].reshape(-1).tolist() for k in REQUIRED[4:]]
    if len({len(c) for c in columns}) != 1:
        sizes = ", ".join(f"{k} {len(c)}" for k, c in zip(REQUIRED[4:], columns, strict=True))
        raise DataError(
            f"{path}: truth row {min(map(len, columns))}: the truth columns have "
            f"different lengths ({sizes})"
        )
    truth, blinks = [], 0
    for row, (onset, apex, offset, kind, emotion) in enumerate(zip(*columns, strict=True)):
        if kind == "blink":
            blinks += 1
            continue
        if kind not in KINDS:
            raise DataError(f"{path}: truth row {row}: unknown truth kind {kind!r}")
        if not 0 <= onset <= apex <= offset or onset >= length:
            raise DataError(
                f"{path}: truth row {row}: bad frames {(onset, apex, offset)} for {length} frames"
            )
        truth.append(TruthInterval(int(onset), int(apex), int(offset), kind, str(emotion)))
    try:
        x = torch.from_numpy(np.nan_to_num(values.astype(np.float32)))  # (L, F)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{path}: values are not numbers ({values.dtype}: {exc})") from None
    x[~torch.from_numpy(valid.astype(bool))] = 0.0
    return Clip(
        path=path,
        identity=str(arrays["identity"]) if "identity" in arrays else path.stem,
        seed=int(arrays["seed"]) if "seed" in arrays else -1,
        fps=fps,
        names=names,
        x=x,
        valid=torch.from_numpy(valid.astype(bool)),  # (L,)
        target=targets([_interval(t) for t in truth], length),
        truth=truth,
        blinks=blinks,
        source=_source(arrays),
        nodes={k: arrays[k] for k in NODE_ARRAYS}
        if all(k in arrays for k in NODE_ARRAYS)
        else None,
    )


def _source(arrays: dict[str, np.ndarray]) -> dict:
    """The ``synthetic`` JSON of a feature file as a dict ({} when absent or unreadable)."""
    import json

    try:
        value = json.loads(str(arrays["synthetic"])) if "synthetic" in arrays else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def as_motion_input(clip: Clip) -> Clip:
    """The clip with its rows turned into the learned spotter's input (``engines/inputs.py``:
    the person's running noise and the classic's score), frame by frame as live; frame i at
    i / fps s, as the feature sets were made. Raises DataError when the layout lacks the
    channels that input needs (feature files of an older layout: regenerate them)."""
    from engines.inputs import input_names, spotter_inputs

    t_s = np.arange(clip.length) / clip.fps
    try:
        rows = spotter_inputs(clip.x.numpy(), clip.valid.numpy(), t_s, clip.names)
    except ValueError as exc:
        raise DataError(f"{clip.path}: {exc} (regenerate the feature files)") from None
    return dataclasses.replace(clip, x=torch.from_numpy(rows), names=input_names(clip.names))


def as_node_input(clip: Clip) -> Clip:
    """The clip with its rows turned into the node spotter's input (``engines/node_inputs.py``),
    frame by frame as live, frame i at i / fps s. Raises DataError for a file made before the
    node front end (no node arrays: regenerate it)."""
    from engines.node_inputs import node_input_names, node_inputs

    if clip.nodes is None:
        raise DataError(
            f"{clip.path}: no node arrays (node_residual, node_valid, landmarks_px): made "
            "before the node front end; regenerate it (python -m stream.datasets.recipe)"
        )
    t_s = np.arange(clip.length) / clip.fps
    residual = clip.nodes["node_residual"].astype(np.float32)
    rows, _ = node_inputs(
        residual, clip.nodes["node_valid"], clip.nodes["landmarks_px"], clip.valid.numpy(), t_s
    )
    return dataclasses.replace(clip, x=torch.from_numpy(rows), names=node_input_names())


def load_clips(folder: str | Path, expected_names: Sequence[str] | None = None) -> list[Clip]:
    """Every ``*.npz`` in ``folder`` and its subfolders (sorted by path), all with the same
    feature names (``python -m stream.datasets.recipe`` writes one subfolder per set).

    Raises DataError for a missing or empty folder, a bad file, or mixed feature layouts.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder")
    paths = sorted(folder.rglob("*.npz"))
    if not paths:
        others = sum(1 for p in folder.iterdir() if p.is_file())
        raise DataError(
            f"{folder}: no .npz feature files"
            + (f" (only {others} other file(s))" if others else " (empty)")
            + "; python -m stream.datasets.features writes them"
        )
    clips: list[Clip] = []
    for path in paths:
        clip = load_clip(path, expected_names)
        if expected_names is None:
            expected_names = clip.names
        clips.append(clip)
    return clips


def validation_clips(clips: Sequence[Clip], val_identities: Sequence[str]) -> list[Clip]:
    """The clips whose identity is in ``val_identities``. Raises DataError when a named
    identity has no clip."""
    present = {c.identity for c in clips}
    unknown = sorted(set(val_identities) - present)
    if unknown:
        raise DataError(f"validation identities {unknown} not in the data ({sorted(present)})")
    return [c for c in clips if c.identity in set(val_identities)]


def split_by_identity(
    clips: Sequence[Clip], val_identities: Sequence[str]
) -> tuple[list[Clip], list[Clip]]:
    """(train, val): clips whose identity is in ``val_identities`` go to val, the rest to train.

    Raises DataError when a named identity has no clip or a side ends up empty.
    """
    val = validation_clips(clips, val_identities)
    train = [c for c in clips if c.identity not in set(val_identities)]
    if not train:
        raise DataError("every clip is a validation identity: nothing left to train on")
    return train, val


def feature_stats(clips: Sequence[Clip]) -> tuple[Tensor, Tensor]:
    """Per-feature mean and std (F,) over the valid rows of ``clips`` (float64 sums)."""
    rows = torch.cat([c.x[c.valid] for c in clips]).double()  # (N, F)
    if rows.shape[0] < 2:
        raise DataError("fewer than 2 valid feature rows: cannot normalise")
    return rows.mean(0).float(), rows.std(0).float()


def valid_runs(valid: Tensor, min_length: int = 1) -> list[tuple[int, int]]:
    """[start, stop) stretches of consecutive valid rows, at least ``min_length`` long."""
    v = valid.to(torch.int8).tolist()
    runs, start = [], None
    for i, ok in enumerate([*v, 0]):
        if ok and start is None:
            start = i
        elif not ok and start is not None:
            if i - start >= min_length:
                runs.append((start, i))
            start = None
    return runs
