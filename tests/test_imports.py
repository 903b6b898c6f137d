"""The import rules of design.md ("Layout"): no cycle, each layer imports only what it may,
no module over 400 lines.

Imports are read from the source with ``ast``, nothing is imported: an import inside a function
(lazy) or under ``if TYPE_CHECKING:`` counts like one at the top, and so does
``importlib.import_module("...")`` with a literal name. Each import resolves to the project
module it loads (``from stream.face import flow`` -> ``stream.face.flow``; a name that is not a
module -> the module that defines it). Empty package ``__init__`` files add no edges.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import REPO

PACKAGES = ("stream", "engines", "calibration", "benchmarks", "tests")
SCRIPTS = ("run_live",)
MAX_LINES = 400

# Who may import whom: a module's layer (the longest key that prefixes its name) may import its
# own layer and the prefixes listed. Lists are direct, not transitive, except where design.md
# says "and below".
# engines.errors (the one error root) and engines.labels (emotion and kind names) are leaves
# that import nothing: engines never imports stream, so what both share lives there.
_ENGINE_LEAVES = ("engines.errors", "engines.labels")
_BASE = ("stream.contracts", "stream.errors", "stream.parsing", *_ENGINE_LEAVES)
_SYNTHETIC = (*_BASE, "stream.face", "stream.output")
# live may use the synthetic scene's config (the fault drill runs the synthetic camera): it is
# below capture, so this adds no upward edge.
_LIVE = (
    *_BASE,
    "stream.capture",
    "stream.face",
    "stream.output",
    "stream.synthetic",
    "calibration",
    "engines",
)
# privacy and ui: live and everything below it (the synthetic camera under capture, too).
_LIVE_AND_BELOW = (*_LIVE, "stream.live", "stream.synthetic")
_STREAM = (*_LIVE_AND_BELOW, "stream.datasets", "stream.privacy", "stream.ui", "stream.app")
MAY_IMPORT: dict[str, tuple[str, ...]] = {
    "stream": (),  # the package itself
    "stream.errors": ("engines.errors",),
    "stream.contracts": ("stream.errors",),  # the three import nothing else from stream
    "stream.parsing": ("stream.errors",),  # the one argument parser of every command
    "stream.face": _BASE,
    "stream.output": (*_BASE, "engines.eval"),  # the truth table of the console summary
    "stream.synthetic": _SYNTHETIC,
    "stream.capture": (*_SYNTHETIC, "stream.synthetic"),  # the synthetic camera
    "stream.datasets": (*_SYNTHETIC, "stream.synthetic"),
    "stream.live": _LIVE,
    "stream.privacy": _LIVE_AND_BELOW,
    "stream.ui": (*_LIVE_AND_BELOW, "stream.privacy"),
    "stream.app": _STREAM,  # the only importer of stream.ui
    "run_live": ("stream.app",),
    "engines": (),
    "calibration": ("engines",),
    "benchmarks": (*_STREAM, "run_live"),  # never tests
    "tests": (*_STREAM, "run_live", "benchmarks"),
}
# Inside tests/, a module imports only these of tests/ (never another test module).
TEST_SHARED = ("tests.helpers", "tests.conftest")


@dataclass(frozen=True)
class Edge:
    """``source`` imports ``target`` at ``path``:``line``."""

    source: str
    target: str
    path: str
    line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.source} imports {self.target}"


def project_modules(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for the packages and scripts under ``root``."""
    modules: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = path
    for script in SCRIPTS:
        if (root / f"{script}.py").is_file():
            modules[script] = root / f"{script}.py"
    return modules


def _owner(name: str, modules: dict[str, Path]) -> str | None:
    """The project module that ``name`` (a module or something in one) loads, else None."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _imported_names(node: ast.AST, package: str, modules: dict[str, Path]) -> Iterable[str]:
    """Dotted names an import node (or a literal ``import_module`` call) asks for."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:  # relative: up level - 1 packages from this module's package
            parts = package.split(".")[: len(package.split(".")) - node.level + 1]
            base = ".".join([*parts, base] if base else parts)
        for alias in node.names:
            full = f"{base}.{alias.name}"
            yield full if full in modules else base
    elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
        func = node.func
        called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if called in ("import_module", "__import__") and isinstance(node.args[0].value, str):
            yield node.args[0].value


def import_edges(root: Path) -> list[Edge]:
    """Every import between two project modules under ``root``, lazy ones included."""
    modules = project_modules(root)
    edges: dict[Edge, None] = {}  # ordered, one per (source, target, line)
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        rel = str(path.relative_to(root))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), rel)):
            for imported in _imported_names(node, package, modules):
                target = _owner(imported, modules)
                if target is not None and target != name:
                    edges[Edge(name, target, rel, node.lineno)] = None
    return list(edges)


def import_cycles(edges: list[Edge]) -> list[list[str]]:
    """One cycle (a, b, ..., a) through each strongly connected set of two or more modules."""
    graph: dict[str, set[str]] = {}
    for edge in edges:
        graph.setdefault(edge.source, set()).add(edge.target)
        graph.setdefault(edge.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(node: str) -> None:  # Tarjan; the graph is small enough for recursion
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph[node]):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_cycle_through(min(c), c, graph) for c in components]


def _cycle_through(start: str, component: set[str], graph: dict[str, set[str]]) -> list[str]:
    """The shortest path start -> ... -> start inside ``component`` (breadth first)."""
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for succ in sorted(graph[node] & component):
                if succ == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if succ not in came_from:
                    came_from[succ] = node
                    following.append(succ)
        frontier = following
    raise AssertionError(f"no cycle through {start}")  # a component always holds one


def layer(module: str) -> str:
    """The key of ``MAY_IMPORT`` that governs ``module``."""
    for depth in range(module.count(".") + 1, 0, -1):
        prefix = ".".join(module.split(".")[:depth])
        if prefix in MAY_IMPORT:
            return prefix
    raise KeyError(f"{module} belongs to no layer of MAY_IMPORT")


def _within(module: str, prefixes: Iterable[str]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def direction_violations(edges: list[Edge]) -> list[str]:
    """Each edge that breaks a rule, with the rule it breaks."""
    broken = []
    for edge in edges:
        source_layer = layer(edge.source)
        if source_layer == "tests" and edge.target.startswith("tests."):
            if not _within(edge.target, TEST_SHARED) and not edge.target.endswith(".conftest"):
                broken.append(f"{edge} (a test imports only {', '.join(TEST_SHARED)})")
            continue
        if layer(edge.target) == source_layer:
            continue
        allowed = MAY_IMPORT[source_layer]
        if not _within(edge.target, allowed):
            broken.append(f"{edge} ({source_layer} may import only: {', '.join(allowed) or '-'})")
    return broken


def long_modules(root: Path, limit: int = MAX_LINES) -> list[str]:
    """Modules over ``limit`` lines, with their length."""
    long = []
    for path in project_modules(root).values():
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > limit:
            long.append(f"{path.relative_to(root)}: {lines} lines")
    return long


# ---- the project ------------------------------------------------------------------------------


def test_no_import_cycle() -> None:
    cycles = import_cycles(import_edges(REPO))
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_imports_follow_the_layers() -> None:
    broken = direction_violations(import_edges(REPO))
    assert not broken, "imports against design.md's rules:\n" + "\n".join(broken)


def test_no_module_over_400_lines() -> None:
    long = long_modules(REPO)
    assert not long, f"modules over {MAX_LINES} lines:\n" + "\n".join(long)


def test_every_module_has_a_layer() -> None:
    for module in project_modules(REPO):
        layer(module)  # raises for a module no rule covers


# ---- the checker itself, on a tiny tree with known faults -------------------------------------


def _tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for package in PACKAGES:  # every folder a package, as in the project
        for folder in [root / package, *(root / package).rglob("*")]:
            if folder.is_dir() and not (folder / "__init__.py").exists():
                (folder / "__init__.py").write_text("")
    return root


FAULTY = {
    # face -> live: against the layers; lazy, inside a function
    "stream/face/flow.py": "def f():\n    from stream.live.pipeline import Pipeline\n",
    # live.pipeline <-> live.spotting, one side only under TYPE_CHECKING: a cycle
    "stream/live/pipeline.py": "from stream.live import spotting\nfrom stream.contracts import X\n",
    "stream/live/spotting.py": (
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .pipeline import Pipeline\n"
    ),
    "stream/contracts.py": "X = 1\n",
    # engines -> stream, by a literal importlib call
    "engines/models/spotter.py": "import importlib\nimportlib.import_module('stream.contracts')\n",
    # a benchmark -> tests, and a test -> another test module
    "benchmarks/bench_x.py": "import tests.stream.test_a\n",
    "tests/stream/test_a.py": "from tests.stream.test_b import helper\n",
    "tests/stream/test_b.py": "def helper():\n    pass\n" + "x = 1\n" * 399,  # 401 lines
    "run_live.py": "from stream.live.pipeline import Pipeline\n",
}


def test_the_checker_finds_each_planted_fault(tmp_path: Path) -> None:
    root = _tree(tmp_path, FAULTY)
    edges = import_edges(root)
    assert import_cycles(edges) == [
        ["stream.live.pipeline", "stream.live.spotting", "stream.live.pipeline"]
    ]
    broken = direction_violations(edges)
    planted = [
        "stream/face/flow.py:2: stream.face.flow imports stream.live.pipeline",
        "engines/models/spotter.py:2: engines.models.spotter imports stream.contracts",
        "benchmarks/bench_x.py:1: benchmarks.bench_x imports tests.stream.test_a",
        "tests/stream/test_a.py:1: tests.stream.test_a imports tests.stream.test_b",
        "run_live.py:1: run_live imports stream.live.pipeline",
    ]
    assert sorted(b.split(" (")[0] for b in broken) == sorted(planted)
    assert long_modules(root) == ["tests/stream/test_b.py: 401 lines"]


def test_the_checker_passes_what_the_rules_allow(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "stream/contracts.py": "from stream.errors import E\n",
            "stream/errors.py": "class E(Exception):\n    pass\n",
            "stream/output/console.py": "from engines.eval.metrics import f\n",
            "engines/eval/metrics.py": "def f():\n    pass\n",
            "stream/capture/sources.py": "def s():\n    from stream.synthetic import animator\n",
            "stream/synthetic/animator.py": "from stream.face import rois\nfrom . import tps\n",
            "stream/synthetic/tps.py": "",
            "stream/face/rois.py": "from ..contracts import *\n",
            "stream/ui/hud.py": "import stream.privacy.live\nimport stream.synthetic.animator\n",
            "stream/privacy/live.py": "from stream.live.pipeline import P\n",
            "stream/live/pipeline.py": "from stream.capture.sources import s\nP = 1\n",
            "stream/app/run.py": "from stream.ui.hud import *\n",
            "run_live.py": "from stream.app.run import *\n",
            "tests/helpers.py": "",
            "tests/conftest.py": "R = 1\n",
            "tests/stream/test_a.py": "from tests.helpers import x\nfrom tests.helpers import R\n",
        },
    )
    edges = import_edges(root)
    assert len(edges) == 14  # the relative and the wildcard imports resolve too
    assert import_cycles(edges) == []
    assert direction_violations(edges) == []
    assert long_modules(root) == []
