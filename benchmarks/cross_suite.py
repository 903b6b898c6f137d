"""The cross-domain spotting suite: data that differs from the training data as the world does.

Three kinds of set, none of them seen by training, validation or any choice of a setting
(``engines/weights/manifest.json`` names the held-out videos and photos, and
``python -m engines.train`` refuses a training set that touches one):

- **another deformation family**: synthetic faces animated by landmark-anchored Gaussian
  kernels (``stream/synthetic/deform.py``, "kernel"), a family no training clip was made with,
  on held-out identities (a held-out photo and frames of the held-out videos), at 25, 30, 60,
  100 and 200 fps, through H.264;
- **micro-expressions injected into held-out real videos** (``benchmarks/suite/clips.py``: the
  held-out fixture videos and every corpus clip marked ``validation``, three seeds each):
  real talking, blinks and head motion around them;
- **the same real videos with nothing injected**: every event there is false; reported as
  false events per minute.

``build_suite`` makes the feature files once into a cache folder (minutes on two cores);
``benchmarks.bench_spotting --suite cross`` scores both spotters on them in one run.
Synthetic data is a proxy, not CASME II.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from stream.datasets.recipe import HELD_OUT_FAMILY, HELD_OUT_PHOTOS

# Identities of the synthetic sets: the held-out photo and one frame of each held-out video.
HELD_OUT_FACES = (
    *HELD_OUT_PHOTOS,
    "st_rd34.mp4@2.0",
    "st_wda_em.mp4@2.0",
    "vr_2.mp4@1.0",
    "lp_d5.mp4@1.0",
)
SUITE_SEED = 900  # data seeds of the suite; training uses < 900
# (fps, clips, seconds) of the kernel-family sets
SYNTHETIC_RATES = (
    (25.0, 5, 20.0),
    (30.0, 5, 20.0),
    (60.0, 5, 15.0),
    (100.0, 3, 12.0),
    (200.0, 2, 10.0),
)


@dataclass(frozen=True)
class SuiteSet:
    """One row group of the table: a folder of feature files and what it measures."""

    name: str
    folder: Path
    plain: bool = False  # real video with nothing injected: false alarms per minute


def suite_sets(root: str | Path) -> list[SuiteSet]:
    """The suite's sets under ``root``, in table order."""
    root = Path(root)
    sets = [
        SuiteSet(f"{HELD_OUT_FAMILY} family, held-out faces, {fps:g} fps", root / f"kernel_{fps:g}")
        for fps, _, _ in SYNTHETIC_RATES
    ]
    # "real2": the larger real rows (fixtures + corpus validation clips, with landmarks)
    sets.append(SuiteSet("injected into held-out real video", root / "real2_injected"))
    sets.append(SuiteSet("held-out real video, nothing injected", root / "real2_plain", True))
    return sets


def build_suite(
    root: str | Path, workers: int = 2, progress: bool = True, synthetic: bool = True
) -> list[SuiteSet]:
    """Make every set that is not complete yet (a ``.done`` stamp marks a finished one);
    ``synthetic`` False: only the real rows (the returned list holds only those)."""
    from benchmarks.suite.clips import build_real_sets
    from stream.datasets.features import make_feature_set

    sets = suite_sets(root)
    for k, (fps, count, seconds) in enumerate(SYNTHETIC_RATES):
        target = sets[k].folder
        if not synthetic:
            continue
        if _done(target):
            continue
        _say(progress, f"suite: {sets[k].name}: {count} clips of {seconds:g} s")
        make_feature_set(
            target,
            count,
            seconds,
            fps=fps,
            seed=SUITE_SEED + k,
            photos=list(HELD_OUT_FACES),
            workers=workers,
            progress=progress,
            synthetic={"deformation": HELD_OUT_FAMILY, "micro_per_min": 8.0, "macro_per_min": 2.0},
        )
        _stamp(target)
    # the real rows keep no stamp: each (video, seed) file is made once, and a rerun makes
    # only what is missing (a clip added to the corpus's validation split, say)
    _say(progress, f"suite: {sets[-2].name} and {sets[-1].name}")
    build_real_sets(sets[-2].folder, sets[-1].folder, workers=workers, progress=progress)
    return sets if synthetic else sets[-2:]


def _done(folder: Path) -> bool:
    return (folder / ".done").is_file()


def _stamp(folder: Path) -> None:
    (folder / ".done").write_text("complete\n")


def _say(progress: bool, line: str) -> None:
    if progress:
        print(line, file=sys.stderr, flush=True)


# ---- the table ---------------------------------------------------------------------------------


@dataclass
class Counts:
    """MEGC counts of one spotter on one set, summed over its clips."""

    tp: dict[str, int]
    fp: dict[str, int]
    fn: dict[str, int]
    minutes: float
    clips: int

    def f1(self, kind: str) -> float:
        tp, fp, fn = self.tp[kind], self.fp[kind], self.fn[kind]
        return 2 * tp / max(2 * tp + fp + fn, 1) if tp + fp + fn else float("nan")

    def recall(self, kind: str) -> float:
        tp, fn = self.tp[kind], self.fn[kind]
        return tp / (tp + fn) if tp + fn else float("nan")

    def per_min(self, kind: str) -> float:
        return self.fp[kind] / self.minutes if self.minutes else float("nan")

    def __add__(self, other: Counts) -> Counts:
        add = lambda a, b: {k: a[k] + b[k] for k in a}  # noqa: E731
        return Counts(
            add(self.tp, other.tp),
            add(self.fp, other.fp),
            add(self.fn, other.fn),
            self.minutes + other.minutes,
            self.clips + other.clips,
        )


def pool(counts: list[Counts]) -> Counts:
    """Counts summed over sets (MEGC sums counts before F1)."""
    total = counts[0]
    for more in counts[1:]:
        total = total + more
    return total


def count(results) -> Counts:
    """(clip, spotted intervals) pairs → MEGC counts per kind (IoU ≥ 0.5)."""
    from engines.eval.metrics import spotting_matches

    tp, fp, fn = ({"micro": 0, "macro": 0} for _ in range(3))
    minutes = 0.0
    for clip, events in results:
        minutes += clip.length / clip.fps / 60
        for kind in tp:
            pred = [(e.onset_seq, e.offset_seq) for e in events if e.kind == kind]
            truth = [(t.onset, t.offset) for t in clip.truth if t.kind == kind]
            matched = len(spotting_matches(pred, truth))
            tp[kind] += matched
            fp[kind] += len(pred) - matched
            fn[kind] += len(truth) - matched
    return Counts(tp, fp, fn, minutes, len(results))


def _f(value: float) -> str:
    return "–" if value != value else f"{value:.2f}"


def table_rows(name: str, spotter: str, c: Counts, plain: bool) -> str:
    """One markdown row: counts per kind so one clip's weight is visible."""
    micro = f"{c.tp['micro']}/{c.fp['micro']}/{c.fn['micro']}"
    macro = f"{c.tp['macro']}/{c.fp['macro']}/{c.fn['macro']}"
    false_min = f"{c.per_min('micro'):.1f} / {c.per_min('macro'):.1f}" if plain else ""
    cells = (
        name,
        spotter,
        str(c.clips),
        f"{c.minutes:.1f}",
        micro,
        _f(c.f1("micro")),
        _f(c.recall("micro")),
        macro,
        _f(c.f1("macro")),
        false_min,
    )
    return "| " + " | ".join(cells) + " |"


TABLE_HEAD = (
    "| set | spotter | clips | min | micro TP/FP/FN | micro F1 | micro recall | "
    "macro TP/FP/FN | macro F1 | false micro / macro per min |\n"
    "|---|---|---|---|---|---|---|---|---|---|"
)
