"""The suite's real clips: held-out fixture videos and every corpus clip marked ``validation``.

Never a training clip: ``HELD_OUT_VIDEOS`` are outside every training and validation set of
the shipped weights (``engines/weights/manifest.json``), and the corpus's ``split`` column
(``../shared/fixtures/corpus/manifest.csv``) keeps its ``validation`` clips out of training;
``tests/benchmarks/test_suite.py`` checks both against the weights' manifest.

Each clip is made twice, with the same H.264 round trip (``stream.datasets.real``):
- **injected**: micro-expressions injected into the real video at random positions (a gap of
  1.8–4 s between onsets), one file per seed (``SUITE_SEEDS``), with amplitudes spread over
  about 0.5–4 px on a face with 90 px between the eye centres (``AMPLITUDE_200`` is the same
  range at a 200 px face box: the box is ≈ 2.5 inter-ocular distances high, so 90 px between
  the eyes is a ≈ 224 px box);
- **calm**: four more seeds whose expressions sit where the plain clip shows no speaking and
  no head motion from 0.5 s before to 0.5 s after them (``labels.calm_onsets``): the lab
  condition of micro-expression data sets, rare in talking video;
- **plain**: nothing injected; every event there is false, and its equal-length windows are
  the negatives of the detectability AUCs.

A clip that cannot be used (missing, no face, too short to inject into) costs only itself:
one ``warning:`` line, and the rest of the suite is made.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from stream.datasets.corpus import corpus_paths, stderr_warning
from stream.datasets.featurize import fixtures_dir
from stream.datasets.real import make_real_set
from stream.datasets.recipe import HELD_OUT_VIDEOS
from stream.errors import MexliveError

SUITE_SEEDS = (900, 901, 902)  # injection seeds of the suite; training uses < 900
CALM_SEEDS = (903, 904, 905, 906)  # the same, placed in the calm stretches of each video
AMPLITUDE_200 = (0.45, 3.6)  # px at a 200 px face box ≈ 0.5–4 px at 90 px inter-ocular
Warn = Callable[[str], None]


def suite_videos(fixtures: Path | None = None, warn: Warn | None = None) -> list[str]:
    """Paths of the suite's real videos: the held-out fixture videos, then the corpus's
    validation clips (a listed file that is missing is a warning, not an error)."""
    warn = warn or stderr_warning
    root = fixtures or fixtures_dir()
    videos = []
    for name in HELD_OUT_VIDEOS:
        path = root / "videos" / name
        if path.is_file():
            videos.append(str(path))
        else:
            warn(f"held-out video {path} is missing")
    videos += corpus_paths("validation", root, warn)
    return videos


def build_real_sets(
    injected: Path,
    plain: Path,
    workers: int = 2,
    progress: bool = True,
    fixtures: Path | None = None,
    warn: Warn | None = None,
) -> tuple[list[Path], list[Path]]:
    """Make the injected and plain feature files (each clip that is not made yet).

    Returns (injected .npz paths, plain .npz paths) that exist. Raises MexliveError only when
    nothing usable is left.
    """
    warn = warn or stderr_warning
    videos = suite_videos(fixtures, warn)
    if not videos:
        raise MexliveError("no real video for the suite: neither held-out fixtures nor corpus")
    common = dict(workers=workers, progress=progress, keep_going=True, warn=warn)
    todo = [v for v in videos if not (plain / f"{Path(v).stem}_plain.npz").is_file()]
    if todo:
        make_real_set(plain, todo, plain=True, **common)
    for seed in SUITE_SEEDS:
        todo = [v for v in videos if not (injected / f"{Path(v).stem}_s{seed}.npz").is_file()]
        todo = [v for v in todo if not _known_unusable(injected, v, seed)]
        if todo:
            made = make_real_set(injected, todo, seeds=[seed], amplitude_px=AMPLITUDE_200, **common)
            _remember_unusable(injected, todo, made, seed)
    _build_calm(injected, plain, videos, common)
    plain_files = sorted(plain.glob("*_plain.npz"))
    injected_files = sorted(
        p for p in injected.glob("*_s*.npz") if (plain / f"{_stem(p)}_plain.npz").is_file()
    )
    if not injected_files or not plain_files:
        raise MexliveError(
            f"nothing usable left for the suite's real rows ({len(injected_files)} injected, "
            f"{len(plain_files)} plain files)"
        )
    return injected_files, plain_files


def _build_calm(injected: Path, plain: Path, videos: list[str], common: dict) -> None:
    """The calm seeds: onsets from each plain clip's context (videos without a calm stretch
    are left out)."""
    from benchmarks.suite.labels import calm_onsets, face_context
    from benchmarks.suite.stages import SuiteClip

    onsets = {}
    for video in videos:
        path = plain / f"{Path(video).stem}_plain.npz"
        if path.is_file():
            clip = SuiteClip.load(path)
            context = face_context(clip.landmarks_px, clip.valid, clip.fps)
            at = calm_onsets(context, clip.valid, clip.fps)
            if at:
                onsets[video] = at
    for seed in CALM_SEEDS:
        todo = {
            v: at
            for v, at in onsets.items()
            if not (injected / f"{Path(v).stem}_s{seed}.npz").is_file()
            and not _known_unusable(injected, v, seed)
        }
        if todo:
            made = make_real_set(
                injected,
                list(todo),
                seeds=[seed],
                amplitude_px=AMPLITUDE_200,
                onsets=todo,
                **common,
            )
            _remember_unusable(injected, list(todo), made, seed)


def _stem(path: Path) -> str:
    """The video stem of an injected file ``<stem>_s<seed>.npz``."""
    return path.stem.rsplit("_s", 1)[0]


def _known_unusable(folder: Path, video: str, seed: int) -> bool:
    """A (video, seed) that was tried and gave nothing (too short, no face): not retried."""
    return (folder / f"{Path(video).stem}_s{seed}.unusable").is_file()


def _remember_unusable(folder: Path, tried: list[str], made: list[Path], seed: int) -> None:
    names = {p.name for p in made}
    folder.mkdir(parents=True, exist_ok=True)
    for video in tried:
        stem = Path(video).stem
        if f"{stem}_s{seed}.npz" not in names:
            (folder / f"{stem}_s{seed}.unusable").write_text("no event could be made\n")
