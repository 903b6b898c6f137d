"""stream.datasets.features: synthetic feature sets in the --dump-features layout, reproducible."""

from __future__ import annotations

import numpy as np
import pytest

from stream.datasets.features import build_parser, main, make_feature_set, resolve_photo
from stream.errors import MexliveError
from stream.face.features import feature_names
from tests.helpers import fixtures_root

# A short lead-in and high rates so that a 3-second clip holds micro-expressions and blinks.
BUSY = {"lead_in_s": 0.5, "micro_per_min": 20, "macro_per_min": 6, "blinks_per_min": 20}
LAYOUT = {
    "values",
    "valid",
    "seq",
    "t_mono_ns",
    "pts_s",
    "names",
    "fps",
    "truth_onset",
    "truth_apex",
    "truth_offset",
    "truth_kind",
    "truth_emotion",
    "identity",
    "seed",
}


@pytest.fixture(scope="module")
def feature_sets(tmp_path_factory):
    """The same 2-clip set twice: through the spawn pool, and in this process."""
    root = tmp_path_factory.mktemp("sets")
    kwargs = {"count": 2, "seconds": 3.0, "h264": False, "progress": False, "synthetic": BUSY}
    pooled = make_feature_set(root / "pooled", workers=2, **kwargs)
    inline = make_feature_set(root / "inline", workers=1, **kwargs)
    return pooled, inline


def test_files_and_layout(feature_sets):
    pooled, _ = feature_sets
    assert [p.name for p in pooled] == ["clip_0000.npz", "clip_0001.npz"]
    for i, path in enumerate(pooled):
        with np.load(path) as data:
            assert set(data.files) >= LAYOUT
            n = len(data["seq"])
            assert n == 90
            assert data["values"].shape == (n, len(feature_names()))
            assert tuple(data["names"]) == feature_names()
            assert data["valid"].mean() > 0.9  # the astronaut is tracked from the start
            np.testing.assert_array_equal(data["seq"], np.arange(n))
            np.testing.assert_allclose(data["pts_s"], np.arange(n) / 30.0)
            assert str(data["identity"]) == "astronaut" and int(data["seed"]) == i
            kinds = set(data["truth_kind"].tolist())
            assert "micro" in kinds  # the truth is there ...
            assert kinds <= {"micro", "macro", "blink"}  # ... blinks kept, not dropped
            assert np.all(data["truth_onset"] <= data["truth_apex"])
            assert np.all(data["truth_apex"] <= data["truth_offset"])


def test_same_seed_gives_identical_arrays(feature_sets):
    for a, b in zip(*feature_sets, strict=True):
        with np.load(a) as x, np.load(b) as y:
            assert x.files == y.files
            for key in x.files:
                np.testing.assert_array_equal(x[key], y[key], err_msg=key)


def test_missing_photo_is_one_clear_error(tmp_path, capsys):
    with pytest.raises(MexliveError, match="not found"):
        resolve_photo("no_such_face.jpg")
    assert main([str(tmp_path), "--photos", "astronaut,no_such_face.jpg", "--quiet"]) == 2
    assert "no_such_face.jpg" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.npz"))  # nothing started


def test_help_explains_the_options():
    text = build_parser().format_help()
    for option in ("--count", "--seconds", "--seed", "--photos", "--no-h264", "astronaut"):
        assert option in text


def test_fixture_photo_names_resolve():
    root = fixtures_root()
    if root is None or not (root / "photos" / "lp_d9.jpg").is_file():
        pytest.skip("face fixtures not found")
    assert resolve_photo("astronaut") is None
    assert resolve_photo("lp_d9.jpg").endswith("lp_d9.jpg")
