"""Speed of the Gradio preview in both modes, in a real browser (Debian's Chromium + Playwright).

- server source: the synthetic face at 30 frames/s (paced like a camera) analysed on the server
  while the page shows it; goal: every frame analysed (display frames may be dropped).
- browser webcam: Chromium's fake camera plays a synthetic clip (15 fps, frame-coded); the page
  streams it to the server; goal: every frame that arrives is analysed.

Measured per mode: frames in and analysed per second (steady state, after a warm-up), frames
dropped, capture → analysed latency, capture → annotated frame handed to the page, and in the
browser: the round trip from the page sending a frame to the annotated reply being loaded
(browser mode) or how often the annotated image changes on the page (server mode).

    python benchmarks/bench_preview.py [--seconds 20] [--modes browser,server]
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stream.framecode import write_coded_clip
from stream.preview import BROWSER_MODE, PreviewConfig, build_app, launch
from stream.preview_session import PreviewSession, SessionConfig
from stream.synthetic import SyntheticConfig

CHROMIUM = "/usr/bin/chromium"
CLIP = SyntheticConfig(seed=2, fps=15.0, width=480, height=360, face_height_px=160)
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run",
        "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]  # fmt: skip
# Times (performance.now, ms) of each frame the page sends and each annotated image it loads.
INSTRUMENT = """
window.__posts = []; window.__loads = [];
const fetch0 = window.fetch;
window.fetch = function (input, init) {
  const url = typeof input === 'string' ? input : input.url;
  if (url.includes('/stream/') && !url.endsWith('/close')) window.__posts.push(performance.now());
  return fetch0.apply(this, arguments);
};
document.addEventListener('load', (e) => {
  if (e.target.tagName === 'IMG' && e.target.closest('#annotated'))
    window.__loads.push(performance.now());
}, true);
"""


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{cpu}, {os.cpu_count()} cores, load average {load:.1f} at start, {platform.system()}"


def round_trips(posts: list[float], loads: list[float]) -> np.ndarray:
    """Pair every sent frame with the first annotated image loaded after it (ms)."""
    out, j = [], 0
    for k, t_post in enumerate(posts):
        while j < len(loads) and loads[j] < t_post:
            j += 1
        t_next = posts[k + 1] if k + 1 < len(posts) else float("inf")
        if j < len(loads) and loads[j] <= t_next + 1000:
            out.append(loads[j] - t_post)
            j += 1
    return np.array(out)


def pct(values, q: float) -> str:
    values = np.asarray(values, np.float64)
    return f"{np.percentile(values, q):.0f}" if values.size else "–"


def run_mode(mode: str, seconds: float, warmup_s: float, browser, tmp: Path) -> dict:
    session = PreviewSession(SessionConfig(log_dir=tmp / "logs"))
    session.warm_up()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = PreviewConfig(port=port, session=session.config)
    demo = build_app(session, config)
    url = launch(demo, config)
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    try:
        page.add_init_script(INSTRUMENT)
        page.goto(url)
        if mode == "browser":
            page.get_by_label(BROWSER_MODE).check()
        else:
            page.get_by_label("server source: ").fill("synthetic:5")
        page.get_by_role("button", name="Start", exact=True).click()
        page.get_by_text("analysing ").first.wait_for(timeout=60000)
        if mode == "browser":
            page.get_by_text("Click to Access Webcam").click()
            page.locator('[aria-label="capture photo"]').click(timeout=20000)
        page.wait_for_timeout(warmup_s * 1000)
        before, t0 = _counts(session), time.monotonic()
        page.evaluate("window.__posts = []; window.__loads = [];")
        page.wait_for_timeout(seconds * 1000)
        after, t1 = _counts(session), time.monotonic()
        posts, loads = page.evaluate("[window.__posts, window.__loads]")
        stats = session.stats(window_s=seconds)
    finally:
        page.close()
        session.stop()
        demo.close()
    span = t1 - t0
    trips = round_trips(posts, loads) if mode == "browser" else np.array([])
    return {
        "mode": "browser webcam" if mode == "browser" else "server source",
        "source": "Chromium fake camera, 15 fps clip" if mode == "browser" else "synthetic 30 fps",
        "in_fps": (after[0] - before[0]) / span,
        "analysed_fps": (after[1] - before[1]) / span,
        "dropped": after[2] - before[2],
        "stats": stats,
        "page_updates": len(loads) / span,
        "trips": trips,
    }


def _counts(session: PreviewSession) -> tuple[int, int, int]:
    s = session.stats()
    return s.captured, s.processed, s.dropped


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="measured span per mode")
    parser.add_argument("--warmup", type=float, default=4.0, help="seconds before measuring")
    parser.add_argument("--modes", default="server,browser")
    args = parser.parse_args()
    if not Path(CHROMIUM).is_file():
        print(f"bench_preview: {CHROMIUM} not found (apt-get install chromium)", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    header = machine()
    rows = []
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        clip = tmp / "face.y4m"
        seconds_of_clip = args.warmup + args.seconds + 15
        write_coded_clip(clip, CLIP, round(seconds_of_clip * CLIP.fps))
        fake = f"--use-file-for-fake-video-capture={clip}"
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=[*ARGS, fake])
            try:
                for mode in args.modes.split(","):
                    rows.append(run_mode(mode.strip(), args.seconds, args.warmup, browser, tmp))
            finally:
                browser.close()
    print(f"Machine: {header}; Chromium headless; {args.seconds:g} s per mode after "
          f"{args.warmup:g} s warm-up\n")  # fmt: skip
    print("| mode | source | frames in/s | analysed/s | dropped | capture→analysed ms "
          "(median / p99) | capture→sent to page ms (median / p99) | page image updates/s "
          "| browser round trip ms (median / p99, n) |")  # fmt: skip
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        s, trips = row["stats"], row["trips"]
        trip = f"{pct(trips, 50)} / {pct(trips, 99)} (n={trips.size})" if trips.size else "–"
        print(f"| {row['mode']} | {row['source']} | {row['in_fps']:.1f} | "
              f"{row['analysed_fps']:.1f} | {row['dropped']} | {s.latency_ms:.0f} / "
              f"{s.latency_p99_ms:.0f} | {s.display_ms:.0f} / {s.display_p99_ms:.0f} | "
              f"{row['page_updates']:.1f} | {trip} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
