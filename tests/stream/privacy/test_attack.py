"""Attack evaluation: the decoder's emotion rule, success counting, one query per clip, and a
small end-to-end evaluation run of benchmarks/bench_privacy.py."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.bench_privacy import main as bench_main
from benchmarks.bench_privacy import query_clip
from engines.labels import EMOTIONS
from stream.privacy.attack import (
    Clip,
    ClipSource,
    Query,
    attack_success,
    protect,
    protector_faces,
)
from stream.privacy.recognizers import (
    MPFNetRecognizer,
    PipelineRecognizer,
    SpotterRecognizer,
    decoder_emotion,
    predicted,
)
from stream.privacy.stickers import Sticker


def test_decoder_emotion_weights_the_half_maximum_span():
    apex = np.array([0.0, 0.1, 0.6, 1.0, 0.55, 0.2, 0.9])  # the later 0.9 is a separate peak
    probs = np.zeros((7, 3))
    probs[:, 0] = 1.0  # negative everywhere ...
    probs[2:5] = (0.0, 1.0, 0.0)  # ... except positive inside the span around the peak
    assert np.allclose(decoder_emotion(apex, probs), (0.0, 1.0, 0.0))
    assert np.allclose(decoder_emotion(np.zeros(4), probs[:4]), 1 / 3)  # no score: no opinion


def q(clip: str, truth: str, pred: str, condition: str = "none") -> Query:
    return Query("r", clip, "id", truth, condition, "", "", 0, pred, 0.0)


def test_attack_success_counts_only_clips_that_were_right_before():
    clean = [
        q("a", "positive", "positive"),
        q("b", "negative", "negative"),
        q("c", "surprise", "negative"),
    ]
    attacked = [
        q("a", "positive", "surprise", "causal"),
        q("b", "negative", "negative", "causal"),
        q("c", "surprise", "positive", "causal"),
    ]
    assert attack_success(clean, attacked) == (0.5, 2)  # c was wrong already: not counted
    rate, n = attack_success([q("a", "positive", "negative")], attacked)
    assert n == 0 and rate != rate  # nothing to attack: NaN, not 0 or 100 %


class CountingRecognizer:
    """A real, if simple, black box: the brightest third of the face decides; it counts the
    queries it gets."""

    name = "counting"

    def __init__(self) -> None:
        self.queries = 0

    def recognize(self, clip: Clip) -> np.ndarray:
        self.queries += 1
        grey = np.mean([f[150:300, 250:390].mean() for f in clip.frames])
        probs = np.zeros(len(EMOTIONS))
        probs[int(grey) % 3] = 1.0
        return probs


@pytest.mark.slow
def test_each_condition_is_one_query_per_clip_and_recognizer():
    clip = next(ClipSource(None, seed=5, seconds=12.0).clips())
    counting = CountingRecognizer()
    spotter = SpotterRecognizer("spotter")
    overlay_s: list[float] = []
    queries = query_clip(
        clip,
        [counting, spotter],
        "brow_l_inner",
        ["solid", "translucent"],
        ["chin", "nose_r"],
        overlay_s,
    )
    per_condition = 1 + 2 * (1 + 2)  # none + designs x (causal + 2 random)
    assert counting.queries == per_condition
    assert len(queries) == 2 * per_condition
    assert {x.prediction for x in queries} <= set(EMOTIONS)
    stickered = [x for x in queries if x.condition != "none"]
    assert all(0.02 < x.area_fraction <= 0.04 for x in stickered)
    assert len(overlay_s) == 2 * len(clip.frames)  # every frame of the causal placements timed


@pytest.mark.slow
def test_small_evaluation_run_prints_the_tables(capsys, tmp_path):
    code = bench_main(
        [
            "--identities",
            "astronaut",
            "--seconds",
            "10",
            "--calibration-seconds",
            "8",
            "--designs",
            "textured",
            "--random",
            "1",
            "--no-stream-check",
            "--videos",
            "",
            "--recognizers",
            "spotter,mpfnet",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "Machine:" in out and "| spotter (shipped) | textured |" in out
    assert "| MPFNet (shipped) | textured |" in out
    assert "Per emotion" in out and "Overlay cost" in out
    assert len(list(tmp_path.glob("graph_astronaut_*.json"))) == 1


@pytest.mark.slow
def test_evaluation_on_a_real_video_with_injected_expressions(capsys, tmp_path, fixtures_dir):
    """One injection position of a real fixture video (three emotions): the person's root
    from their own clean video, the table of the real-video set, and the plot."""
    code = bench_main(
        [
            *("--identities", "", "--videos", "lp_d11.mp4", "--positions", "1"),
            *("--designs", "solid", "--random", "1", "--recognizers", "mpfnet,pipeline"),
            *("--out", str(tmp_path), "--plot", str(tmp_path / "privacy.png")),
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "### micro-expressions injected into real video (3 clips)" in out
    assert "| MPFNet (shipped) | solid |" in out and "| mexlive live path | solid |" in out
    assert (tmp_path / "graph_lp_d11_video.json").is_file()
    assert (tmp_path / "privacy.png").stat().st_size > 10_000


@pytest.mark.slow
def test_mpfnet_recognizer_reads_the_rise_like_a_live_event(tmp_path):
    """The adapter feeds the live recognizer the clip's onset..apex faces: a clean clip is
    recognised (the shipped recognizer is ~0.99 on true intervals), the cached analysis is
    the one computed, and a sticker changes what it sees."""
    clips = ClipSource(None, seed=5, seconds=12.0).clips()
    clip = next(clips)
    assert 0 <= clip.onset < clip.apex < clip.offset < len(clip.frames)
    clip.cache = tmp_path / "clip.npz"
    recognizer = MPFNetRecognizer("mpfnet")
    probs = recognizer.recognize(clip)
    assert probs.shape == (3,) and np.isclose(probs.sum(), 1.0, atol=1e-5)
    assert EMOTIONS[int(np.argmax(probs))] == clip.emotion and probs.max() > 0.6
    analysis = clip.analysis()
    assert analysis.faces.shape[0] == len(clip.frames) and analysis.faces_ok.all()
    again = Clip(clip.frames, clip.fps, clip.emotion, clip.onset, clip.offset, cache=clip.cache)
    again.apex = clip.apex
    assert np.array_equal(again.analysis().faces, analysis.faces)  # read back, not recomputed
    assert np.allclose(recognizer.recognize(again), probs, atol=1e-6)
    stickered = protect(clip, protector_faces(clip), Sticker.design("pattern"), "mouth_l")
    assert stickered.apex == clip.apex
    assert not np.allclose(recognizer.recognize(stickered), probs, atol=1e-4)


@pytest.mark.slow
def test_pipeline_recognizer_reads_no_annotation():
    """The live path decides its own interval: moving the annotated onset/apex changes
    nothing, and a clean clip with a clear micro-expression is read with its emotion."""
    clip = next(ClipSource(None, seed=5, seconds=12.0).clips())
    pipeline = PipelineRecognizer("live path")
    probs = pipeline.recognize(clip)
    assert predicted(probs) in (*EMOTIONS, "none")
    assert predicted(probs) == clip.emotion  # the shipped models read this clip
    moved = Clip(clip.frames, clip.fps, clip.emotion, clip.onset - 5, clip.offset)
    moved.apex, moved._analysis = clip.apex - 3, clip.analysis()
    assert np.allclose(pipeline.recognize(moved), probs)
    assert predicted(np.zeros(3)) == "none"
