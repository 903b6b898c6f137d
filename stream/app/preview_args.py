"""run_live's options for the browser preview; kept apart from stream/ui/preview.py, which imports
gradio (seconds) — the option parser must stay fast."""

from __future__ import annotations

import argparse


def add_preview_arguments(parser: argparse.ArgumentParser):
    """run_live's options for the browser preview (`--gradio` and its page settings); returns
    the group (the window's flags join it)."""
    preview = parser.add_argument_group("preview: window and browser page")
    preview.add_argument(
        "--gradio",
        action="store_true",
        help="serve the live preview page (server source or the browser's webcam)",
    )
    preview.add_argument(
        "--port", type=int, default=None, help="preview port (default: 7860, or the next free one)"
    )
    preview.add_argument(
        "--host", default="127.0.0.1", help="preview address; 0.0.0.0 opens it to the network"
    )
    preview.add_argument("--share", action="store_true", help="a public Gradio share link")
    preview.add_argument(
        "--auth", default=None, metavar="USER:PASS", help="password for the preview page"
    )
    preview.add_argument(
        "--stream-every",
        type=float,
        default=0.1,
        metavar="S",
        help="browser webcam: the page posts a frame every S seconds",
    )
    return preview
