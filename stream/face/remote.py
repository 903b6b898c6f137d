"""FaceTracker in a process of its own: the only way the second core runs dlib.

dlib's 68-point predictor and its model load hold the GIL (measured: docs/benchmarks.md "End
to end"), so a second thread cannot align while the first computes features. A process can.
``AlignProcess`` has FaceTracker's interface (``update``, ``reset``) and runs a real
FaceTracker in a child process: each ``update`` copies the frame into a shared-memory slot,
sends a few numbers down a pipe and waits for the AlignedFace (a 160×160 face and three
small arrays, pickled). The caller waits with the GIL released, so with the pipeline's two
stage threads the features and the spotter of frame t run while the child aligns frame t+1.
It is the same tracker code on the same pixels: the AlignedFace is identical, bit for bit
(``tests/stream/face/test_remote.py``).

The child starts at construction (``spawn``: safe beside threads) and loads the dlib models
while this process loads the rest; ``wait_ready`` joins the two. A child that dies is an
``AlignProcessError`` on the next ``update``; ``close`` ends it within a second.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
from multiprocessing import shared_memory
from typing import Any

import numpy as np

from stream.contracts import AlignedFace
from stream.errors import MexliveError

READY_TIMEOUT_S = 60.0  # a cold machine loading dlib's models from disk; normally ~1 s


class AlignProcessError(MexliveError):
    """The alignment process could not start, or died."""


def _serve(conn, config) -> None:
    """The child: one FaceTracker; requests until "close" or the parent goes away."""
    try:
        from stream.face.align import FaceTracker

        tracker = FaceTracker(config)
    except Exception as exc:  # reported to the parent as one line, then the child ends
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", None))
    memory: shared_memory.SharedMemory | None = None
    try:
        while True:
            try:
                request = conn.recv()
            except EOFError:
                return  # the parent is gone
            op = request[0]
            if op == "update":
                _, name, shape, seq, t_mono_ns, t_s = request
                if memory is None or memory.name != name:
                    if memory is not None:
                        memory.close()
                    # The parent owns it and unlinks it (spawn shares its resource tracker).
                    memory = shared_memory.SharedMemory(name=name)
                count = int(np.prod(shape))
                image = np.ndarray(shape, np.uint8, buffer=memory.buf[:count])  # (H, W, 3)
                aligned = tracker.update(image, seq, t_mono_ns, t_s)
                del image  # no view of the buffer may outlive the request
                conn.send(("aligned", aligned))
            elif op == "reset":
                tracker.reset()
                conn.send(("reset", None))
            else:
                return
    finally:
        if memory is not None:
            memory.close()


class AlignProcess:
    """FaceTracker's ``update`` / ``reset`` answered by a child process.

    Args:
        config: the child's TrackerConfig (None: the defaults).
    """

    def __init__(self, config=None) -> None:
        context = mp.get_context("spawn")
        self._conn, child_conn = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(child_conn, config), name="mexlive-align", daemon=True
        )
        self._process.start()
        child_conn.close()
        self._memory: shared_memory.SharedMemory | None = None
        self._ready = False

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Block until the child has loaded its models; AlignProcessError if it could not."""
        if self._ready:
            return
        if not self._conn.poll(timeout_s):
            self.close()
            raise AlignProcessError(f"the alignment process did not start in {timeout_s:g} s")
        kind, detail = self._receive()
        if kind != "ready":
            self.close()
            raise AlignProcessError(f"the alignment process could not start: {detail}")
        self._ready = True

    def update(
        self, image_bgr: np.ndarray, seq: int, t_mono_ns: int, t_s: float | None = None
    ) -> AlignedFace:
        """FaceTracker.update on the child, for a BGR uint8 (H, W, 3) frame."""
        self.wait_ready()
        image = np.ascontiguousarray(image_bgr, np.uint8)
        memory = self._slot(image.nbytes)
        np.ndarray(image.shape, np.uint8, buffer=memory.buf[: image.nbytes])[...] = image
        t_s = t_mono_ns / 1e9 if t_s is None else t_s
        kind, aligned = self._call(("update", memory.name, image.shape, seq, t_mono_ns, t_s))
        assert kind == "aligned"
        return aligned

    def reset(self) -> None:
        self.wait_ready()
        self._call(("reset",))

    def _slot(self, nbytes: int) -> shared_memory.SharedMemory:
        """The shared frame buffer, grown when a frame is larger (a new source resolution)."""
        if self._memory is None or self._memory.size < nbytes:
            old, self._memory = self._memory, shared_memory.SharedMemory(create=True, size=nbytes)
            if old is not None:
                old.close()
                old.unlink()
        return self._memory

    def _call(self, request: tuple) -> tuple[str, Any]:
        try:
            self._conn.send(request)
        except (BrokenPipeError, OSError):
            raise self._died() from None
        return self._receive()

    def _receive(self) -> tuple[str, Any]:
        try:
            return self._conn.recv()
        except (EOFError, OSError):
            raise self._died() from None

    def _died(self) -> AlignProcessError:
        self._process.join(0.5)
        return AlignProcessError(f"the alignment process died (exit code {self._process.exitcode})")

    @property
    def alive(self) -> bool:
        return self._process.is_alive()

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def close(self, timeout_s: float = 1.0) -> None:
        """End the child (asked, then killed if it does not go within ``timeout_s``)."""
        if self._process.is_alive():
            with contextlib.suppress(BrokenPipeError, OSError):
                self._conn.send(("close",))
            self._process.join(timeout_s / 2)
            if self._process.is_alive():
                self._process.kill()
                self._process.join(timeout_s / 2)
        self._conn.close()
        if self._memory is not None:
            self._memory.close()
            self._memory.unlink()
            self._memory = None
