"""Flow-stack files (``python -m stream.datasets.stacks``) → tensors for the recognizer.

Each ``clip_XXXX.npz`` holds N stacks: flow (N, 2, T, S, S) float16 in aligned-face px, the ROI
mask (N, S, S), emotion and kind names, AU flags over ``au_names``, the expression's index in
the clip (``event``) and the interval variant (0 = the true one), plus the clip's ``identity``
and animator ``seed``. Engines never import stream: the file layout is the contract.

Example:
    train = load_stacks(["/tmp/rec_data/train"], exclude={"tpsmm_source.png"})
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from engines.labels import EMOTIONS
from engines.train.data import DataError

REQUIRED = ("flow", "mask", "emotion", "aus", "au_names", "event", "variant", "identity", "seed")


@dataclass
class StackSet:
    """Stacks of some clips. flow (N, 2, T, S, S) and mask (N, S, S) float16; emotion (N,)
    index into EMOTIONS; aus (N, A) float; group (N,) one id per expression; variant (N,)."""

    flow: torch.Tensor
    mask: torch.Tensor
    emotion: torch.Tensor
    aus: torch.Tensor
    group: torch.Tensor
    variant: torch.Tensor
    identities: list[str]  # per clip
    seeds: list[int]  # per clip
    au_names: list[int]

    def __len__(self) -> int:
        return len(self.emotion)

    def subset(self, rows: np.ndarray) -> StackSet:
        index = torch.from_numpy(rows)
        return StackSet(
            self.flow[index],
            self.mask[index],
            self.emotion[index],
            self.aus[index],
            self.group[index],
            self.variant[index],
            self.identities,
            self.seeds,
            self.au_names,
        )


def load_stacks(
    folders: Sequence[str | Path],
    identities: set[str] | None = None,
    exclude: set[str] | None = None,
) -> StackSet:
    """Read every clip file of ``folders`` (only ``identities`` when given, none of
    ``exclude``). Raises DataError naming a bad file or an empty selection."""
    parts: dict[str, list] = {k: [] for k in ("flow", "mask", "emotion", "aus", "group", "variant")}
    ids, seeds, au_names, n_groups = [], [], None, 0
    files = [p for folder in folders for p in _clip_files(folder)]
    for path in files:
        try:
            with np.load(path) as z:
                missing = [k for k in REQUIRED if k not in z.files]
                if missing:
                    raise DataError(f"{path}: not a recognizer stack file (missing {missing})")
                identity = str(z["identity"])
                if (identities is not None and identity not in identities) or (
                    exclude and identity in exclude
                ):
                    continue
                names = [int(a) for a in z["au_names"]]
                if au_names is not None and names != au_names:
                    raise DataError(f"{path}: AU list {names} differs from {au_names}")
                au_names = names
                unknown = set(z["emotion"].tolist()) - set(EMOTIONS)
                if unknown:
                    raise DataError(f"{path}: unknown emotion(s) {sorted(unknown)}")
                shape = z["flow"].shape[1:]  # (2, T, S, S)
                if parts["flow"] and shape != parts["flow"][0].shape[1:]:
                    raise DataError(
                        f"{path}: stacks of shape {shape}, not {parts['flow'][0].shape[1:]}"
                    )
                parts["flow"].append(z["flow"].astype(np.float16))
                parts["mask"].append(z["mask"].astype(np.float16))
                parts["emotion"].append(np.array([EMOTIONS.index(e) for e in z["emotion"]]))
                parts["aus"].append(z["aus"].astype(np.float32))
                parts["group"].append(z["event"].astype(np.int64) + n_groups)
                parts["variant"].append(z["variant"].astype(np.int64))
                n_groups += int(z["event"].max()) + 1 if len(z["event"]) else 0
                ids.append(identity)
                seeds.append(int(z["seed"]))
        except (OSError, ValueError, KeyError) as exc:
            raise DataError(f"{path}: unreadable ({exc})") from None
    if not ids or not sum(len(e) for e in parts["emotion"]):
        raise DataError(f"no stacks in {', '.join(map(str, folders))} for this selection")
    tensors = {k: torch.from_numpy(np.concatenate(v)) for k, v in parts.items()}
    return StackSet(
        tensors["flow"],
        tensors["mask"],
        tensors["emotion"].long(),
        tensors["aus"],
        tensors["group"],
        tensors["variant"],
        ids,
        seeds,
        au_names or [],
    )


def _clip_files(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder} is not a folder")
    return sorted(folder.glob("clip_*.npz"))
