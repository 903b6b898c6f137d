"""Speed of the Gradio preview in both modes, in a real browser (Debian's Chromium + Playwright).

- headless: the same session with no page, the synthetic face as fast as it renders: the
  analysis rate of this machine, the baseline.
- server-max: the same with the page open and showing it: what the display costs the analysis.
- server: the synthetic face paced at 30 frames/s like a camera, page open; goal: every frame
  analysed at the full rate (display frames may be dropped).
- browser: Chromium's fake camera plays a synthetic clip (15 fps, frame-coded); the page
  streams it to the server, which shows the newest analysed frame on its timer (the default);
  goal: every frame that reaches the server is analysed.
- browser-reply: the same, but each stream step replies with its own frame, annotated.

Measured per mode: frames the page posted, frames in and analysed per second (steady state,
after a warm-up), frames dropped, capture → analysed latency, capture → annotated frame handed
to the page, annotated images loaded by the page per second, and (browser modes) the round
trip from the page sending a frame to that frame, annotated, loaded in the page — matched by
the frame code in its pixels (stream/synthetic/framecode.py). ``--repeats`` runs the modes in turn
again.

    python -m benchmarks.bench_preview [--seconds 20] [--repeats 1] [--modes headless,...]
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

from benchmarks.machine_info import cpu_name
from stream.errors import EXIT_BAD_INPUT
from stream.live.builder import LiveConfig, OpenOptions
from stream.synthetic.animator import SyntheticConfig
from stream.synthetic.framecode import write_coded_clip
from stream.ui.preview import BROWSER_MODE, PreviewConfig, build_app, launch
from stream.ui.preview_session import PreviewSession, SessionConfig

CHROMIUM = "/usr/bin/chromium"
CLIP = SyntheticConfig(seed=2, fps=15.0, width=480, height=360, face_height_px=160)
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
]
# In the page: the time (performance.now, ms) each frame code is sent and each annotated image
# with a frame code is loaded, read from the pixels as stream/synthetic/framecode.py does;
# ``__posts``
# counts every frame sent (codes or not).
INSTRUMENT = """
window.__sent = {}; window.__shown = {}; window.__posts = 0; window.__loads = 0;
function readCode(img) {
  const c = document.createElement('canvas'); c.width = 260; c.height = 20;
  const g = c.getContext('2d'); g.drawImage(img, 0, 0);
  const px = g.getImageData(0, 0, 260, 20).data, cells = [];
  for (let k = 0; k < 20; k++) {
    let sum = 0;
    for (let y = 11; y < 17; y++) for (let x = 8 + k * 12 + 3; x < 8 + k * 12 + 9; x++) {
      const i = (y * 260 + x) * 4; sum += (px[i] + px[i + 1] + px[i + 2]) / 3;
    }
    cells.push(sum / 36 > 127.5 ? 1 : 0);
  }
  if (cells.slice(0, 5).join('') !== '10110') return null;
  const bits = cells.slice(5, 19);
  if (bits.reduce((a, b) => a + b, 0) % 2 !== cells[19]) return null;
  return parseInt(bits.join(''), 2);
}
const fetch0 = window.fetch;
window.fetch = function (input, init) {
  const url = typeof input === 'string' ? input : input.url;
  if (url.includes('/stream/') && !url.endsWith('/close') && init && init.body) {
    const t = performance.now(); window.__posts++;
    const m = String(init.body).match(/data:image\\/jpeg;base64,[A-Za-z0-9+\\/=]+/);
    if (m) { const img = new Image();
      img.onload = () => { const code = readCode(img);
        if (code !== null && !(code in window.__sent)) window.__sent[code] = t; };
      img.src = m[0]; }
  }
  return fetch0.apply(this, arguments);
};
document.addEventListener('load', (e) => {
  if (e.target.tagName !== 'IMG' || !e.target.closest('#annotated')) return;
  const t = performance.now(); window.__loads++;
  const code = readCode(e.target);
  if (code !== null && !(code in window.__shown)) window.__shown[code] = t;
}, true);
"""


def machine() -> str:
    cpu = cpu_name()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{cpu}, {os.cpu_count()} cores, load average {load:.1f} at start, {platform.system()}"


def chromium_cpu_s() -> dict[str, float]:
    """CPU seconds used so far by each running Chromium process (pid -> s, from /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    used = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if b"chromium" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                continue
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            used[pid] = (int(fields[11]) + int(fields[12])) / tick  # utime + stime
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
    return used


def cpu_between(before: dict[str, float], after: dict[str, float]) -> float:
    """CPU seconds between two readings; processes that started in between count from 0."""
    return sum(t - before.get(pid, 0.0) for pid, t in after.items())


def round_trips(sent: dict[str, float], shown: dict[str, float]) -> np.ndarray:
    """ms from the page sending a frame to the page loading that frame, annotated."""
    return np.array([shown[code] - sent[code] for code in shown if code in sent])


def pct(values, q: float) -> str:
    values = np.asarray(values, np.float64)
    return f"{np.percentile(values, q):.0f}" if values.size else "–"


MODES = {  # name: (what the page does, source spec, synthetic paced like a camera)
    "headless": (None, "synthetic:5", False),
    "server-max": ("server", "synthetic:5", False),
    "server": ("server", "synthetic:5", True),
    "browser": ("browser", "browser", True),
    "browser-reply": ("browser", "browser", True),
}
LABELS = {
    "headless": ("no page (baseline)", "synthetic, as fast as it goes"),
    "server-max": ("server source", "synthetic, as fast as it goes"),
    "server": ("server source", "synthetic, 30 fps paced"),
    "browser": ("browser webcam", "Chromium fake camera, 15 fps clip"),
    "browser-reply": ("browser webcam, frame replies", "Chromium fake camera, 15 fps clip"),
}


def run_mode(
    mode: str, seconds: float, warmup_s: float, stream_every_s: float, browser, tmp: Path
) -> dict:
    page_mode, spec, realtime = MODES[mode]
    session = PreviewSession(
        SessionConfig(live=LiveConfig(open=OpenOptions(realtime=realtime)), log_dir=tmp / "logs")
    )
    session.warm_up()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = PreviewConfig(
        port=port,
        session=session.config,
        stream_every_s=stream_every_s,
        reply_frames=mode == "browser-reply",
    )
    demo = build_app(session, config)
    url = launch(demo, config)
    page = browser.new_page(viewport={"width": 1280, "height": 1000}) if page_mode else None
    try:
        if page is None:
            session.start(spec)
            time.sleep(warmup_s)
        else:
            _open_page(page, url, page_mode, warmup_s)
        before, t0, cpu0 = _counts(session), time.monotonic(), chromium_cpu_s()
        if page is None:
            time.sleep(seconds)
            posts, loads, sent, shown = 0, 0, {}, {}
        else:
            page.evaluate(
                "window.__sent = {}; window.__shown = {}; window.__posts = 0; window.__loads = 0;"
            )
            page.wait_for_timeout(seconds * 1000)
            posts, loads, sent, shown = page.evaluate(
                "[window.__posts, window.__loads, window.__sent, window.__shown]"
            )
        after, t1, cpu1 = _counts(session), time.monotonic(), chromium_cpu_s()
        stats = session.stats(window_s=seconds)
    finally:
        if page is not None:
            page.close()
        session.stop()
        demo.close()
    span = t1 - t0
    return {
        "mode": mode,
        "in_fps": (after[0] - before[0]) / span,
        "analysed_fps": (after[1] - before[1]) / span,
        "dropped": after[2] - before[2],
        "stats": stats,
        "page_updates": loads / span,
        "sent_fps": posts / span,
        "chromium_pct": cpu_between(cpu0, cpu1) / span * 100,
        "trips": round_trips(sent, shown),
    }


def _open_page(page, url: str, page_mode: str, warmup_s: float) -> None:
    page.add_init_script(INSTRUMENT)
    page.goto(url)  # never wait for networkidle: the stream keeps the page busy
    if page_mode == "browser":
        page.get_by_label(BROWSER_MODE).check()
    else:
        page.get_by_label("server source: ").fill("synthetic:5")
    page.get_by_role("button", name="Start", exact=True).click()
    page.get_by_text("analysing ").first.wait_for(timeout=60000)
    if page_mode == "browser":
        page.get_by_text("Click to Access Webcam").click()
        page.locator('[aria-label="capture photo"]').click(timeout=20000)
    page.wait_for_timeout(warmup_s * 1000)


def _counts(session: PreviewSession) -> tuple[int, int, int]:
    s = session.stats()
    return s.captured, s.processed, s.dropped


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_preview", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="measured span per mode")
    parser.add_argument("--warmup", type=float, default=4.0, help="seconds before measuring")
    parser.add_argument("--modes", default=",".join(MODES), help=f"of {', '.join(MODES)}")
    parser.add_argument("--repeats", type=int, default=1, help="run the modes in turn N times")
    parser.add_argument("--stream-every", type=float, default=0.1, help="browser modes, s")
    args = parser.parse_args()
    if not Path(CHROMIUM).is_file():
        print(f"bench_preview: {CHROMIUM} not found (apt-get install chromium)", file=sys.stderr)
        return EXIT_BAD_INPUT
    from playwright.sync_api import sync_playwright

    header = machine()
    rows = []
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        clip = tmp / "face.y4m"
        seconds_of_clip = args.warmup + args.seconds + 15  # Chromium loops it: no wrap measured
        write_coded_clip(clip, CLIP, round(seconds_of_clip * CLIP.fps))
        fake = f"--use-file-for-fake-video-capture={clip}"
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=[*ARGS, fake])
            try:
                for _ in range(args.repeats):
                    for mode in args.modes.split(","):
                        rows.append(
                            run_mode(
                                mode.strip(),
                                args.seconds,
                                args.warmup,
                                args.stream_every,
                                browser,
                                tmp,
                            )
                        )
            finally:
                browser.close()
    print(
        f"Machine: {header}; Chromium headless; {args.seconds:g} s per mode after "
        f"{args.warmup:g} s warm-up; stream_every {args.stream_every:g} s\n"
    )
    print(
        "| mode | source | page sent/s | frames in/s | analysed/s | dropped | capture→analysed "
        "ms (median / p99) | capture→sent to page ms (median / p99) | page image loads/s "
        "| round trip in the page ms (median / p99, n) | Chromium CPU % |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        s, trips = row["stats"], row["trips"]
        trip = f"{pct(trips, 50)} / {pct(trips, 99)} (n={trips.size})" if trips.size else "–"
        label, source = LABELS[row["mode"]]
        sent = f"{row['sent_fps']:.1f}" if row["mode"].startswith("browser") else "–"
        print(
            f"| {label} | {source} | {sent} | {row['in_fps']:.1f} | "
            f"{row['analysed_fps']:.1f} | {row['dropped']} | {s.latency_ms:.0f} / "
            f"{s.latency_p99_ms:.0f} | {s.display_ms:.0f} / {s.display_p99_ms:.0f} | "
            f"{row['page_updates']:.1f} | {trip} | {row['chromium_pct']:.0f} |"
        )
    print(
        "\npage sent/s: frames the page posted; frames in/s: delivered by the source (server) "
        "or reaching the stream handler (browser: Gradio keeps only the newest unhandled "
        "frame); round trip: the page sends a frame → that frame, annotated, is loaded in the "
        "page (matched by its frame code); Chromium CPU %: all its processes, % of one core "
        "over the span (the browser runs in every mode; no page is loaded in the first)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
