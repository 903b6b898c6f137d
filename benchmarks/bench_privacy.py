"""Privacy stickers against emotion recognizers: black-box, one query per clip.

Usage:
    python -m benchmarks.bench_privacy --videos lp_d3.mp4,lp_d6.mp4,lp_d11.mp4,tpsmm_driving.mp4 \
        --plot docs/privacy.png                      # the README's tables (~20 min, 2 cores)
    python -m benchmarks.bench_privacy --identities lp_s2.jpg --videos "" --random 1

Two clip sets, each queried once per recognizer and condition: no sticker, the sticker on the
person's causal root, and on ``--random`` other regions drawn per clip (mean ± std over the
draws), for every sticker design.
- synthetic faces (photos never in the spotter's training set): a separate 20 s synthetic
  video of the person (another seed) → ROI motion → ``calibration.causal.discover`` (PC,
  Fisher-z, alpha 0.05) → the root; every micro-expression of a 30 s test video is a clip.
  The stream check also runs the whole test video through the live spotting stage, clean and
  with the textured sticker on the root.
- real video (``stream.synthetic.injected``): micro-expressions of each emotion injected at
  positions 2.5 s apart into a real fixture video; the root comes from the person's own clean
  video.

Recognizers (``stream.privacy.recognizers``): the whole live path (spotter → decoder →
MPFNet fusion, no annotation read), the MPFNet recognizer on the annotated onset→apex, its
independently trained variant, the spotter's emotion head and its variant. Prints markdown
tables with the machine; ``--plot`` draws the attack success.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from tqdm import tqdm

from benchmarks.privacy_checks import (
    cached_check,
    check_row,
    synthetic_check,
    video_check,
    with_video,
)
from benchmarks.privacy_report import machine, plot, report
from calibration.causal import CausalGraph, discover
from stream.datasets.features import fixtures_photos_dir, resolve_photo
from stream.face.features import FACE_ROIS, FeatureExtractor
from stream.privacy.attack import (
    Clip,
    ClipSource,
    Query,
    identity_name,
    injected_clips,
    protect,
    protector_faces,
)
from stream.privacy.live import region_positions, roi_motion_series
from stream.privacy.recognizers import (
    MPFNetRecognizer,
    PipelineRecognizer,
    Recognizer,
    SpotterRecognizer,
    predicted,
)
from stream.privacy.stickers import DESIGNS, STICKER_REGIONS, Sticker, StickerPlacer
from stream.synthetic.injected import InjectionConfig

SYNTHETIC = "synthetic faces (held-out photos)"
REAL = "micro-expressions injected into real video"
WEIGHTS = Path(__file__).resolve().parent.parent / "engines" / "weights"
RECOGNIZERS = {  # flag name -> table name
    "pipeline": "mexlive live path",
    "mpfnet": "MPFNet (shipped)",
    "mpfnet-variant": "MPFNet variant",
    "spotter": "spotter (shipped)",
    "spotter-variant": "spotter variant",
}


def make_recognizers(names: list[str], variant_dir: Path) -> list[Recognizer]:
    """The recognizers asked for; a variant whose weights are absent is left out, said once."""
    made: list[Recognizer] = []
    for name in names:
        if name not in RECOGNIZERS:
            raise SystemExit(f"error: unknown recognizer {name!r}: one of {', '.join(RECOGNIZERS)}")
        weights = variant_dir / ("spotter.pt" if name.startswith("spotter") else "recognizer.pt")
        if name == "pipeline":
            made.append(PipelineRecognizer(RECOGNIZERS[name]))
            continue
        if name.endswith("variant") and not weights.is_file():
            print(f"no variant weights at {weights}: {name} left out", file=sys.stderr)
            continue
        path = str(weights) if name.endswith("variant") else None
        kind = SpotterRecognizer if name.startswith("spotter") else MPFNetRecognizer
        made.append(kind(RECOGNIZERS[name], path))
    return made


def calibrate(photo: str | None, seed: int, seconds: float, out_dir: Path) -> CausalGraph:
    """The person's root region from a calibration video of their own (no recognizer query);
    a graph already in ``out_dir`` for this person and seed is reused."""
    source = ClipSource(photo, seed, seconds=seconds)
    animator = source.animator()
    frames = (animator.render(i) for i in range(round(seconds * source.fps)))
    return causal_graph(frames, source.fps, out_dir / f"graph_{identity_name(photo)}_{seed}")


def causal_graph(frames: Iterable[np.ndarray], fps: float, stem: Path) -> CausalGraph:
    """PC over the ROI motion of ``frames`` (tracked and featurised like the live path),
    saved as ``stem``.json / .png; read back when it is already there."""
    from stream.contracts import FeatureRow
    from stream.face.align import FaceTracker

    if stem.with_suffix(".json").is_file():
        return CausalGraph.load_json(stem.with_suffix(".json"))
    tracker, extractor = FaceTracker(), FeatureExtractor()
    rows: list[FeatureRow] = []
    for i, image in enumerate(frames):
        t_s = i / fps
        row = extractor.update(tracker.update(image, i, round(t_s * 1e9), t_s))
        rows.append(FeatureRow(row.seq, row.t_mono_ns, row.values.copy(), row.valid))
    mags, valid = roi_motion_series(rows)
    graph = discover(mags, valid, FACE_ROIS, lag_frames=max(1, round(0.1 * fps)))
    graph.save_json(stem.with_suffix(".json"))
    graph.save_png(stem.with_suffix(".png"), region_positions())
    return graph


def query_clip(
    clip: Clip,
    recognizers: list[Recognizer],
    root: str,
    designs: list[str],
    random_regions: list[str],
    overlay_s: list[float],
) -> list[Query]:
    """Every condition of one clip, one query per recognizer each; ``overlay_s`` collects the
    per-frame sticker cost."""
    faces = protector_faces(clip)
    queries: list[Query] = []

    def ask(target: Clip, condition: str, design: str, region: str, k: int) -> None:
        areas = [p.area_fraction for p in target.placements if p is not None]
        area = float(np.mean(areas)) if areas else 0.0
        for rec in recognizers:
            queries.append(
                Query(
                    rec.name,
                    clip.clip_id,
                    clip.identity,
                    clip.emotion,
                    condition,
                    design,
                    region,
                    k,
                    predicted(rec.recognize(target)),
                    area,
                )
            )

    ask(clip, "none", "", "", 0)
    for design in designs:
        sticker = Sticker.design(design)
        ask(protect(clip, faces, sticker, root, overlay_s), "causal", design, root, 0)
        for k, region in enumerate(random_regions):
            ask(protect(clip, faces, sticker, region), "random", design, region, k)
    return queries


def overlay_cost(repeats: int = 2000) -> np.ndarray:
    """Seconds per ``StickerPlacer.apply`` (placement + warp + blend) on a tracked 640×480
    synthetic face, every design in turn, ``repeats`` times."""
    from stream.face.align import FaceTracker

    image = ClipSource(None, 0).animator().render(0)
    face = FaceTracker().update(image, 0, 0, 0.0)
    placers = [StickerPlacer(Sticker.design(d), "brow_l_inner") for d in DESIGNS]
    seconds = np.empty(repeats)
    for i in range(repeats):
        frame = image.copy()
        t0 = time.perf_counter()
        placers[i % len(placers)].apply(frame, face)
        seconds[i] = time.perf_counter() - t0
    return seconds


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.overlay_only:
        ms = 1e3 * overlay_cost()
        print(
            f"Machine: {machine()}; overlay (placement + warp + blend) over {len(ms)} "
            f"frames: median {np.median(ms):.3f} ms, p99 {np.percentile(ms, 99):.3f} ms"
        )
        return 0
    designs = [d for d in args.designs.split(",") if d]
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = [r.strip() for r in args.recognizers.split(",") if r.strip()]
    recognizers = make_recognizers(names, Path(args.variant_dir))
    t_start = time.perf_counter()
    sets: dict[str, list[Query]] = {SYNTHETIC: [], REAL: []}
    graphs: dict[str, CausalGraph] = {}
    checks: list[str] = []
    overlay_s: list[float] = []

    def run_clips(clips: Iterable[Clip], graph: CausalGraph, key: str, n: int) -> list[Query]:
        others = [r for r in STICKER_REGIONS if r != graph.root]
        queries = []
        for c, clip in enumerate(tqdm(clips, desc=key, unit="clip", leave=False)):
            clip.cache = out_dir / "features" / f"{key}_{c}.npz"
            rng = np.random.default_rng((args.seed, n, c))
            regions = [str(r) for r in rng.choice(others, args.random, replace=False)]
            queries += query_clip(clip, recognizers, graph.root, designs, regions, overlay_s)
        return queries

    for n, name in enumerate(i.strip() for i in args.identities.split(",") if i.strip()):
        photo = None if name == "astronaut" else resolve_photo(name)
        if name != "astronaut" and photo is None:
            print(f"skipping {name}: photo not found (fixtures missing?)", file=sys.stderr)
            continue
        graph = graphs[name] = calibrate(
            photo, args.seed + 100 + n, args.calibration_seconds, out_dir
        )
        _said_root(name, graph, t_start)
        source = ClipSource(photo, args.seed + n, seconds=args.seconds)
        sets[SYNTHETIC] += run_clips(source.clips(), graph, f"{name}_{args.seed + n}", n)
        if not args.no_stream_check:
            key = f"{name}_{source.seed}"
            clean = cached_check(out_dir, key, synthetic_check, source, None)
            prot = cached_check(out_dir, f"{key}_{graph.root}", synthetic_check, source, graph.root)
            checks.append(check_row(name, clean, prot))
    for n, name in enumerate(v.strip() for v in args.videos.split(",") if v.strip()):
        video = resolve_video(name)
        if video is None:
            print(f"skipping {name}: video not found (fixtures missing?)", file=sys.stderr)
            continue
        graph = graphs[name] = calibrate_video(video, out_dir)
        _said_root(name, graph, t_start)
        config = InjectionConfig(
            seed=args.seed + 50 + n, emotions_per_position=True, max_positions=args.positions
        )
        key = f"{name}_{config.seed}"
        sets[REAL] += run_clips(injected_clips(video, config), graph, key, 1000 + n)
        if not args.no_stream_check:
            whole = dataclasses.replace(config, emotions_per_position=False, max_positions=None)
            clean = cached_check(out_dir, key, video_check, video, out_dir, whole, None)
            prot = cached_check(
                out_dir, f"{key}_{graph.root}", video_check, video, out_dir, whole, graph.root
            )
            checks.append(check_row(f"{name} (injected)", clean, prot))
    rec_names = [r.name for r in recognizers]
    report(
        sets,
        rec_names,
        designs,
        args.random,
        graphs,
        checks,
        overlay_s,
        time.perf_counter() - t_start,
    )
    if args.plot:
        plot({k: v for k, v in sets.items() if v}, rec_names, designs, args.random, Path(args.plot))
        print(f"plot: {args.plot}")
    return 0


def calibrate_video(video: Path, out_dir: Path) -> CausalGraph:
    """The person's root region from their own real video, clean (nothing injected)."""
    stem = out_dir / f"graph_{video.stem}_video"
    return with_video(video, lambda frames, fps: causal_graph(frames, fps, stem))


def resolve_video(name: str) -> Path | None:
    """A fixture video name (or an existing path) → its path, None when absent."""
    path = Path(name)
    if path.is_file():
        return path
    path = fixtures_photos_dir().parent / "videos" / name
    return path if path.is_file() else None


def _said_root(name: str, graph: CausalGraph, t_start: float) -> None:
    print(
        f"{name}: root {graph.root} ({graph.reason or 'PC'}) after "
        f"{time.perf_counter() - t_start:.0f} s",
        file=sys.stderr,
    )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_privacy",
        description=__doc__.split("\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--identities", default="lp_s2.jpg,tpsmm_source.png", help="synthetic faces")
    p.add_argument("--seconds", type=float, default=30.0, help="test video per identity")
    p.add_argument("--calibration-seconds", type=float, default=20.0)
    p.add_argument(
        "--videos",
        default="lp_d3.mp4,lp_d6.mp4",
        help="real videos to inject micro-expressions into (fixtures' videos or paths; "
        "empty for none)",
    )
    p.add_argument("--positions", type=int, default=None, help="injection positions per video")
    p.add_argument("--seed", type=int, default=7001)
    p.add_argument("--designs", default=",".join(DESIGNS))
    p.add_argument("--random", type=int, default=2, help="random placements per clip")
    p.add_argument(
        "--recognizers",
        default=",".join(RECOGNIZERS),
        help=f"which to attack, of {', '.join(RECOGNIZERS)}",
    )
    p.add_argument(
        "--variant-dir",
        default=str(WEIGHTS / "variant"),
        help="the variants' weights (spotter.pt, recognizer.pt with their manifests)",
    )
    p.add_argument("--no-stream-check", action="store_true")
    p.add_argument("--plot", default=None, metavar="PNG", help="bar chart of attack success")
    p.add_argument(
        "--out",
        default="/tmp/mexlive_privacy",
        help="causal graphs and a feature cache (a rerun reuses it) go here",
    )
    p.add_argument("--overlay-only", action="store_true", help="only time the overlay")
    return p


if __name__ == "__main__":
    sys.exit(main())
