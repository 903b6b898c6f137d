"""The shipped spotter's recipe: every corpus clip marked train is in it, nothing the suite
scores is, and a training list naming a held-out or validation clip is refused."""

from __future__ import annotations

import re

import pytest

from stream.datasets.corpus import check_training_videos, corpus_manifest
from stream.datasets.recipe import HELD_OUT_VIDEOS, VAL_VIDEOS, parts
from stream.errors import MexliveError


def test_the_recipe_trains_on_every_corpus_train_clip_and_no_validation_clip(fixtures_dir):
    clips = corpus_manifest(fixtures_dir)
    if not clips:
        pytest.skip("no corpus in the fixtures")
    trained = {name.rsplit("/", 1)[-1] for p in parts() if p.folder.startswith("train/")
               for name in p.names}  # fmt: skip
    assert {c.file for c in clips if c.split == "train"} <= trained
    assert not trained & {c.file for c in clips if c.split == "validation"}
    assert not trained & set(HELD_OUT_VIDEOS)


def test_a_training_list_with_a_suite_clip_is_refused(fixtures_dir, tmp_path):
    validation = [c.file for c in corpus_manifest(fixtures_dir) if c.split == "validation"]
    if not validation:
        pytest.skip("no corpus in the fixtures")
    with pytest.raises(MexliveError, match=re.escape(validation[0])):
        check_training_videos(["st_rd2.mp4", f"/x/{validation[0]}"], HELD_OUT_VIDEOS, fixtures_dir)
    with pytest.raises(MexliveError, match=r"vr_2\.mp4"):
        check_training_videos(["vr_2.mp4"], HELD_OUT_VIDEOS, fixtures_dir)
    check_training_videos(["st_rd2.mp4"], (*HELD_OUT_VIDEOS, *VAL_VIDEOS), fixtures_dir)


def test_no_corpus_refuses_only_the_held_out(tmp_path):
    with pytest.raises(MexliveError, match=r"lp_d9\.mp4"):
        check_training_videos(["lp_d9.mp4"], HELD_OUT_VIDEOS, tmp_path)
    check_training_videos(["st_rd2.mp4"], HELD_OUT_VIDEOS, tmp_path)
