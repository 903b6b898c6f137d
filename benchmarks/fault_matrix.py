"""The fault matrix as a table: each fault of stream/live/drill.py's MATRIX (the one
tests/system/test_faults.py checks), one run each, against the fault-free run of the same
synthetic clip.

Usage (from the repository root):
    python -m benchmarks.fault_matrix
"""

from __future__ import annotations

import time

from stream.live.drill import AT, CLIP, FPS, MATRIX, N_FRAMES, SETTLE_S, found_again, run_drill


def main() -> None:
    clean = run_drill(CLIP, N_FRAMES)
    print(
        "| fault | events outside the window found | dropped (cause) | seq missing | "
        "timestamps repaired | reconnects | stop() s | run s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, (faults, last_frame) in MATRIX.items():
        t0 = time.monotonic()
        run = run_drill(CLIP, N_FRAMES, faults)
        wall_s = time.monotonic() - t0
        start_s, end_s = AT / FPS, last_frame / FPS + SETTLE_S
        outside = [e for e in clean.events if e.offset_s < start_s or e.onset_s > end_s]
        found = sum(found_again(e, run.events) for e in outside)
        stopped = run.statuses[-1].detail
        stamps = stopped["timestamps"]
        print(
            f"| {name} | {found}/{len(outside)} | {run.summary.dropped or '-'} | "
            f"{stopped['seq_missing']} | {stamps['non_monotonic']} ({stamps['rebased']} rebased) "
            f"| {run.reconnects} | {run.stop_s:.2f} | {wall_s:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
