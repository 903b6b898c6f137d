"""Identities of a synthetic data set: photo names and frames of real videos → photo paths.

A data set animates many faces (design.md: "photos and frames of every real video"). Each is
named by a string that is recorded as the clip's ``identity``:

    astronaut           scikit-image's astronaut
    lp_d9.jpg           a photo in the fixtures' photos folder (or any existing path)
    st_rd2.mp4@1.5      the frame shown at 1.5 s of the fixtures video st_rd2.mp4 (or any
                        existing video path): decoded with ``stream.synthetic.decode.VideoReader``
                        into a PNG in a cache folder outside the repository, then used as a photo

Fixtures resolve against $MEXLIVE_FIXTURES/{photos,videos}, else ../shared/fixtures beside the
repository. Every identity is resolved and its face found before any clip is rendered, so a
bad name or a faceless frame is one clear ``MexliveError`` at the start.

Example:
    path = resolve_identity("st_rd2.mp4@1.5")  # /tmp/mexlive_frames/st_rd2_1.5_<hash>.png
    check_face("st_rd2.mp4@1.5", path)
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import cv2
import numpy as np

from stream.datasets.featurize import fixtures_dir
from stream.errors import MexliveError

ASTRONAUT = "astronaut"
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".y4m")


def _fixtures_dir(kind: str) -> Path:
    return fixtures_dir() / kind


def fixtures_photos_dir() -> Path:
    """$MEXLIVE_FIXTURES/photos, else ../shared/fixtures/photos beside the repository."""
    return _fixtures_dir("photos")


def fixtures_videos_dir() -> Path:
    """$MEXLIVE_FIXTURES/videos, else ../shared/fixtures/videos beside the repository."""
    return _fixtures_dir("videos")


def frame_cache_dir() -> Path:
    """Where extracted video frames are kept: $MEXLIVE_FRAME_CACHE, else a temp folder."""
    return Path(
        os.environ.get("MEXLIVE_FRAME_CACHE") or Path(tempfile.gettempdir()) / "mexlive_frames"
    )


def _find(name: str, folder: Path, what: str) -> Path:
    """An existing path as is, else ``folder / name``; MexliveError listing the folder."""
    if Path(name).is_file():
        return Path(name).resolve()
    path = folder / name
    if path.is_file():
        return path
    known = sorted(p.name for p in folder.glob("*")) if folder.is_dir() else []
    if what == "photo":
        known = [ASTRONAUT, *known]
    hint = f" (known: {', '.join(known)})" if known else f" ({folder} is missing)"
    raise MexliveError(f"{what} {name!r} not found in {folder}{hint}")


def resolve_photo(name: str) -> str | None:
    """A photo name → the path FaceAnimator wants (None for ``astronaut``).

    A bare name is looked up in the fixtures' photos folder; a path that exists is used as is.
    Raises MexliveError when it is neither.
    """
    if name == ASTRONAUT:
        return None
    return str(_find(name, fixtures_photos_dir(), "photo"))


def parse_video_frame(name: str) -> tuple[str, float] | None:
    """``"VIDEO@SECONDS"`` → (video, seconds); None when ``name`` names no video frame."""
    video, sep, at = name.rpartition("@")
    if not sep or not video.lower().endswith(VIDEO_SUFFIXES):
        return None
    try:
        seconds = float(at)
    except ValueError:
        raise MexliveError(
            f"bad video frame {name!r}: use VIDEO@SECONDS, e.g. st_rd2.mp4@1.5"
        ) from None
    if not seconds >= 0:  # also refuses nan
        raise MexliveError(f"bad video frame {name!r}: the time must be >= 0 s")
    return video, seconds


def resolve_identity(name: str) -> str | None:
    """An identity name (photo, ``astronaut`` or ``VIDEO@SECONDS``) → a photo path (None for
    the astronaut); a video frame is extracted once into ``frame_cache_dir()``."""
    frame = parse_video_frame(name)
    if frame is None:
        return resolve_photo(name)
    video = _find(frame[0], fixtures_videos_dir(), "video")
    return str(extract_frame(video, frame[1]))


def extract_frame(video: Path, seconds: float) -> Path:
    """PNG of the frame shown at ``seconds`` (the last whose timestamp is <= it), cached by
    the video's path, size and modification time."""
    stat = video.stat()
    key = f"{video.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{seconds!r}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    path = frame_cache_dir() / f"{video.stem}_{seconds:g}_{digest}.png"
    if path.is_file():
        return path
    from stream.synthetic.decode import VideoReader

    shown: np.ndarray | None = None
    last_s = 0.0
    with VideoReader(video) as reader:
        fps = reader.fps or 30.0
        while (frame := reader.read()) is not None:
            last_s = frame.pts_s if frame.pts_s is not None else frame.index / fps
            if last_s > seconds + 1e-6:
                break
            shown = frame.image  # (H, W, 3) BGR
    if shown is None or seconds > last_s + 1.0 / fps:
        raise MexliveError(
            f"video {video} has no frame at {seconds:g} s (it ends at {last_s:.2f} s)"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.stem}.{os.getpid()}.part.png")
    if not cv2.imwrite(str(partial), shown):
        raise MexliveError(f"cannot write the extracted frame to {partial}")
    partial.replace(path)  # another process extracting the same frame writes the same bytes
    return path


def check_face(identity: str, photo: str | None) -> None:
    """Find the face of one identity now (cached in-process for the animator): a photo or
    frame without one is a ``MexliveError`` naming the identity and its file."""
    if photo is None:
        return
    from stream.synthetic.tps import photo_landmarks

    bgr = cv2.imread(photo, cv2.IMREAD_COLOR)
    if bgr is None:
        raise MexliveError(f"cannot read photo {photo} ({identity})")
    # The animator's name for the landmark cache: the resolved path (animator._load_photo).
    name = str(Path(photo).resolve())
    try:
        photo_landmarks(np.ascontiguousarray(bgr[..., ::-1]), name)
    except MexliveError:
        where = identity if identity == photo else f"{identity} ({photo})"
        raise MexliveError(f"no face found in {where}") from None
