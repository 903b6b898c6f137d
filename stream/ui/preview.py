"""The browser preview (Gradio): ``mexlive --gradio [--port N] [--host H] [--share] [--auth U:P]``.

Two modes, picked on the page:

- **server source**: the pipeline reads a source on the server (a camera index, /dev/videoN, a
  file, a URL, synthetic[:seed]) at its full rate on its own threads; the page polls the newest
  annotated frame, the events, the apex-score plot and the stats every ``refresh_s`` (a
  ``gr.Timer``). Frames the page has no time to show are skipped for display only: every frame
  is analysed.
- **browser webcam**: the page's webcam streams to the server (``gr.Image(sources=["webcam"],
  streaming=True)`` with ``.stream(stream_every=...)``); each frame that reaches the handler is
  pushed, stamped with its arrival time, into a ``PushedSource`` and analysed, and the page
  shows the newest analysed frame on the timer (JPEG: webp costs ~70 ms a frame). The page posts
  a frame every ``stream_every_s``, but Gradio hands the handler only the newest one each time
  the previous step is done, so the analysed rate is what Gradio's per-step cost allows; the
  page says what it is.

Bound to 127.0.0.1 unless ``--host`` says otherwise; ``--share`` or a non-local host without
``--auth`` is allowed but announced loudly. Not a diagnosis: a research tool.
"""

from __future__ import annotations

import ipaddress
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import gradio as gr
import numpy as np

from stream.errors import BadInputError, MexliveError, OutputError
from stream.output.metrics import MetricsExporter
from stream.output.ports import port_problem
from stream.ui.preview_panels import (
    EVENT_COLUMNS,
    draw_score_plot,
    events_frame,
    stats_markdown,
)
from stream.ui.preview_session import BROWSER, PreviewSession, SessionConfig

SERVER_MODE, BROWSER_MODE = "server source", "browser webcam"
NOT_A_DIAGNOSIS = (
    "**Not a diagnosis.** mexlive spots brief facial movements and guesses a coarse emotion "
    "class from a model trained on synthetic faces; it says nothing reliable about what a "
    "person feels, and must not be used to judge anyone."
)
PRIVACY_NOTE = (
    "a sticker above the left inner brow (the most frequent causal root region) hides "
    "micro-expressions from recognizers watching this video; run_live --calibrate-privacy "
    "finds the region for you"
)


@dataclass
class PreviewConfig:
    """How the preview is served (from ``mexlive``'s flags)."""

    source: str = "synthetic"
    host: str = "127.0.0.1"
    port: int | None = None  # None: Gradio's default (7860, or the next free one)
    share: bool = False
    auth: tuple[str, str] | None = None
    refresh_s: float = 0.2  # page updates: 5 per second
    # The page posts a frame this often. 0.1 s analysed more frames than 0.05 s on the 2-core
    # test machine (posts Gradio drops still cost both sides); a fast machine may want 0.05.
    stream_every_s: float = 0.1
    # Browser mode: reply to each frame with that frame annotated (True), or show the newest
    # analysed frame on the timer like the server mode (False, the default: replies without an
    # image make each of Gradio's stream steps cheaper, so more frames get analysed; measured
    # in benchmarks/bench_preview.py).
    reply_frames: bool = False
    session: SessionConfig = field(default_factory=SessionConfig)
    # Prometheus metrics from start-up (--metrics-port; None: none), following each run.
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"

    @classmethod
    def from_run_config(cls, run: Any) -> PreviewConfig:
        """From the app's ``RunConfig`` (``mexlive --gradio``), read by its fields (ui does not
        import app): ``preview`` (page options), ``live`` (the builder's config every run is
        built from, so the page's runs are the CLI's) and ``output`` (``--metrics-port``).
        BadInputError for a malformed ``--auth``, port or ``--stream-every``."""
        options = run.preview
        auth = None
        if options.auth is not None:
            user, sep, password = options.auth.partition(":")
            if not sep or not user or not password:
                raise BadInputError("--auth must be USER:PASSWORD, both non-empty")
            auth = (user, password)
        if options.port is not None and not 1 <= options.port <= 65535:
            raise BadInputError(f"--port {options.port} is out of range (1-65535)")
        every = options.stream_every_s
        if not 0.02 <= every <= 2.0:
            raise BadInputError(f"--stream-every {every:g} is out of range (0.02-2 s)")
        return cls(
            source=run.live.source,
            host=options.host,
            port=options.port,
            share=options.share,
            auth=auth,
            session=SessionConfig(live=run.live),
            stream_every_s=every,
            metrics_port=run.output.metrics_port,
            metrics_host=run.output.metrics_host,
        )

    @property
    def exposed(self) -> bool:
        """Reachable from other machines: shared, or bound to a non-loopback address."""
        if self.share:
            return True
        if self.host == "localhost":
            return False
        try:
            return not ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return True  # a host name: assume it is reachable


def serve(run: Any) -> int:
    """``mexlive --gradio``: build the page for the app's ``RunConfig`` and serve it until
    Ctrl+C."""
    config = PreviewConfig.from_run_config(run)
    problem = port_problem(config.host, config.port) if config.port is not None else None
    if problem is not None:  # before the models load and Gradio starts
        raise OutputError(f"cannot serve the preview on {config.host}:{config.port}: {problem}")
    warning = open_warning(config)
    if warning:
        print(warning, file=sys.stderr)
    metrics = session = demo = None
    interrupted = _note_ctrl_c()
    try:  # Ctrl+C at any point from here on ends the preview cleanly
        if config.metrics_port is not None:
            metrics = MetricsExporter(config.metrics_port, host=config.metrics_host)
            metrics.start()  # from start-up: gauges at zero until a run starts
            print(f"mexlive: Prometheus metrics on {metrics.url}", file=sys.stderr)
        session = PreviewSession(config.session, metrics)
        # Load the models while the page opens: a bad --weights file is also reported here.
        session.warm_up(lambda line: print(line, file=sys.stderr))
        demo = build_app(session, config)
        if interrupted():  # a Ctrl+C that a library swallowed while loading: not served
            raise KeyboardInterrupt
        try:
            launch(demo, config, block=True)
        except OSError as exc:  # the port is taken, the address is not this machine's
            where = f"{config.host}:{config.port or 7860}"
            raise OutputError(f"cannot serve the preview on {where}: {exc}") from None
    except KeyboardInterrupt:
        pass
    finally:
        if session is not None:
            session.stop()
        if demo is not None:
            demo.close()
        if metrics is not None:
            metrics.shutdown()
    return 0


def _note_ctrl_c():
    """Remember a Ctrl+C as well as raising it: while the models load, a library may catch
    the KeyboardInterrupt (an ONNX re-export did, and the page was served after all)."""
    import signal
    import threading

    seen = threading.Event()

    def on_sigint(signum, frame):
        seen.set()
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, on_sigint)
    return seen.is_set


def open_warning(config: PreviewConfig) -> str | None:
    """The loud banner for a preview reachable by others without a password; None if not."""
    if not config.exposed or config.auth is not None:
        return None
    bar = "!" * 78
    where = "its public share link" if config.share else config.host
    return (
        f"{bar}\nmexlive: WARNING: the preview is OPEN to anyone who can reach {where}: "
        "no --auth given.\nAnyone can watch the camera and read the events. Add --auth "
        f"USER:PASS.\n{bar}"
    )


def launch(demo, config: PreviewConfig, block: bool = False) -> str:
    """Start serving; returns the local URL (``block=False`` returns at once, for tests)."""
    demo.queue(default_concurrency_limit=1)
    _, url, _ = demo.launch(
        server_name=config.host,
        server_port=config.port,
        share=config.share,
        auth=config.auth,
        prevent_thread_lock=not block,
        ssr_mode=False,
        show_error=True,
        quiet=not block,
        allowed_paths=[str(config.session.log_dir)],
    )
    return url


def build_app(session: PreviewSession, config: PreviewConfig):
    """The Blocks page wired to ``session``."""
    browser_first = config.source == BROWSER
    with gr.Blocks(title="mexlive preview", analytics_enabled=False) as demo:
        gr.Markdown("## mexlive live preview\n" + NOT_A_DIAGNOSIS)
        with gr.Row(equal_height=True):
            mode = gr.Radio(
                [SERVER_MODE, BROWSER_MODE],
                label="mode",
                value=BROWSER_MODE if browser_first else SERVER_MODE,
            )
            # Reachable by others: the page may not pick server files or URLs (only --source).
            spec = gr.Textbox(
                value="synthetic" if browser_first else config.source,
                scale=2,
                label="server source: 0, /dev/videoN, file, URL, synthetic[:seed]",
                visible=not browser_first,
                interactive=not config.exposed,
            )
            start = gr.Button("Start", variant="primary")
            stop = gr.Button("Stop")
            privacy = gr.Checkbox(label="privacy sticker", value=False, info=PRIVACY_NOTE)
        status = gr.Markdown("press Start")
        with gr.Row():
            webcam = gr.Image(
                sources=["webcam"],
                streaming=True,
                type="numpy",
                format="jpeg",
                webcam_options=gr.WebcamOptions(mirror=False),
                label="your webcam",
                visible=browser_first,
            )
            annotated = gr.Image(
                label="analysed frame", format="jpeg", interactive=False, elem_id="annotated"
            )
        with gr.Row():
            stats = gr.Markdown(elem_id="stats")
            plot = gr.Image(
                label="apex score",
                format="png",
                interactive=False,
                show_label=False,
                elem_id="score-plot",
            )
        events = gr.Dataframe(
            headers=EVENT_COLUMNS,
            label="events (newest first)",
            interactive=False,
            elem_id="events",
        )
        download = gr.DownloadButton("Download the event log (JSON Lines)", value=None)
        timer = gr.Timer(config.refresh_s)
        # The events version the page shows, ticks so far, the tab whose webcam feeds the run.
        seen: dict[str, Any] = {"events": -1, "ticks": 0, "camera": None}

        def on_mode(choice: str):
            return gr.update(visible=choice == SERVER_MODE), gr.update(
                visible=choice == BROWSER_MODE
            )

        def on_start(choice: str, source: str):
            seen["events"], seen["camera"] = -1, None
            if config.exposed:
                source = config.source
            try:
                line = session.start(BROWSER if choice == BROWSER_MODE else source)
            except MexliveError as exc:
                return f"**cannot start:** {exc}"
            hint = " Now turn on the webcam below." if choice == BROWSER_MODE else ""
            return line + hint

        def on_stop():
            line = session.stop()
            return line, _log_copy(session)

        def on_privacy(enabled: bool):
            session.privacy = enabled
            return "privacy sticker on" if enabled else "privacy sticker off"

        def on_frame(image: np.ndarray | None, request: gr.Request):
            # The first tab that streams after Start owns the run: two webcams must not mix.
            seen["camera"] = seen["camera"] or request.session_hash
            if image is None or request.session_hash != seen["camera"]:
                return gr.skip()
            # (H, W, 3) RGB from the page -> BGR, owned by the pipeline from here on.
            seq = session.push(np.ascontiguousarray(image[..., ::-1]), time.monotonic())
            if seq is None or not config.reply_frames:
                return gr.skip()
            # Reply with this very frame, analysed (~20 ms): the page shows what it sent.
            shown = session.take_display(after_seq=seq, timeout_s=0.5)
            return gr.skip() if shown is None else shown[0]

        def on_tick():
            polled = session.mode == "server" or not config.reply_frames
            shown = session.take_display() if polled else None
            # A file that ended: finish the run so the log gets its stopped line (a run that
            # Stop is ending is Stop's to report).
            ended = session.finish_if_ended()
            rows, version = session.events()
            fresh = version != seen["events"] or ended is not None
            seen["events"] = version
            seen["ticks"] += 1
            # The plot every other tick: enough for a 10 s trace, and half its cost on both
            # sides (drawing and PNG here, decoding and painting in the browser).
            plot_now = seen["ticks"] % 2 == 0 or ended is not None
            return (
                gr.skip() if ended is None else ended,
                gr.skip() if shown is None else shown[0],
                stats_markdown(session.stats(), config.stream_every_s),
                draw_score_plot(session.trace(), session.config.trace_s) if plot_now else gr.skip(),
                events_frame(rows) if fresh else gr.skip(),
                _log_copy(session) if fresh and (version > 0 or ended) else gr.skip(),
            )

        mode.change(on_mode, mode, [spec, webcam])
        start.click(on_start, [mode, spec], status, concurrency_id="control")
        stop.click(on_stop, None, [status, download], concurrency_id="control")
        privacy.change(on_privacy, privacy, status)
        webcam.stream(
            on_frame,
            webcam,
            annotated,
            stream_every=config.stream_every_s,
            concurrency_limit=1,
            concurrency_id="frames",
            show_progress="hidden",
            time_limit=None,
        )
        timer.tick(
            on_tick,
            None,
            [status, annotated, stats, plot, events, download],
            concurrency_limit=1,
            concurrency_id="tick",
            show_progress="hidden",
        )
    return demo


def _log_copy(session: PreviewSession) -> str | None:
    """The log for the download button; Gradio copies it into its cache as it is now."""
    path = session.log_path
    return str(path) if path is not None and path.is_file() else None


__all__ = [
    "PreviewConfig",
    "build_app",
    "launch",
    "open_warning",
    "serve",
]
