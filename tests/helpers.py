"""Helpers shared by test modules (a test module never imports another test module).

The repository root and the face fixtures, the real CLI in a subprocess, a sample expression
event, and the fake feature clips the engine tests train on.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from stream.contracts import SourceFrame
from stream.errors import SourceError, SourceReadError
from stream.face.rois import CANONICAL_68
from stream.output.events import ExpressionEvent, StatusEvent, validate_event

REPO = Path(__file__).resolve().parents[1]


def fixtures_root() -> Path | None:
    """$MEXLIVE_FIXTURES, else ../shared/fixtures beside the repository; None when absent."""
    candidates = [os.environ.get("MEXLIVE_FIXTURES"), REPO.parent / "shared" / "fixtures"]
    for candidate in candidates:
        if candidate and Path(candidate, "videos").is_dir():
            return Path(candidate)
    return None


# ---- the command line -------------------------------------------------------------------------


def mexlive(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "run_live.py"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )


def read_log(path) -> list[dict]:
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert all(validate_event(line) == [] for line in lines)
    return lines


# ---- events -----------------------------------------------------------------------------------


def expression(**overrides) -> ExpressionEvent:
    fields = dict(
        seq=120,
        stream="cam0",
        kind="micro",
        onset_frame=100,
        apex_frame=106,
        offset_frame=111,
        onset_s=3.333,
        apex_s=3.533,
        offset_s=3.7,
        emotion="positive",
        emotion_probs={"negative": 0.1, "positive": 0.8, "surprise": 0.1},
        confidence=0.8,
        rois=["mouth_left"],
        latency_ms={"lookahead": 250.0, "capture_to_event": 281.0},
        model={"name": "spotter", "backend": "torch", "sha256": "0" * 64},
    )
    fields.update(overrides)
    return ExpressionEvent(**fields)


# ---- fake feature clips (engines.train) -------------------------------------------------------

CLIP_FEATURES = 8  # feature columns of a fake clip
CLIP_FRAMES = 160
CLIP_NAMES = np.array([f"roi{i // 2}.ch{i % 2}" for i in range(CLIP_FEATURES)])


def write_clip(path, identity, seed, names=CLIP_NAMES, width=CLIP_FEATURES, nodes=False):
    """A fake clip: noise plus a bump in every channel at each micro/macro; one blink.
    ``nodes``: also the node front end's arrays (residual noise with the same bumps on the
    brows, and a still face's landmarks), so the node spotter's input can be made."""
    rng = np.random.default_rng(seed)
    values = rng.normal(0, 0.1, (CLIP_FRAMES, width)).astype(np.float32)
    truth = [
        (20, 24, 30, "micro", "positive"),
        (60, 64, 70, "blink", ""),
        (90, 100, 130, "macro", "negative"),
    ]
    for onset, _apex, offset, kind, _ in truth:
        if kind != "blink":
            values[onset : offset + 1] += np.hanning(offset - onset + 1)[:, None].astype("f4")
    valid = np.ones(CLIP_FRAMES, bool)
    valid[:2] = False  # no reference face yet
    valid[140:143] = False  # face lost for a moment
    values[~valid] = 0.0
    extra = _node_arrays(rng, truth, valid) if nodes else {}
    np.savez_compressed(
        path,
        **extra,
        values=values,
        valid=valid,
        seq=np.arange(CLIP_FRAMES),
        t_mono_ns=np.arange(CLIP_FRAMES) * 33_333_333,
        pts_s=np.arange(CLIP_FRAMES) / 30.0,
        names=names,
        fps=np.float64(30.0),
        truth_onset=np.array([t[0] for t in truth]),
        truth_apex=np.array([t[1] for t in truth]),
        truth_offset=np.array([t[2] for t in truth]),
        truth_kind=np.array([t[3] for t in truth]),
        truth_emotion=np.array([t[4] for t in truth]),
        identity=np.array(identity),
        seed=np.int64(seed),
    )


def _node_arrays(rng, truth, valid) -> dict[str, np.ndarray]:
    residual = rng.normal(0, 0.15, (CLIP_FRAMES, 3, 58, 2)).astype(np.float32)
    for onset, _apex, offset, kind, _ in truth:
        if kind != "blink":
            bump = np.hanning(offset - onset + 1).astype("f4")[:, None, None]
            residual[onset : offset + 1, :, :13, 1] -= 2.0 * bump  # brows move up
    residual[~valid] = 0.0
    face = np.stack(np.meshgrid(np.linspace(100, 200, 17), [150.0]), -1).reshape(-1, 2)
    landmarks = np.resize(face, (68, 2)) + np.linspace(0, 60, 68)[:, None] * [0.0, 1.0]
    landmarks_px = np.repeat(landmarks[None], CLIP_FRAMES, 0).astype(np.float32)
    landmarks_px[~valid] = np.nan
    return {
        "node_residual": residual.astype(np.float16),
        "node_valid": np.repeat(valid[:, None], 3, 1),
        "landmarks_px": landmarks_px,
    }


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ScriptedSource:
    """A test source whose reads follow a script: frames, blocks, failures.

    Args:
        n_frames: frames to deliver before the end (None: endless).
        block_at: index at which read() blocks until ``release`` is set.
        fail_at: indices at which read() raises SourceReadError (once each).
        failed_opens: how many reopen attempts fail before one succeeds.
        live: drop-oldest policy and reconnects.
    """

    def __init__(self, n_frames=None, block_at=None, fail_at=(), failed_opens=0, live=False):
        self.name = "scripted"
        self.live = live
        self.n_frames = n_frames
        self.block_at = block_at
        self.fail_at = set(fail_at)
        self.failed_opens = failed_opens
        self.release = threading.Event()
        self.opens = 0
        self.index = 0
        self._produced = 0

    fps = 30.0

    def open(self):
        self.opens += 1
        if self.opens > 1 and self.failed_opens > 0:
            self.failed_opens -= 1
            raise SourceError("still unplugged")
        self.index = 0  # a reopened device starts counting again

    def read(self):
        if self._produced in self.fail_at:
            self.fail_at.discard(self._produced)
            raise SourceReadError("unplugged")
        if self.block_at is not None and self._produced == self.block_at:
            self.release.wait()
        if self.n_frames is not None and self._produced >= self.n_frames:
            return None
        image = np.full((8, 8, 3), self._produced % 251, np.uint8)
        frame = SourceFrame(image=image, pts_s=self._produced / 30, index=self.index)
        self.index += 1
        self._produced += 1
        return frame

    def close(self):
        pass

    def counters(self):
        return {}


class Collect:
    """An EventBus sink that keeps events in memory."""

    def __init__(self):
        self.events: list = []

    def write(self, event):
        self.events.append(event)

    def close(self):
        pass

    def statuses(self):
        return [e.status for e in self.events if isinstance(e, StatusEvent)]


# ---- mexlive batch in a subprocess (tests/stream/app/test_batch_*.py) -------------------------
# Fields of a log line that depend on the wall clock or the process, not on the video.
BATCH_VOLATILE = {
    "t_wall", "t_mono_ns", "session", "elapsed_s", "fps", "latency_ms", "stage_latency",
    "frame_latency",
}  # fmt: skip


def run_batch(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    command = [sys.executable, str(REPO / "run_live.py"), "batch", "--no-progress", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=REPO)


def start_batch(*args: str) -> subprocess.Popen:
    command = [sys.executable, str(REPO / "run_live.py"), "batch", "--no-progress", *args]
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO
    )


def log_lines(log: Path) -> list[dict]:
    """A batch log's lines without their wall-clock fields."""
    return [
        {k: v for k, v in json.loads(line).items() if k not in BATCH_VOLATILE}
        for line in log.read_text().splitlines()
    ]


def partial_files(out: Path) -> list[Path]:
    """What running or killed workers left under temporary names."""
    return sorted(out.glob(".*.partial*"))


def train_args(feature_dir, out, epochs=2, input_kind="raw"):
    """engines.train.spotter arguments for the tiny clips: c.jpg validates, small crops."""
    return [
        "--input",
        input_kind,
        "--features",
        str(feature_dir),
        "--val-identities",
        "c.jpg",
        "--out",
        str(out),
        "--epochs",
        str(epochs),
        "--seed",
        "3",
        "--crop-min",
        "60",
        "--crop-max",
        "120",
        "--batch",
        "4",
    ]


def write_node_clips(folder: Path) -> Path:
    """Four node-feature clips in ``folder``: identities a.jpg (two), b.jpg and c.jpg, so a
    node spotter can train on a/b and validate on c."""
    folder.mkdir()
    for i, identity in enumerate(["a.jpg", "a.jpg", "b.jpg", "c.jpg"]):
        write_clip(folder / f"clip_{i:04d}.npz", identity, i, nodes=True)
    return folder


# ---- synthetic landmark faces (engines.context, engines.blink_runs) ----------------------

IOD_PX = 90.0  # the synthetic face's inter-ocular distance
JITTER_PX = 0.2  # landmark noise on the synthetic faces (dlib after smoothing, 90 px IOD)
UPPER_LIDS, LOWER_LIDS = [37, 38, 43, 44], [41, 40, 47, 46]
FRAME_RATES = [12.0, 30.0, 200.0]  # the context tests' rates: a slow webcam to a fast camera


def synthetic_clip(
    seconds: float, fps: float, pose: Callable[[float, np.ndarray], None], seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(landmarks (L, 68, 2), t_s (L,), valid (L,)): the canonical face, moved by ``pose``
    (which edits one frame's landmarks in place at time t), plus jitter."""
    t_s = np.arange(round(seconds * fps)) / fps  # (L,)
    base = CANONICAL_68.astype(np.float64) * IOD_PX + (320.0, 240.0)  # (68, 2)
    landmarks = np.repeat(base[None], len(t_s), axis=0)  # (L, 68, 2)
    for i, t in enumerate(t_s):
        pose(float(t), landmarks[i])
    landmarks += np.random.default_rng(seed).normal(0, JITTER_PX, landmarks.shape)
    return landmarks, t_s, np.ones(len(t_s), bool)


def close_eyes(lm: np.ndarray, closed: float) -> None:
    """Move the lids towards each other: the eye aperture drops by ``closed`` (0-1)."""
    shift = closed * (lm[LOWER_LIDS] - lm[UPPER_LIDS]) / 2  # (4, 2)
    lm[UPPER_LIDS] += shift
    lm[LOWER_LIDS] -= shift


def bump_trace(t: np.ndarray, intervals: list[tuple[float, float, float]]) -> np.ndarray:
    """The spotter's training target on times ``t`` (s): a Gaussian of σ = length/4 at each
    (onset, apex, offset) apex, the max where they overlap."""
    score = np.zeros_like(t)
    for onset, apex, offset in intervals:
        sigma = (offset - onset) / 4
        score = np.maximum(score, np.exp(-0.5 * ((t - apex) / sigma) ** 2))
    return score
