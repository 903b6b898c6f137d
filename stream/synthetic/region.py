"""What every deformation family of the animator shares: the warped region and its anchors.

A warper renders driven landmarks by a *backward* map over a square region around the face:
each region pixel gets the photo position it shows. ``RegionWarper`` holds what does not depend
on the family: the ring of 16 anchors at ``RING_SCALE`` face heights that never move, the
region (the ring plus a margin where a raised-cosine taper brings any displacement to zero, so
nothing outside the region moves), the eyelid map of the blink (composed after the family's
map), and ``warp`` / ``full_maps``. A family (``tps.TpsWarper``, ``deform.MeshWarper``,
``deform.KernelWarper``) implements ``_displacement``: px displacement of every region pixel.
"""

from __future__ import annotations

import cv2
import numpy as np

from stream.synthetic.au import EyelidMap

RING_SCALE = 1.7  # fixed anchors on a square this many face heights wide
COARSE_STEP = 6  # the TPS's coarse grid step, px: the region is whole cells of it


class RegionWarper:
    """Backward warp of the face region: the shared geometry and buffers of every family.

    Args:
        rest: rest landmarks (68, 2) float64 in the output frame (the photo's own).
        centre: (2,) centre of the anchor ring, px.
        face_height_px: the face box height; the ring and the region scale with it.
        size: (width, height) of the output frame.
    """

    def __init__(
        self, rest: np.ndarray, centre: np.ndarray, face_height_px: float, size: tuple[int, int]
    ) -> None:
        self.rest = rest  # (68, 2) float64
        self.eyelids = EyelidMap(rest)
        self.centre, self.scale, self.size = centre, float(face_height_px), size
        self.ring = ring = RING_SCALE / 2 * self.scale  # anchor square half-side
        side = np.array([-1.0, -0.5, 0.0, 0.5]) * ring  # (4,) per side, corner first
        ones = np.full(4, ring)
        self.anchors_px = centre + np.concatenate(
            [
                np.stack([side, -ones], 1),
                np.stack([ones, side], 1),
                np.stack([-side, ones], 1),
                np.stack([-ones, -side], 1),
            ]
        )  # (16, 2) never move
        self._anchors = (self.anchors_px - centre) / self.scale  # (16, 2)
        self.reach = ring + 0.15 * self.scale  # region half-side; the taper lives beyond the ring
        self._edge = self.reach - COARSE_STEP / 2  # outermost coarse samples: displacement 0
        x0, y0, gw, gh = self._cells(centre - self.reach, centre + self.reach, COARSE_STEP)
        self.x0, self.y0 = x0, y0
        self.x1, self.y1 = x0 + gw * COARSE_STEP, y0 + gh * COARSE_STEP
        rx, ry = np.meshgrid(np.arange(self.x0, self.x1), np.arange(self.y0, self.y1))
        self._identity = np.stack([rx, ry], 2).astype(np.float32)  # (rh, rw, 2)
        self._map = np.empty_like(self._identity)  # (rh, rw, 2) absolute source coordinates
        self._region = np.empty((self.y1 - self.y0, self.x1 - self.x0, 3), np.uint8)
        # Region pixels whose source can fall in an eye box: the eye's rest box, the lid skin
        # above it, and a margin for head motion (drift + jerk < 8 px).
        self._eye_boxes = []
        for eye in (rest[36:42], rest[42:48]):
            lo, hi = eye.min(axis=0), eye.max(axis=0)  # (2,), (2,)
            lo = np.floor(lo - (12, 12 + 0.6 * (hi[0] - lo[0]))).astype(int) - (self.x0, self.y0)
            hi = np.ceil(hi + 12).astype(int) - (self.x0, self.y0)
            (x0, y0), (x1, y1) = np.maximum(lo, 0), np.maximum(hi, 0)
            self._eye_boxes.append((slice(y0, y1), slice(x0, x1)))

    def _cells(self, lo: np.ndarray, hi: np.ndarray, step: int) -> tuple[int, int, int, int]:
        """(x0, y0, columns, rows) of whole ``step`` cells over the box [lo, hi) in the frame."""
        (x0, y0) = np.maximum(np.floor(lo).astype(int), 0)
        x1, y1 = np.minimum(np.ceil(hi).astype(int), self.size)
        gw, gh = (x1 - x0) // step, (y1 - y0) // step
        if min(gw, gh) < 4:
            raise ValueError("frame too small for the face")
        return int(x0), int(y0), int(gw), int(gh)

    def taper(self, gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
        """Gain (...) on a displacement at pixels (gx, gy): 1 inside the ring, falling as a
        raised cosine to 0 at the region's outermost coarse samples (and beyond)."""
        ring, centre = self.ring, self.centre
        u = np.clip(
            (np.abs(np.stack([gx, gy])) - centre[:, None, None] - ring) / (self._edge - ring),
            0.0,
            1.0,
        )  # (2, gh, gw)
        return np.prod(0.5 * (1.0 + np.cos(np.pi * u)), axis=0)  # raised cosine

    def _displacement(
        self, driven: np.ndarray, moving: np.ndarray | None
    ) -> np.ndarray:  # pragma: no cover - each family overrides it
        """px displacement (rh, rw, 2) float32 of every region pixel: source minus pixel."""
        raise NotImplementedError

    def region_map(
        self, driven: np.ndarray, blink: float = 0.0, moving: np.ndarray | None = None
    ) -> np.ndarray | None:
        """Source coordinates (rh, rw, 2) float32 of every region pixel, None for identity.

        Args:
            driven: landmark positions (68, 2) without the blink (head motion + expression).
            blink: how far the lids are closed, 0..1, composed after the family's map.
            moving: where the expression moved landmarks (K, 2), driven and rest positions:
                a family may refine its map only around them (the TPS's fine grid).
        """
        if np.array_equal(driven, self.rest):  # nothing moves but maybe the lids: no warp
            if blink == 0.0:
                return None
            np.copyto(self._map, self._identity)
        else:
            np.add(self._identity, self._displacement(driven, moving), out=self._map)
        for box in self._eye_boxes if blink > 0.0 else ():
            self.eyelids.apply(self._map[box], blink)
        return self._map

    def warp(self, neutral: np.ndarray, out: np.ndarray, *args) -> None:
        """Render ``neutral`` into ``out`` with the map of ``region_map(*args)``."""
        np.copyto(out, neutral)
        region = self.region_map(*args)
        if region is not None:
            cv2.remap(
                neutral,
                region,
                None,
                cv2.INTER_LINEAR,
                dst=self._region,
                borderMode=cv2.BORDER_REPLICATE,
            )
            out[self.y0 : self.y1, self.x0 : self.x1] = self._region

    def full_maps(self, *args) -> tuple[np.ndarray, np.ndarray]:
        """(map_x, map_y) (H, W) float32 of ``region_map(*args)`` over the whole frame."""
        width, height = self.size
        map_x, map_y = np.meshgrid(
            np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32)
        )  # (H, W) each
        region = self.region_map(*args)
        if region is not None:
            map_x[self.y0 : self.y1, self.x0 : self.x1] = region[..., 0]
            map_y[self.y0 : self.y1, self.x0 : self.x1] = region[..., 1]
        return map_x, map_y
