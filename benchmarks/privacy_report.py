"""Tables and the plot of ``bench_privacy.py``: attack success per recognizer, design and clip
set, causal root against random regions.

Attack success = share of the clips a recognizer read correctly without a sticker that it no
longer reads correctly with one (n = those clips). Random placements: ``n_random`` regions
drawn per clip; the mean and spread are over the draws (each draw one query per clip).
"""

from __future__ import annotations

import os
import platform
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from benchmarks.machine_info import cpu_name
from engines.eval.metrics import uf1
from engines.labels import EMOTIONS
from stream.privacy.attack import Query, attack_success

LABELS = (*EMOTIONS, "none")  # "none": nothing recognised, wrong for every class


def summarise(queries: Sequence[Query], rec: str, design: str, n_random: int) -> dict:
    """One row of the main table: clean / causal / random accuracy and UF1, success rates."""
    mine = [q for q in queries if q.recognizer == rec]
    clean = [q for q in mine if q.condition == "none"]
    causal = [q for q in mine if q.condition == "causal" and q.design == design]
    draws = [
        [q for q in mine if q.condition == "random" and q.design == design and q.placement_k == k]
        for k in range(n_random)
    ]
    random_success = [attack_success(clean, qs)[0] for qs in draws]
    random_acc = [acc_uf1(qs) for qs in draws]
    return {
        "clean": acc_uf1(clean),
        "causal": acc_uf1(causal),
        "causal_success": attack_success(clean, causal),
        "random_acc": np.mean([a for a, _ in random_acc]) if random_acc else float("nan"),
        "random_uf1": np.mean([u for _, u in random_acc]) if random_acc else float("nan"),
        "random_success": (np.mean(random_success), np.std(random_success)),
        "area": float(np.mean([q.area_fraction for q in causal])) if causal else 0.0,
    }


def acc_uf1(queries: Sequence[Query]) -> tuple[float, float]:
    if not queries:
        return float("nan"), float("nan")
    truth, pred = [q.truth for q in queries], [q.prediction for q in queries]
    accuracy = float(np.mean([t == p for t, p in zip(truth, pred, strict=True)]))
    return accuracy, uf1(truth, pred, LABELS)


def main_table(queries: Sequence[Query], recognizers: list[str], designs, n_random) -> list[str]:
    rows = [
        "| recognizer | design | clean acc / UF1 | causal acc / UF1 | causal success "
        "| random acc / UF1 | random success (mean ± sd) | causal − random | area |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for rec in recognizers:
        for design in designs:
            s = summarise(queries, rec, design, n_random)
            (ca, cu), (xa, xu) = s["clean"], s["causal"]
            succ, n_ok = s["causal_success"]
            r_mean, r_sd = s["random_success"]
            rows.append(
                f"| {rec} | {design} | {ca:.2f} / {cu:.2f} | {xa:.2f} / {xu:.2f} | "
                f"{pct(succ)} (n={n_ok}) | {s['random_acc']:.2f} / {s['random_uf1']:.2f} | "
                f"{pct(r_mean)} ± {100 * r_sd:.0f} | {100 * (succ - r_mean):+.0f} pts | "
                f"{100 * s['area']:.1f} % |"
            )
    return rows


def per_class(queries: Sequence[Query], recognizers: list[str], designs, n_random) -> list[str]:
    """Per emotion and design: attack success on the root / on random regions."""
    rows = [
        "| recognizer | emotion | clips | correct clean | " + " | ".join(designs) + " |",
        "|---|---|---:|---:|" + "---:|" * len(designs),
    ]
    for rec in recognizers:
        for emotion in EMOTIONS:
            of_class = [q for q in queries if q.recognizer == rec and q.truth == emotion]
            clean = [q for q in of_class if q.condition == "none"]
            n_ok = attack_success(clean, clean)[1]
            cells = []
            for design in designs:  # the main table's rates, on this emotion's clips only
                s = summarise(of_class, rec, design, n_random)
                cells.append(f"{pct(s['causal_success'][0])} / {pct(s['random_success'][0])}")
            rows.append(
                f"| {rec} | {emotion} | {len(clean)} | {n_ok} | " + " | ".join(cells) + " |"
            )
    return rows


def plot(
    sets: dict[str, list[Query]], recognizers: list[str], designs, n_random, path: Path
) -> None:
    """Bars per recognizer and design: causal root vs random regions (mean ± sd), one panel
    per clip set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(sets), 1, figsize=(11, 3.6 * len(sets)), squeeze=False)
    width = 0.8 / len(designs)
    colours = plt.cm.tab10(np.arange(len(designs)))
    for ax, (set_name, queries) in zip(axes[:, 0], sets.items(), strict=True):
        x = np.arange(len(recognizers))
        for d, design in enumerate(designs):
            rows = [summarise(queries, rec, design, n_random) for rec in recognizers]
            causal = [100 * r["causal_success"][0] for r in rows]
            rand = [100 * r["random_success"][0] for r in rows]
            spread = [100 * r["random_success"][1] for r in rows]
            at = x - 0.4 + (d + 0.5) * width
            ax.bar(at, causal, width * 0.9, color=colours[d], label=f"{design}: causal root")
            ax.errorbar(at, rand, yerr=spread, fmt="o", color="k", ms=3, lw=1, capsize=2)
        ax.axhline(80, color="r", ls="--", lw=0.8)
        ax.set_xticks(x, recognizers)
        ax.set_ylim(0, 105)
        ax.set_ylabel("attack success %")
        ax.set_title(f"{set_name}: bars = sticker on the causal root, dots = random regions")
    axes[0, 0].legend(fontsize=7, ncol=len(designs), loc="upper left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def pct(x: float) -> str:
    return "–" if x != x else f"{100 * x:.0f} %"


def machine() -> str:
    cpu = f"{cpu_name('unknown CPU')}, {os.cpu_count()} cores"
    return f"{platform.machine()} ({cpu}), Python {platform.python_version()}"


def report(
    sets: dict[str, list[Query]],
    recognizers: list[str],
    designs: list[str],
    n_random: int,
    graphs: dict,
    checks: list[str],
    overlay_s: list[float],
    seconds: float,
) -> None:
    """Print every table (markdown) with the machine."""
    n_clips = sum(len({q.clip_id for q in qs}) for qs in sets.values())
    n_queries = sum(len(qs) for qs in sets.values())
    print(f"\nMachine: {machine()}; {n_clips} clips, {n_queries} queries, {seconds:.0f} s")
    print(
        "\nCausal roots: "
        + ", ".join(
            f"{k}: {g.root}{' (fallback: ' + g.reason + ')' if g.fallback_used else ''}"
            f" [{sum(1 for e in g.edges if e[2] == 'lagged')} lagged edges]"
            for k, g in graphs.items()
        )
    )
    for set_name, queries in sets.items():
        if not queries:
            continue
        n = len({q.clip_id for q in queries})
        print(f"\n### {set_name} ({n} clips)\n")
        print("\n".join(main_table(queries, recognizers, designs, n_random)))
        print("\nPer emotion: attack success, causal root / random regions, per design\n")
        print("\n".join(per_class(queries, recognizers, designs, n_random)))
    if checks:
        print(
            "\nThe live path (baseline, spotter, decoder, recognizer fusion) on each whole test "
            "video, clean and with the textured sticker on the causal root (micro-expressions; "
            "real videos: one injected per position, through H.264):\n"
        )
        print("| identity | micro truths | found clean | found protected |")
        print("|---|---:|---:|---:|")
        print("\n".join(checks))
    if overlay_s:
        ms = 1e3 * np.array(overlay_s)
        print(
            f"\nOverlay cost per frame (placement + warp + blend; the face tracking it needs "
            f"is the analysis's own): median {np.median(ms):.3f} ms, p99 "
            f"{np.percentile(ms, 99):.3f} ms over {len(ms)} frames"
        )
    roots = Counter(g.root for g in graphs.values() if not g.fallback_used)
    print(f"Most frequent root: {roots.most_common(1)[0][0] if roots else 'none'}")
