"""Untrusted input: truncated and bit-flipped video files into the sources and the pipeline,
random arrays into the pipeline's entry points, malformed annotation tables, truth CSVs and
feature files into their readers. No hang beyond a bound, no crash, no unbounded memory, and
errors a person can act on (with line numbers where a file has lines)."""

from __future__ import annotations

import resource
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engines.eval.datasets import read_casme2, read_samm
from engines.eval.layouts import DatasetError
from engines.train.data import DataError, load_clip
from stream.capture.sources import open_source
from stream.contracts import SourceFrame
from stream.errors import MexliveError, SourceError
from stream.face.align import FaceTracker
from stream.live.builder import bare_pipeline
from stream.live.pipeline import Stage
from stream.output.events import EventBus
from stream.synthetic.animator import FaceAnimator, SyntheticConfig, read_truth_csv, write_video

pytestmark = pytest.mark.slow
DECODE_BOUND_S = 20.0  # a small corrupt file decodes (or fails) well within this
RSS_BOUND_MB = 600  # growth of the peak RSS over all the video examples
FUZZ = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, bytes]:
    """A 12-frame synthetic clip as H.264 .mp4 and raw .y4m bytes."""
    folder = tmp_path_factory.mktemp("fuzz")
    config = SyntheticConfig(seed=3, width=128, height=96, face_height_px=48)
    animator = FaceAnimator(config)
    out = {}
    for suffix in ("mp4", "y4m"):
        out[suffix] = write_video(folder / f"clip.{suffix}", animator, 12).read_bytes()
    return out


def mutate(data: bytes, cut: float, flips: list[tuple[float, int]]) -> bytes:
    """Cut the bytes at a fraction ``cut`` and flip bits at fractional positions."""
    mutated = bytearray(data[: max(1, int(len(data) * cut))])
    for where, bit in flips:
        mutated[int(where * (len(mutated) - 1))] ^= 1 << bit
    return bytes(mutated)


def run_bounded(fn, bound_s: float):
    """fn() on a daemon thread; fails the test if it does not return within ``bound_s``."""
    box: dict = {}

    def target():
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed back to the test thread
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(bound_s)
    assert not thread.is_alive(), f"no answer within {bound_s} s (a hang)"
    if "error" in box:
        raise box["error"]
    return box.get("value")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Frames:
    """Collects what reaches the stages."""

    def __init__(self) -> None:
        self.shapes: list[tuple[int, ...]] = []

    def stage(self) -> Stage:
        return Stage("collect", lambda frame, results: self.shapes.append(frame.image.shape))


@pytest.mark.parametrize("suffix", ["mp4", "y4m"])
def test_mutated_videos_fail_cleanly_or_play(suffix, videos, tmp_path):
    rss_before = peak_rss_mb()

    @FUZZ
    @given(
        cut=st.floats(0.05, 1.0),
        flips=st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(0, 7)), max_size=12),
    )
    def check(cut, flips):
        path = tmp_path / f"mutated.{suffix}"
        path.write_bytes(mutate(videos[suffix], cut, flips))
        collected = Frames()
        try:
            pipeline = bare_pipeline(open_source(str(path)), EventBus(), [collected.stage()])
            summary = run_bounded(pipeline.run, DECODE_BOUND_S)
        except SourceError as exc:
            assert str(path) in str(exc)  # a message that names the file
            return
        assert summary.balanced and summary.captured <= 40
        assert all(len(shape) == 3 and shape[2] == 3 for shape in collected.shapes)
        if summary.error is not None:
            assert str(path) in summary.error

    check()
    assert peak_rss_mb() - rss_before < RSS_BOUND_MB


class ArraySource:
    """Hands the capture thread whatever arrays it is given."""

    name, live, fps = "arrays", False, 30.0

    def __init__(self, images: list) -> None:
        self.images, self.i = images, 0

    def open(self) -> None:
        pass

    def read(self):
        if self.i >= len(self.images):
            return None
        frame = SourceFrame(self.images[self.i], self.i / 30, self.i)
        self.i += 1
        return frame

    def close(self) -> None:
        pass

    def counters(self) -> dict[str, int]:
        return {}


ARRAYS = st.builds(
    lambda shape, dtype, fill: np.full(shape, fill, dtype),
    shape=st.one_of(
        st.tuples(st.integers(0, 64), st.integers(0, 64)),
        st.tuples(st.integers(0, 64), st.integers(0, 64), st.integers(1, 5)),
        st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.integers(1, 3)),
    ),
    dtype=st.sampled_from([np.uint8, np.float32, np.int16, np.bool_]),
    fill=st.integers(0, 1),
)


@FUZZ
@given(images=st.lists(ARRAYS, min_size=1, max_size=8))
def test_random_arrays_through_the_pipeline_are_counted_never_analysed_wrong(images):
    tracker = FaceTracker()

    def align(frame, results):
        results.aligned = tracker.update(frame.image, frame.seq, frame.t_mono_ns)

    summary = run_bounded(
        bare_pipeline(ArraySource(images), EventBus(), [Stage("align", align)]).run, 10.0
    )
    good = sum(
        i.dtype == np.uint8 and i.ndim == 3 and i.shape[2] == 3 and i.size > 0 for i in images
    )
    assert summary.balanced and summary.captured == len(images)
    assert summary.dropped.get("malformed", 0) == len(images) - good
    assert summary.processed + summary.dropped.get("frozen", 0) == good  # no stage_error


@FUZZ
@given(height=st.integers(1, 400), width=st.integers(1, 400), seed=st.integers(0, 2**16))
def test_the_tracker_takes_any_bgr_frame(height, width, seed):
    image = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    tracker = FaceTracker()
    for seq in range(2):
        aligned = tracker.update(image, seq, seq * 33_000_000)
        assert aligned.ok in (True, False)


TRUTH_HEADER = "onset,apex,offset,kind,emotion,aus,peak_px,landmarks"
TRUTH_ROW = "10,14,20,micro,positive,6+12,2.5,48+54"


@FUZZ
@given(
    rows=st.lists(
        st.one_of(
            st.just(TRUTH_ROW),
            st.text(alphabet=st.sampled_from('0123456789,+.-abcmiro "x'), max_size=40),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_malformed_truth_csv_names_the_line(rows, tmp_path):
    path = tmp_path / "truth.csv"
    path.write_text("\n".join([TRUTH_HEADER, *rows]) + "\n")
    warnings: list[str] = []
    try:
        events = read_truth_csv(path, warn=warnings.append)
    except MexliveError as exc:  # only when no row at all is usable
        assert str(path) in str(exc) and warnings
        events = []
    assert all(str(path) in w and "line " in w for w in warnings)
    assert all(e.onset <= e.apex <= e.offset for e in events)


CASME2_HEADER = (
    "Subject,Filename,Unnamed: 2,OnsetFrame,ApexFrame,OffsetFrame,Unnamed: 6,Action Units,"
    "Estimated Emotion"
)


@FUZZ
@given(
    lines=st.lists(
        st.text(alphabet=st.sampled_from('0123456789,;/ "\tEPsub_happiness\x00é'), max_size=60),
        max_size=8,
    ),
    header=st.booleans(),
)
def test_malformed_annotation_tables_give_line_numbers(lines, header, tmp_path):
    root = tmp_path / "CASME2_RAW_selected"
    (root / "sub01").mkdir(parents=True, exist_ok=True)
    (root / "sub01" / "x.txt").write_text("x")
    path = tmp_path / "coding.csv"
    path.write_text("\n".join(([CASME2_HEADER] if header else []) + lines) + "\n")
    for reader in (read_casme2, read_samm):
        try:
            annotations, problems = reader(root, path)
        except DatasetError as exc:
            assert str(exc)
            continue
        n_lines = len(lines) + header
        assert all(1 <= p.line <= n_lines + 1 and str(p).startswith("line ") for p in problems)
        assert all(a.onset <= a.offset for a in annotations)


@FUZZ
@given(
    cut=st.floats(0.05, 1.0),
    flips=st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(0, 7)), max_size=8),
)
def test_mutated_feature_files_raise_data_error(cut, flips, feature_file, tmp_path):
    path = tmp_path / "mutated.npz"
    path.write_bytes(mutate(feature_file, cut, flips))
    try:
        clip = load_clip(path)
    except DataError as exc:
        assert str(path) in str(exc)
        return
    assert clip.x.shape[0] == clip.valid.shape[0]


@pytest.fixture(scope="module")
def feature_file(tmp_path_factory) -> bytes:
    """A small feature file in the --dump-features layout, stored uncompressed so that
    bit flips reach the arrays, not only the zip structure."""
    from stream.face.features import feature_names

    names = feature_names()
    path = Path(tmp_path_factory.mktemp("features")) / "clip.npz"
    rng = np.random.default_rng(0)
    np.savez(
        path,
        values=rng.normal(size=(40, len(names))).astype(np.float32),
        valid=np.ones(40, bool),
        names=np.array(names),
        fps=np.float64(30.0),
        truth_onset=np.array([5, 20]),
        truth_apex=np.array([8, 24]),
        truth_offset=np.array([12, 30]),
        truth_kind=np.array(["micro", "macro"]),
        truth_emotion=np.array(["positive", "negative"]),
    )
    return path.read_bytes()


@FUZZ
@given(
    drop=st.sampled_from(["", "truth_apex", "fps"]),
    short=st.booleans(),
    kind=st.sampled_from(["micro", "blink", "sneeze"]),
    onset=st.integers(-5, 50),
)
def test_inconsistent_feature_files_name_the_truth_row(drop, short, kind, onset, tmp_path):
    from stream.face.features import feature_names

    names = feature_names()
    arrays = {
        "values": np.zeros((40, len(names)), np.float32),
        "valid": np.ones(40, bool),
        "names": np.array(names),
        "fps": np.float64(30.0),
        "truth_onset": np.array([5, onset]),
        "truth_apex": np.array([8, max(onset, 0) + 2]),
        "truth_offset": np.array([12, max(onset, 0) + 4]),
        "truth_kind": np.array(["micro", kind]),
        "truth_emotion": np.array(["", "positive"]),
    }
    if short:
        arrays["truth_emotion"] = arrays["truth_emotion"][:1]
    arrays.pop(drop, None)
    path = tmp_path / "clip.npz"
    np.savez(path, **arrays)
    try:
        load_clip(path)
    except DataError as exc:
        message = str(exc)
        assert str(path) in message
        if drop == "" and (short or kind == "sneeze" or not 0 <= onset < 40):
            assert "truth row" in message
        return
    # a blink row is not a spotting target: its frames are not checked
    assert drop == "" and not short and kind != "sneeze" and (0 <= onset < 40 or kind == "blink")
