"""dlib face models: the HOG detector and the 68-point predictor shipped by face_recognition_models.

The predictor file is located with ``importlib.util.find_spec`` because importing
``face_recognition_models`` pulls in ``pkg_resources``, which current setuptools no longer has.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path

import numpy as np

from stream.errors import MexliveError

PREDICTOR_68 = "shape_predictor_68_face_landmarks.dat"


def model_path(name: str = PREDICTOR_68) -> Path:
    """Path of a model file inside the installed face_recognition_models package."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise MexliveError(
            "face_recognition_models is not installed; run `make demo` or "
            "`pip install face_recognition_models`"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / name
    if not path.is_file():
        raise MexliveError(f"dlib model file missing: {path}")
    return path


# dlib's objects are not safe to use from two threads at once (seen: heap corruption with 3
# streams on one). A FaceTracker owns its own pair (``new_detector``/``new_predictor``), used by
# one thread at a time; the helpers below keep one pair per thread.
_per_thread = threading.local()


def new_detector():
    """A fresh HOG face detector (~0.25 s to build)."""
    import dlib

    return dlib.get_frontal_face_detector()


def new_predictor():
    """A fresh 68-point predictor (~0.5 s: 100 MB of trees to read)."""
    import dlib

    return dlib.shape_predictor(str(model_path()))


def frontal_detector():
    if not hasattr(_per_thread, "detector"):
        _per_thread.detector = new_detector()
    return _per_thread.detector


def landmark_predictor():
    if not hasattr(_per_thread, "predictor"):
        _per_thread.predictor = new_predictor()
    return _per_thread.predictor


def detect_largest_face(
    image_rgb: np.ndarray, upsample: int = 1
) -> tuple[int, int, int, int] | None:
    """Largest frontal face as (left, top, right, bottom) in pixels, or None.

    Among equal-sized candidates the detector's most confident one wins.
    """
    rects, scores, _ = frontal_detector().run(image_rgb, upsample, 0.0)
    if not rects:
        return None
    best = max(zip(rects, scores, strict=True), key=lambda rs: (rs[0].area(), rs[1]))[0]
    return best.left(), best.top(), best.right(), best.bottom()


def landmarks_68(image_rgb: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The 68 dlib landmarks inside ``box`` as float32 (68, 2) pixel coordinates (x, y)."""
    import dlib

    rect = dlib.rectangle(*(int(v) for v in box))
    shape = landmark_predictor()(image_rgb, rect)
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)  # (68, 2)
