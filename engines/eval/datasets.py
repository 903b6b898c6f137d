"""Readers for the published layouts of the licensed micro-expression datasets.

mexlive never ships these datasets; it reads them where a user has them. Each reader
(``engines/eval/readers.py``; tables and frame folders in ``engines/eval/layouts.py``) returns
``(annotations, problems)``: bad rows are skipped and reported with their line number, the rest
kept. Frame numbers stay as the annotation file writes them, which is the number in the image
file names (1-based except CAS(ME)^3, whose jpg names count from 0).

Usage:
    python -m engines.eval.datasets casme2 /data/CASME2/CASME2_RAW_selected CASME2-coding.csv
    anns, problems = read_samm("/data/SAMM", "/data/SAMM_Micro_FACS_Codes_v2.csv")
    for test_subject, train, test in loso_splits(anns): ...

What each reader expects (sources: public code that parses these files, cited by repository):

- ``casme2`` CASME II. Frames ``<root>/subNN/EPxx_yy[f]/img<N>.jpg`` (CASME2-RAW,
  CASME2_RAW_selected; Cropped uses ``reg_img<N>.jpg``; the root may be a folder above).
  Table CASME2-coding-20140508.xlsx: Subject (1 → sub01), Filename, OnsetFrame, ApexFrame,
  OffsetFrame, Action Units, Estimated Emotion; an ApexFrame of "/" (sub04/EP12_01f) is kept
  with no apex. Emotions: happiness → positive; disgust, repression, sadness, fear → negative;
  surprise → surprise; others → none. MEGC 2019's composite negative class includes fear and
  sadness (per its paper); several baselines drop them instead (pass ``emotions=`` to do so).
- ``samm`` SAMM. Frames ``<root>/006/006_1_2/006_05562.jpg`` (subject_frame number). Table
  SAMM_Micro_FACS_Codes_v2.xlsx: title rows, then a header (row 13 or 14 in the copies seen)
  with Subject, Filename, Onset Frame, Apex Frame, Offset Frame, Action Units, Estimated
  Emotion, Objective Classes among others; order and title rows differ between releases, so
  the header is matched by name. Emotions: Happiness → positive; Anger, Contempt, Disgust,
  Fear, Sadness → negative; Surprise → surprise; Other → none. Known coder slips (apex outside
  onset..offset, e.g. 028_4_1, 032_3_1) are kept and noted.
- ``samm-lv`` SAMM Long Videos. Frames ``<root>/SAMM_longvideos/006_1/006_1_0001.jpg`` (4 or 5
  digits). Table SAMM_LongVideos_V2_Release.xlsx (sheet FACS_Movement_Only, header at row 10):
  Subject, Filename (006_1_2: video 006_1, expression 2), Inducement Code, Onset, Apex, Offset,
  Duration, Type ("Macro", "Micro - 1/2"), Action Units, Notes. It has no emotion column (MEAN
  joins the SAMM table on Filename for one; not done here). An onset of 0 means "not coded":
  the apex stands in, as in public MEGC spotting code.
- ``casme-sq`` CAS(ME)^2. Frames ``<root>/rawpic/s15/15_0101disgustingteeth/img<N>.jpg``, videos
  ``<root>/rawvideo/s15/15_0101disgustingteeth.avi``; one clip, 23_0502, sits in s19 and is
  found anyway. Table CAS(ME)^2code_final.xlsx, first sheet with no header: participant (1..22),
  video name_expression number (disgust1_1), onset, apex, offset, AUs, estimated emotion,
  type (macro-expression / micro-expression), self-reported emotion. Sheets 2 and 3 map
  participant → subject (1 → 15) and video name → code (disgust1 → 0101); without them
  (CSV, no openpyxl) the published mapping built in here is used. An offset of 0 means "not
  coded": the apex stands in (public MEGC code does the same). Emotions: positive, negative,
  surprise as written; others → none.
- ``casme3`` CAS(ME)^3 Part A. Frames ``<root>/.../spNO.1/a/color/<N>.jpg`` (any depth up to 4
  folders below the root), or the ME clips ``Part_A_ME_clip/frame/spNO.1_a_<onset>/<N>.jpg``.
  Table cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx: Subject (spNO.1), Filename (a; lower-cased),
  Onset, Apex, Offset (jpg indices), AU, Objective class, emotion. Emotions: happy → positive;
  disgust, fear, anger, sad → negative; surprise → surprise; others → none. All rows micro.

Sources (public code that parses the real files, found with the search tool):
genbing99/MEAN_Spot-then-recognize (load_excel.py, load_images.py) confirms the CAS(ME)^2
headerless 9-column sheet, its naming sheets and rawpic/s15/15_0101.../img*.jpg, the CASME II
column names, and the SAMM-LV columns after 10 title rows with type "Micro - 1/2".
jingtingEmmaLi/CAS-ME-3 (the official repository) lists the CAS(ME)^3 annotation files;
loaders by its users confirm Subject/Filename/Onset/Apex/Offset/Objective class/emotion,
lower-case clip folders, spNO.185/g/color/1948.jpg, frame 0 and the seven emotion labels.
Other MEGC loaders (excerpts with no repository name in the index) confirm SAMM's header at
row 13/14, its emotion labels, 3-digit subject folders and 006_05562.jpg names, SAMM-LV's sheet
FACS_Movement_Only with 4/5-digit frame names counted from 1 and onset 0 → apex, CAS(ME)^2's
offset 0 → apex and its naming tables, and CASME II's "/" apex. Assumed, not confirmed: the
spelling of CAS(ME)^2's emotion labels (its paper names positive, negative, surprise and
others; unknown labels are reported, never guessed), CASME II Cropped's
reg_img<N>.jpg names (any trailing number works), the folders above spNO.* in the CAS(ME)^3
release (one README shows part_A/data/part_A_split/part_A; hence the depth search), and
column spellings of releases not seen (the header is found by name, with the aliases of
``engines/eval/readers.py``).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from engines.errors import MexliveError, report_error
from engines.eval.layouts import (
    Annotation,
    DatasetError,
    Problem,
    clip_folder,
    clip_frames,
    clip_video,
)
from engines.eval.readers import (
    READERS,
    read_casme2,
    read_casme3,
    read_casme_sq,
    read_samm,
    read_samm_lv,
)

__all__ = [
    "Annotation",
    "DatasetError",
    "Problem",
    "clip_folder",
    "clip_frames",
    "clip_video",
    "loso_splits",
    "read_casme2",
    "read_casme3",
    "read_casme_sq",
    "read_samm",
    "read_samm_lv",
    "summarize",
]


def _natural(text: str) -> list[int | str]:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", text)]


def loso_splits(annotations: Sequence[Annotation]) -> list[tuple[str, list[int], list[int]]]:
    """Leave-one-subject-out folds: (test_subject, train_indices, test_indices) per subject.

    Indices point into `annotations`. Subjects are named as in `Annotation.subject`, or as
    'dataset:subject' when the list mixes datasets (SAMM '006' is not CASME II 'sub06').
    """
    mixed = len({a.dataset for a in annotations}) > 1
    groups: dict[str, list[int]] = {}
    for i, a in enumerate(annotations):
        groups.setdefault(f"{a.dataset}:{a.subject}" if mixed else a.subject, []).append(i)
    folds = []
    for subject in sorted(groups, key=_natural):
        test = groups[subject]
        held_out = set(test)
        folds.append((subject, [i for i in range(len(annotations)) if i not in held_out], test))
    return folds


def summarize(annotations: Sequence[Annotation], problems: Sequence[Problem], limit=50) -> str:
    """The CLI's report: counts, emotions and the problems with their line numbers."""
    kinds = Counter(a.kind for a in annotations)
    raw = Counter(a.emotion_raw or "(none)" for a in annotations)
    three = Counter(a.emotion or "(excluded)" for a in annotations)
    skipped = sum(p.skipped for p in problems)
    lines = [
        f"annotations: {len(annotations)}  (micro {kinds['micro']}, macro {kinds['macro']})",
        f"subjects:    {len({a.subject for a in annotations})}",
        f"clips:       {len({(a.subject, a.clip) for a in annotations})}",
        "emotions:    " + ", ".join(f"{k} {v}" for k, v in sorted(raw.items())),
        "3-class:     " + ", ".join(f"{k} {v}" for k, v in sorted(three.items())),
        f"problems:    {len(problems)} ({skipped} rows skipped, {len(problems) - skipped} kept)",
    ]
    lines += [f"  {p}" for p in problems[:limit]]
    if len(problems) > limit:
        lines.append(f"  ... {len(problems) - limit} more (--max-problems to see them)")
    return "\n".join(lines)


def _check_frames(root: Path, annotations: Sequence[Annotation]) -> str:
    missing: dict[tuple[str, str], str] = {}
    for a in annotations:
        if (a.subject, a.clip) not in missing:
            try:
                clip_frames(root, a, whole=True)
                missing[(a.subject, a.clip)] = ""
            except DatasetError as exc:
                missing[(a.subject, a.clip)] = str(exc)
    bad = [m for m in missing.values() if m]
    return "\n".join(
        [f"frames:      {len(missing) - len(bad)}/{len(missing)} clips found"]
        + [f"  {m}" for m in bad[:20]]
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m engines.eval.datasets",
        description="Read a licensed micro-expression dataset where you have it and print a "
        "summary: subjects, clips, micro/macro counts, emotions, bad rows with line numbers.",
        epilog="Annotation tables: .csv, or .xlsx when openpyxl is installed. Layouts and "
        "emotion mappings: see the module docstring (python -c 'import engines.eval.datasets as d; "
        "help(d)').",
    )
    parser.add_argument(
        "dataset",
        choices=sorted(READERS),
        metavar="DATASET",
        help="casme2 (CASME II), samm (SAMM), samm-lv (SAMM Long Videos), "
        "casme-sq (CAS(ME)^2), casme3 (CAS(ME)^3 Part A)",
    )
    parser.add_argument("root", type=Path, metavar="ROOT", help="the dataset's frame folder")
    parser.add_argument("annotations", type=Path, metavar="ANNOTATIONS", help="its coding table")
    parser.add_argument(
        "--check-frames", action="store_true", help="also look for every clip's frames under ROOT"
    )
    parser.add_argument(
        "--max-problems", type=int, default=50, metavar="N", help="problems to print (default 50)"
    )
    args = parser.parse_args(argv)
    try:
        annotations, problems = READERS[args.dataset](args.root, args.annotations)
        print(f"{args.dataset}: {args.annotations}")
        print(summarize(annotations, problems, limit=args.max_problems))
        if args.check_frames:
            print(_check_frames(args.root, annotations))
    except MexliveError as exc:
        return report_error(exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
