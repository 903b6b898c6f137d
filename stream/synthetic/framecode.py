"""A frame counter drawn into video frames as a barcode, readable after JPEG and detectably
mirrored: how the browser tests know which clip frame reached the server and which way round.

The code is a row of ``BITS + 5`` square cells along the top-left corner: an asymmetric start
pattern (white, black, white, white, black), the frame index in ``BITS`` bits (most significant
first) and one even-parity bit. A mirrored frame puts the row at the top right, reversed, so
reading the top left finds no start pattern and gives None. The index is also written as text
below the row for people looking at screenshots.

Example:
    draw_frame_code(frame_bgr, 123)
    assert read_frame_code(frame_bgr) == 123
    assert read_frame_code(frame_bgr[:, ::-1]) is None  # mirrored
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    from stream.synthetic.animator import SyntheticConfig, TruthEvent

BITS = 14  # frame indices up to 16383 (9 minutes at 30 fps)
START = (1, 0, 1, 1, 0)  # asymmetric: reversed it reads 0, 1, 1, 0, 1
CELL = 12  # px per cell side
ORIGIN = (8, 8)  # (x, y) of the first cell's top-left corner
WHITE, BLACK = 235, 20


def code_cells(index: int) -> list[int]:
    """The cell values (1 white, 0 black) that encode ``index``."""
    if not 0 <= index < 1 << BITS:
        raise ValueError(f"frame index {index} does not fit in {BITS} bits")
    bits = [(index >> (BITS - 1 - k)) & 1 for k in range(BITS)]
    return [*START, *bits, sum(bits) % 2]


def draw_frame_code(image: np.ndarray, index: int) -> np.ndarray:
    """Draw the code of ``index`` in place on a BGR (H, W, 3) uint8 frame; returns it."""
    x0, y0 = ORIGIN
    cells = code_cells(index)
    pad = 4
    image[y0 - pad : y0 + CELL + pad, x0 - pad : x0 + len(cells) * CELL + pad] = BLACK
    for k, value in enumerate(cells):
        x = x0 + k * CELL
        image[y0 : y0 + CELL, x : x + CELL] = WHITE if value else BLACK
    text_y = y0 + CELL + pad + 18
    cv2.rectangle(image, (x0 - pad, y0 + CELL + pad), (x0 + 90, text_y + 6), (0, 0, 0), -1)
    cv2.putText(image, f"#{index}", (x0, text_y), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1)
    return image


def read_frame_code(image: np.ndarray) -> int | None:
    """The index coded in a BGR or RGB frame's top-left corner, or None (no code, mirrored,
    or damaged: the start pattern or the parity does not match)."""
    x0, y0 = ORIGIN
    n = len(START) + BITS + 1
    if image.shape[0] < y0 + CELL or image.shape[1] < x0 + n * CELL:
        return None
    row = image[y0 + 3 : y0 + CELL - 3, x0 : x0 + n * CELL].astype(np.float32)  # (6, n*CELL, C)
    grey = row.mean(axis=2) if row.ndim == 3 else row
    # Each cell's centre 6x6 px: JPEG ringing stays at the cell edges.
    centres = grey.reshape(grey.shape[0], n, CELL)[:, :, 3 : CELL - 3].mean(axis=(0, 2))  # (n,)
    cells = (centres > (WHITE + BLACK) / 2).astype(int).tolist()
    if tuple(cells[: len(START)]) != START:
        return None
    bits = cells[len(START) : len(START) + BITS]
    if sum(bits) % 2 != cells[-1]:
        return None
    if np.min(np.abs(centres - (WHITE + BLACK) / 2)) < 40:  # a cell that is neither: not a code
        return None
    return int("".join(map(str, bits)), 2)


def write_coded_clip(path: str | Path, config: SyntheticConfig, n_frames: int) -> list[TruthEvent]:
    """Render frames [0, n_frames) of the synthetic animator with each frame's code drawn on it
    to a .y4m (Chromium's fake camera reads it) and return the truth events wholly inside."""
    from stream.synthetic.animator import FaceAnimator
    from stream.synthetic.writers import Y4MWriter

    animator = FaceAnimator(config)
    frame = np.empty((config.height, config.width, 3), np.uint8)  # (H, W, 3) reused
    with Y4MWriter(path, config.width, config.height, config.fps) as sink:
        for index in range(n_frames):
            sink.write(draw_frame_code(animator.render(index, frame), index))
    return [e for e in animator.events_between(0, n_frames) if e.offset < n_frames]
