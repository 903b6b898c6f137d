"""mexlive — real-time micro-expression analyzer.

Usage:
    mexlive                                   # synthetic face, window if a display exists
    mexlive --source 0                        # webcam 0
    mexlive --source clip.mp4 --headless --events events.jsonl
    mexlive --source rtsp://camera/stream --record analysed.mp4
    mexlive --source synthetic:7 --fps 30 --duration 20 --headless
    mexlive --source a.mp4 --source b.mp4 --source 0 --headless   # 3 streams, one engine
    mexlive --make-synthetic data/ --count 10 --seconds 30 --fps 30
    mexlive --headless --events - | jq .           # events on stdout, messages on stderr
    mexlive --events logs/events.jsonl --events-max-mb 50 --metrics-port 9108
    mexlive tail logs/events.jsonl --follow       # one coloured line per event
    mexlive batch videos/ --out results/          # an archive on Ray (mexlive batch --help)
    mexlive inspect clip.mp4 --truth clip.csv --plot why.png   # why each event fired
    mexlive --source 0 --calibrate-privacy --privacy-out protected.mp4   # privacy sticker
    mexlive --gradio [--port 7860]            # browser preview on http://127.0.0.1:7860

Sources: a camera index (0), a V4L2 device (/dev/video0), a video file, a URL (rtsp, rtmp,
http(s), udp, tcp, srt) or ``synthetic[:seed]`` (a real photo animated with micro- and
macro-expressions that have exact ground truth).

Keys in the window:
{window_keys}

Events go to ``--events`` as me-events/v1 JSON Lines, one flushed line per event
(``tail -f events.jsonl | jq``), rotated by size (``--events-max-mb``); ``--metrics-port``
serves Prometheus metrics on 127.0.0.1.

Bad input (a missing file, a folder or a text file as --source, an unopenable camera or URL,
an unsupported codec, an unknown flag) prints one line naming it, before any model loads where
the flags and files alone show it, and exits with code 2; lines already written stay. A file
cut shorter than its header says is analysed to its end: a warning, exit 0. One short line at
start-up says what runs where; -v adds why (backends passed over, cached graphs).
"""

from __future__ import annotations

import sys

from stream.app.cli import main
from stream.app.flags import build_parser, keys_manual

__doc__ = __doc__.format(window_keys=keys_manual())  # the keys are written once: controls.py
__all__ = ["build_parser", "main"]

if __name__ == "__main__":
    sys.exit(main())
