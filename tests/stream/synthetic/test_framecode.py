"""Frame codes: read back exactly, through JPEG, and never from a mirrored frame."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from stream.synthetic.framecode import BITS, draw_frame_code, read_frame_code


def _face_like(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur(rng.integers(0, 256, (240, 320, 3), np.uint8), (9, 9), 3)


@pytest.mark.parametrize("index", [0, 1, 5, 1234, (1 << BITS) - 1])
def test_code_reads_back_through_jpeg(index):
    image = draw_frame_code(_face_like(index), index)
    assert read_frame_code(image) == index
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 60])  # browsers send q80
    assert ok and read_frame_code(cv2.imdecode(jpeg, cv2.IMREAD_COLOR)) == index
    assert read_frame_code(np.ascontiguousarray(image[..., ::-1])) == index  # RGB too


@pytest.mark.parametrize("index", [0, 7, 300, 9999])
def test_mirrored_or_missing_code_reads_none(index):
    image = draw_frame_code(_face_like(index), index)
    assert read_frame_code(np.ascontiguousarray(image[:, ::-1])) is None  # mirrored
    assert read_frame_code(_face_like(index)) is None  # no code at all
    assert read_frame_code(image[:10, :10]) is None  # too small to hold one


def test_index_out_of_range_is_refused():
    with pytest.raises(ValueError):
        draw_frame_code(_face_like(0), 1 << BITS)
