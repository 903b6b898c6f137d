"""The detectability suite: its clip list, its labels against the injector, its traces against
the live stage, and the whole instrument on a small real set."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks.suite.clips import (
    AMPLITUDE_200,
    CALM_SEEDS,
    SUITE_SEEDS,
    build_real_sets,
    suite_videos,
)
from benchmarks.suite.labels import (
    amplitude_90,
    amplitude_bin,
    calm_onsets,
    context_of,
    distractor_of,
    face_context,
    inter_ocular_px,
    primary_group,
)
from engines.context import ClipContext
from stream.datasets.corpus import corpus_manifest
from stream.errors import MexliveError
from tests.helpers import REPO, fixtures_root

FIXTURES = fixtures_root()
needs_fixtures = pytest.mark.skipif(FIXTURES is None, reason="../shared/fixtures not found")


def _base_name(identity: str) -> str:
    return identity.split("@")[0]  # "vr_1.mp4@2.5" is a frame of vr_1.mp4


@needs_fixtures
def test_no_suite_clip_was_seen_in_training_or_validation():
    manifest = json.loads((REPO / "engines/weights/manifest.json").read_text())
    data = manifest["data"]
    seen = {_base_name(i) for i in (*data["train_identities"], *data["val_identities"])}
    corpus_train = {c.file for c in corpus_manifest(FIXTURES) if c.split == "train"}
    names = [Path(v).name for v in suite_videos(FIXTURES, warn=lambda line: None)]
    assert names, "the suite has no real video"
    assert not set(names) & seen
    assert not set(names) & corpus_train
    assert set(data["held_out"]) >= {n for n in names if (FIXTURES / "videos" / n).is_file()}


def test_a_missing_corpus_is_one_line(tmp_path):
    lines: list[str] = []
    assert corpus_manifest(tmp_path, warn=lines.append) == []
    assert len(lines) == 1 and "no corpus" in lines[0]


def _context(n: int, **spans: tuple[int, int]) -> ClipContext:
    flags = {name: np.zeros(n, bool) for name in ("blink", "speaking", "head_moving")}
    for name, (a, b) in spans.items():
        flags[name][a : b + 1] = True
    zeros = np.zeros(n, np.float32)
    return ClipContext(
        zeros, flags["blink"], zeros, flags["speaking"], zeros, flags["head_moving"], flags["blink"]
    )


@pytest.mark.parametrize(
    ("spans", "expected"),
    [
        ({}, "calm"),  # nothing anywhere
        ({"speaking": (100, 110)}, "calm"),  # talking 1.9 s after the offset: not near
        ({"speaking": (64, 70)}, "near talking"),  # 0.47 s after the offset (14 frames)
        ({"speaking": (0, 300), "head_moving": (30, 35)}, "near head motion"),  # 0.5 s before
        ({"head_moving": (20, 25)}, "calm"),  # 0.83 s before the onset
        ({"blink": (45, 48)}, "calm"),  # a blink is a distractor, not a context
    ],
)
def test_context_rule(spans, expected):
    # an expression over frames 45-50 at 30 fps; "near" is 0.5 s = 15 frames either side
    assert context_of(45, 50, 30.0, _context(300, **spans)) == expected


@pytest.mark.parametrize(
    ("spans", "expected"),
    [
        ({"blink": (52, 53), "speaking": (0, 299)}, "blink"),  # 2 frames after: within 0.2 s
        ({"blink": (60, 62), "head_moving": (40, 41)}, "head motion"),  # blink 0.33 s away
        ({"speaking": (30, 44)}, "speaking"),
        ({"speaking": (0, 30)}, "none"),  # 0.5 s before
    ],
)
def test_distractor_rule(spans, expected):
    assert distractor_of(45, 50, 30.0, _context(300, **spans)) == expected


@pytest.mark.parametrize(
    ("amplitude", "expected"),
    [(0.4, "< 1"), (1.0, "1–2"), (1.99, "1–2"), (2.5, "2–3"), (3.0, "≥ 3"), (4.2, "≥ 3")],
)
def test_amplitude_bins(amplitude, expected):
    assert amplitude_bin(amplitude) == expected


@pytest.mark.parametrize(
    ("aus", "group"),
    [
        ((1, 2), "brows"),  # inner and outer brow raisers
        ((4,), "brows"),  # brow lowerer (the lid follows a little)
        ((6, 12), "mouth"),  # the lip corners move more than the cheek and lids
        ((9, 10), "mouth"),  # the upper lip moves more than the nostrils
        ((5, 26), "mouth"),  # a jaw drop moves the lower lip more than the jaw line
    ],
)
def test_primary_group_of_action_units(aus, group):
    assert primary_group(aus) == group


# ---- a small real suite: one held-out video cut to 5 s, one too short, no corpus ------------


def _cut(src: Path, out: Path, frames: int) -> None:
    from stream.synthetic.decode import VideoReader
    from stream.synthetic.writers import H264Writer

    with VideoReader(src) as reader:
        fps = reader.fps
        first = reader.read()
        writer = H264Writer(out, first.image.shape[1], first.image.shape[0], fps)
        writer.write(first.image)
        for _ in range(frames - 1):
            writer.write(reader.read().image)
        writer.close()


@pytest.fixture(scope="module")
def small_suite(tmp_path_factory):
    if FIXTURES is None:
        pytest.skip("../shared/fixtures not found")
    root = tmp_path_factory.mktemp("suite")
    fixtures = root / "fixtures"
    (fixtures / "videos").mkdir(parents=True)
    _cut(FIXTURES / "videos/lp_d5.mp4", fixtures / "videos/lp_d5.mp4", 125)  # 4.2 s at 30 fps
    _cut(FIXTURES / "videos/st_rd34.mp4", fixtures / "videos/st_rd34.mp4", 30)  # 1.2 s
    warnings: list[str] = []
    injected, plain = build_real_sets(
        root / "injected",
        root / "plain",
        workers=1,
        progress=False,
        fixtures=fixtures,
        warn=warnings.append,
    )
    return fixtures, injected, plain, warnings


@pytest.mark.slow
def test_the_builder_keeps_going_past_unusable_clips(small_suite):
    _, injected, plain, warnings = small_suite
    assert sum("no corpus" in w for w in warnings) == 1
    assert sum("is missing" in w for w in warnings) == 3  # three held-out videos not there
    assert sum("st_rd34" in w and "too short" in w for w in warnings) == len(SUITE_SEEDS)
    assert [p.name for p in plain] == ["lp_d5_plain.npz", "st_rd34_plain.npz"]
    # random placements and, lp_d5 being calm, placements in its calm stretches
    assert {p.name for p in injected} <= {f"lp_d5_s{s}.npz" for s in (*SUITE_SEEDS, *CALM_SEEDS)}
    assert any(p.name == f"lp_d5_s{CALM_SEEDS[0]}.npz" for p in injected)


@pytest.mark.slow
def test_nothing_usable_is_an_error(tmp_path):
    with pytest.raises(MexliveError, match="no real video"):
        build_real_sets(tmp_path / "i", tmp_path / "p", fixtures=tmp_path, warn=lambda line: None)


@pytest.mark.slow
def test_amplitude_labels_match_what_the_injector_wrote(small_suite):
    from benchmarks.suite.stages import SuiteClip
    from stream.datasets.real import injection_config
    from stream.synthetic.injected import inject

    fixtures, injected, _, _ = small_suite
    checked = 0
    for path in injected:
        clip = SuiteClip.load(path)
        seed = int(path.stem.rsplit("_s", 1)[1])
        onsets = None
        if seed in CALM_SEEDS:  # placed where the plain clip is calm
            plain = SuiteClip.load(path.parent.parent / "plain" / "lp_d5_plain.npz")
            context = face_context(plain.landmarks_px, plain.valid, plain.fps)
            onsets = calm_onsets(context, plain.valid, plain.fps)
        config = injection_config(seed, amplitude_px=AMPLITUDE_200, onsets=onsets)
        written = list(inject(fixtures / "videos/lp_d5.mp4", config))
        assert [i.event.onset for i in written] == clip.onset.tolist()
        for item, peak in zip(written, clip.peak_px, strict=True):
            assert item.event.peak_px == pytest.approx(peak)
            # the injector's own landmarks at the apex vs the landmarks tracked on the H.264
            # round trip: the inter-ocular distance agrees within 3 %
            iod = inter_ocular_px(item.rest_px[item.event.apex - item.start])
            ours = amplitude_90(peak, clip.landmarks_px, item.event.apex)
            assert ours == pytest.approx(peak * 90 / iod, rel=0.03)
            checked += 1
    assert checked >= 1


@pytest.mark.slow
def test_recorded_traces_decode_like_the_live_stage(small_suite):
    from benchmarks.bench_spotting import replay
    from benchmarks.suite.stages import SPOTTERS, SuiteClip, record_trace
    from engines.eval.detection import decode_scaled
    from engines.train.data import load_clip
    from stream.live.spotting import SpottingStage

    _, injected, _, _ = small_suite
    for name in SPOTTERS:
        live, _ = replay(None, load_clip(injected[0]), spotter=name)
        trace = record_trace(SuiteClip.load(injected[0]), name)
        config = SpottingStage(lambda e: None, backend="torch", spotter=name).decoder.config
        ours = decode_scaled(trace, config, 1.0)
        spans = lambda events: [(e.onset_seq, e.apex_seq, e.offset_seq, e.kind) for e in events]  # noqa: E731
        assert spans(ours) == spans(live)


@pytest.mark.slow
def test_the_whole_instrument_on_a_small_set(small_suite, tmp_path):
    from benchmarks.suite.curve import measure
    from benchmarks.suite.report import all_tables, plot
    from benchmarks.suite.stages import SuiteClip

    _, injected, plain, _ = small_suite
    measured = measure(
        [SuiteClip.load(p) for p in injected], [SuiteClip.load(p) for p in plain], say=str
    )
    assert len(measured.labels) == sum(len(SuiteClip.load(p).onset) for p in injected)
    tables = all_tables(measured)
    for heading in ("FROC", "amplitude", "context", "AUC", "oracle", "distractor"):
        assert heading in tables
    assert "node noise" in tables and "| node rise-and-return |" in tables
    assert "How still a calm face is" in tables and "| lp_d5 |" in tables
    assert "| oracle on the learned apex score" in tables  # what the decoder could make of it
    # lp_d5 sits still: some of its calm placements are spottable by the live rule, and they
    # are ranked against spottable windows only
    spottable = measured.mask(spottable=True)
    assert spottable.sum() > 0 and "spottable expressions: n =" in tables
    assert np.isfinite(measured.rank_spottable["learned apex score"][spottable]).any()
    assert np.isnan(measured.rank_spottable["learned apex score"][~spottable]).all()
    assert set(measured.node_noise) >= {"brows", "mouth"}
    plot(measured, tmp_path / "d.png")
    assert (tmp_path / "d.png").stat().st_size > 10_000
