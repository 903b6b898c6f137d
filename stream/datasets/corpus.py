"""The real-face corpus (``../shared/fixtures/corpus/``): its manifest and its split.

``manifest.csv`` names every clip with a ``split`` column: ``train`` clips may feed training
(``stream.datasets.recipe``); ``validation`` clips are the detectability suite's and must never
be trained on (``check_training_videos``).
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from stream.datasets.featurize import fixtures_dir
from stream.errors import MexliveError

CORPUS = "corpus"
Warn = Callable[[str], None]


def stderr_warning(line: str) -> None:
    print(f"warning: {line}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class CorpusClip:
    """One row of the corpus manifest."""

    file: str
    split: str  # "train" | "validation"
    seconds: float
    content: str
    pixels: int = 0  # width × height (0: not listed)


def corpus_manifest(fixtures: Path | None = None, warn: Warn | None = None) -> list[CorpusClip]:
    """The rows of ``corpus/manifest.csv``; [] (and one warning) when the corpus is missing."""
    warn = warn or stderr_warning
    folder = (fixtures or fixtures_dir()) / CORPUS
    manifest = folder / "manifest.csv"
    if not manifest.is_file():
        warn(f"no corpus at {folder} (manifest.csv missing)")
        return []
    with manifest.open(newline="") as f:
        rows = list(csv.DictReader(f))
    return [
        CorpusClip(
            r["file"],
            r["split"],
            float(r.get("seconds") or 0),
            r.get("content", ""),
            int(r.get("width") or 0) * int(r.get("height") or 0),
        )
        for r in rows
    ]


def corpus_paths(
    split: str,
    fixtures: Path | None = None,
    warn: Warn | None = None,
    max_pixels: int | None = None,
    min_pixels: int = 0,
) -> list[str]:
    """Paths of the corpus clips of one split (and frame size, width × height, within
    ``min_pixels``–``max_pixels``); a listed file that is missing is a warning."""
    warn = warn or stderr_warning
    root = fixtures or fixtures_dir()
    paths = []
    for clip in corpus_manifest(root, warn):
        if clip.split != split or clip.pixels < min_pixels:
            continue
        if max_pixels is not None and clip.pixels > max_pixels:
            continue
        path = root / CORPUS / clip.file
        if path.is_file():
            paths.append(str(path))
        else:
            warn(f"corpus clip {path} is listed but missing")
    return paths


def check_training_videos(
    videos: Iterable[str], held_out: Iterable[str], fixtures: Path | None = None
) -> None:
    """Refuse a training list that names a held-out video or a corpus validation clip.

    Raises MexliveError naming every such video (matched by file name).
    """
    forbidden = {Path(v).name for v in held_out}
    forbidden |= {
        c.file for c in corpus_manifest(fixtures, warn=lambda _: None) if c.split != "train"
    }
    bad = sorted({Path(v).name for v in videos} & forbidden)
    if bad:
        raise MexliveError(
            f"the training list names held-out or validation clips: {', '.join(bad)} "
            "(they are the suite's; remove them)"
        )
