"""What a training run was made of, for the weights' manifest; and the held-out check.

A number measured only on data shaped like the training data is not evidence, so the manifest
says what the data was: identities, how each clip was made (deformation family, or a real
video with injected expressions or with nothing injected), frame rates, minutes, seeds and
truth counts, per split. ``check_held_out`` refuses a training set that touches a video or
photo named as held out for the cross-domain suite.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from engines.errors import DataError
from engines.train.data import Clip


def composition(train: Sequence[Clip], val: Sequence[Clip]) -> dict[str, Any]:
    """Per split: clips, identities, families, frame rates, minutes, seeds, truth counts."""
    return {"train": _split(train), "validation": _split(val)}


def _split(clips: Sequence[Clip]) -> dict[str, Any]:
    minutes: Counter[str] = Counter()
    for clip in clips:
        minutes[clip.family] += clip.length / clip.fps / 60
    kinds = Counter(t.kind for c in clips for t in c.truth)
    return {
        "clips": len(clips),
        "identities": sorted({c.identity for c in clips}),
        "families": dict(sorted(Counter(c.family for c in clips).items())),
        "minutes_by_family": {k: round(v, 2) for k, v in sorted(minutes.items())},
        "minutes": round(sum(minutes.values()), 2),
        "fps": sorted({round(c.fps, 3) for c in clips}),
        "seeds": sorted({c.seed for c in clips}),
        "truth": dict(sorted(kinds.items())),
        "plain_real_clips": sum(1 for c in clips if c.family == "real" and not c.truth),
    }


def check_held_out(clips: Sequence[Clip], held_out: Sequence[str]) -> None:
    """DataError when a clip's identity names a held-out video or photo (``st_rd34.mp4``
    also matches the identity ``st_rd34.mp4@1.5``, a frame of it used as a photo)."""
    for clip in clips:
        for name in held_out:
            if clip.identity == name or clip.identity.startswith(name + "@"):
                raise DataError(
                    f"{clip.path}: identity {clip.identity!r} is held out for the "
                    "cross-domain suite: it may not be trained on"
                )
