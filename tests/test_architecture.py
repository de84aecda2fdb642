"""The package's import graph keeps its shape: no cycles, layers import only downward, and the
framework-neutral campaign core names no framework.

Static: every ``.py`` file under ``src/faultzoo`` is parsed with :mod:`ast`; nothing of faultzoo is
imported. Each ``import`` / ``from ... import`` that names a faultzoo module is an edge, wherever it
stands: at module level (class bodies and ``try`` blocks included), inside a function or method
(deferred, but it runs when called), or in an ``if TYPE_CHECKING:`` block (type-only).

How a statement becomes an edge:

* ``import faultzoo.a.b`` -> ``faultzoo.a.b``; ``from faultzoo.a import n`` -> ``faultzoo.a.n`` when
  that is a module file (or package) under src/faultzoo, else ``faultzoo.a``; relative imports are
  resolved against the importing module's package first. A name that is no module file at all
  (an import that would fail) stays an edge to that dotted name.
* Importing ``faultzoo.a.b`` also runs ``faultzoo/a/__init__.py``, but no implicit edge to the
  parent package is added: a package's ``__init__`` is a module like any other whose edges are its
  own imports (Python puts a package in ``sys.modules`` before its submodules run, so the parent
  link alone closes no real cycle; an explicit ``from faultzoo.a import name`` of a name defined in
  ``faultzoo/a/__init__.py`` *is* an edge to ``faultzoo.a`` and counts).
* Strings handed to ``importlib.import_module`` are not edges (the top-level ``faultzoo`` maps its
  public names lazily that way). Imports of a module by itself are dropped.

Decisions on ``if TYPE_CHECKING:`` imports (they never run):

* cycle check: excluded. Cycles that only appear when they are added are reported separately, as
  a warning of the cycle test (they never fail it);
* layer check: included. Naming a higher layer's types is still an upward dependency of the design.

The word check on ``faultzoo.campaign`` is a plain case-insensitive substring search for ``keras``
(so ``is_keras`` and ``faultzoo.keras`` both count), in code, strings and comments alike.
"""

from __future__ import annotations

import ast
import re
import warnings
from collections import deque
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
PACKAGE = "faultzoo"

# The layers, top to bottom. A module may import modules of its own layer and of any layer below it,
# never one above. "x.*" is the package x and everything under it; a name without ".*" is that
# module alone. Every module of faultzoo must match one entry (the most specific one wins).
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("cli",      ("faultzoo.cli.*", "faultzoo.__main__")),
    ("analysis", ("faultzoo.analysis.*",)),
    ("campaign", ("faultzoo.campaign.*",)),
    ("backends", ("faultzoo.backends.*", "faultzoo.keras.*")),  # the Keras twins are a backend
    ("faults",   ("faultzoo.faults.*",)),
    ("zoo",      ("faultzoo.zoo.*",)),
    ("data",     ("faultzoo.data.*", "faultzoo.inference")),
    ("base",     ("faultzoo._registry", "faultzoo._files", "faultzoo._hub", "faultzoo._sharedmem", "faultzoo._env",
                  "faultzoo.outcome", "faultzoo.layouts", "faultzoo.exceptions",
                  "faultzoo")),  # top-level __init__: maps names lazily through importlib strings
)

# The framework-neutral core: no mention of Keras, no branching on a framework's name.
NEUTRAL_CORE = "faultzoo.campaign"

MODULE_LEVEL, IN_FUNCTION, TYPE_ONLY = "module-level", "in function", "TYPE_CHECKING"


# --- the graph ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    path: Path
    line: int
    kind: str  # MODULE_LEVEL, IN_FUNCTION or TYPE_ONLY

    @property
    def where(self) -> str:
        return f"{_display(self.path)}:{self.line}"

    def describe(self) -> str:
        return f"{self.source} -> {self.target}  [{self.where}, {self.kind}]"


@dataclass
class ImportGraph:
    package: str
    modules: dict[str, Path]  # dotted name -> file
    edges: list[Edge]

    def adjacency(self, *, type_only: bool = False) -> dict[str, dict[str, list[Edge]]]:
        """source -> target -> the statements making that edge; TYPE_CHECKING ones only if asked."""
        adjacency: dict[str, dict[str, list[Edge]]] = {}
        for edge in self.edges:
            if edge.kind == TYPE_ONLY and not type_only:
                continue
            adjacency.setdefault(edge.source, {}).setdefault(edge.target, []).append(edge)
        return adjacency


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return str(path)


def discover_modules(src_root: Path, package: str) -> dict[str, Path]:
    modules = {}
    for path in sorted((src_root / package).rglob("*.py")):
        parts = path.relative_to(src_root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_statements(node: ast.AST, kind: str = MODULE_LEVEL):
    """Every Import/ImportFrom under ``node`` with where it runs: module level, in a function, or
    never (the body of ``if TYPE_CHECKING:``; its ``else:`` runs as usual)."""
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        yield node, kind
        return
    if isinstance(node, ast.If) and _is_type_checking(node.test):
        for statement in node.body:
            yield from _import_statements(statement, TYPE_ONLY)
        for statement in node.orelse:
            yield from _import_statements(statement, kind)
        return
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)) and kind == MODULE_LEVEL:
        kind = IN_FUNCTION
    for child in ast.iter_child_nodes(node):
        yield from _import_statements(child, kind)


def _targets(statement: ast.Import | ast.ImportFrom, module: str, is_package: bool,
             modules: dict[str, Path]) -> list[str]:
    """Dotted names of the modules one import statement loads (faultzoo or not; filtered later)."""
    if isinstance(statement, ast.Import):
        return [alias.name for alias in statement.names]
    if statement.level:
        package_parts = module.split(".") if is_package else module.split(".")[:-1]
        up = statement.level - 1
        if up > len(package_parts) - 1:
            return []  # beyond the top-level package: not ours
        base = ".".join(package_parts[:len(package_parts) - up])
        if statement.module:
            base = f"{base}.{statement.module}"
    else:
        base = statement.module or ""
    return [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
            for alias in statement.names]


def build_graph(src_root: Path, package: str) -> ImportGraph:
    modules = discover_modules(src_root, package)
    edges = []
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_package = path.name == "__init__.py"
        for statement, kind in _import_statements(tree):
            for target in dict.fromkeys(_targets(statement, module, is_package, modules)):  # once each
                if target != module and (target == package or target.startswith(package + ".")):
                    edges.append(Edge(module, target, path, statement.lineno, kind))
    return ImportGraph(package, modules, edges)


@cache
def faultzoo_graph() -> ImportGraph:
    return build_graph(SRC, PACKAGE)


# --- cycles ---------------------------------------------------------------------------------------


def strongly_connected_components(adjacency: dict[str, dict[str, list[Edge]]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative (no recursion limit); components in a stable order."""
    nodes = sorted({*adjacency, *(t for targets in adjacency.values() for t in targets)})
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components = []
    for root in nodes:
        if root in index:
            continue
        work = [(root, iter(sorted(adjacency.get(root, {}))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(adjacency.get(successor, {})))))
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    components.append(sorted(component))
    return sorted(components)


def _shortest_path(adjacency, start: str, goal: str, allowed: set[str]) -> list[str]:
    previous = {start: None}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        if node == goal:
            break
        for successor in sorted(adjacency.get(node, {})):
            if successor in allowed and successor not in previous:
                previous[successor] = node
                queue.append(successor)
    path = [goal]
    while path[-1] != start:
        path.append(previous[path[-1]])
    return path[::-1]


def find_cycles(adjacency: dict[str, dict[str, list[Edge]]]) -> list[list[str]]:
    """Cycles as node chains ``[a, b, ..., a]``: for each strongly connected component, shortest
    cycles until every edge inside the component lies on one of them (so each edge that might be
    cut to break the component is shown, without enumerating all elementary cycles)."""
    cycles = []
    for component in strongly_connected_components(adjacency):
        members = set(component)
        if len(component) == 1:
            continue  # self-imports are not edges
        covered: set[tuple[str, str]] = set()
        for source in component:
            for target in sorted(adjacency.get(source, {})):
                if target not in members or (source, target) in covered:
                    continue
                chain = [source, *_shortest_path(adjacency, target, source, members)]
                covered.update(zip(chain, chain[1:]))
                cycles.append(chain)
    return cycles


def type_only_cycles(graph: ImportGraph) -> list[list[str]]:
    """Cycles that exist only once ``if TYPE_CHECKING:`` edges are added (reported, never failed)."""
    runtime_groups = [set(c) for c in strongly_connected_components(graph.adjacency()) if len(c) > 1]
    with_types = graph.adjacency(type_only=True)
    return [chain for chain in find_cycles(with_types)
            if any(edge.kind == TYPE_ONLY for a, b in zip(chain, chain[1:]) for edge in with_types[a][b])
            and not any(set(chain) <= group for group in runtime_groups)]


def describe_cycle(chain: list[str], adjacency: dict[str, dict[str, list[Edge]]]) -> str:
    lines = [" -> ".join(chain)]
    for source, target in zip(chain, chain[1:]):
        where = ", ".join(f"{edge.where} ({edge.kind})" for edge in adjacency[source][target])
        lines.append(f"      {source} -> {target}: {where}")
    return "\n".join(lines)


# --- layers ---------------------------------------------------------------------------------------


def layer_of(module: str) -> str | None:
    best, best_length = None, -1
    for layer, patterns in LAYERS:
        for pattern in patterns:
            if pattern.endswith(".*"):
                stem = pattern[:-2]
                matches = module == stem or module.startswith(stem + ".")
            else:
                stem, matches = pattern, module == pattern
            if matches and len(stem) > best_length:
                best, best_length = layer, len(stem)
    return best


def layer_table() -> str:
    width = max(len(layer) for layer, _ in LAYERS)
    rows = [f"  {k + 1}. {layer:<{width}}  {', '.join(patterns)}" for k, (layer, patterns) in enumerate(LAYERS)]
    return "Layers, top to bottom (a module may import its own layer and those below it):\n" + "\n".join(rows)


# --- the checks on faultzoo -----------------------------------------------------------------------


def test_no_import_cycles():
    graph = faultzoo_graph()
    runtime = graph.adjacency()
    cycles = find_cycles(runtime)
    type_only = type_only_cycles(graph)
    if type_only:
        with_types = graph.adjacency(type_only=True)
        warnings.warn("import cycles through `if TYPE_CHECKING:` imports only (they never run, so they "
                      "do not fail the test):\n"
                      + "\n".join(f"  {describe_cycle(chain, with_types)}" for chain in type_only),
                      stacklevel=1)
    if cycles:
        pytest.fail(f"{len(cycles)} import cycle(s) among faultzoo modules (module-level and in-function "
                    "imports; each edge of a cyclic group lies on at least one cycle shown):\n"
                    + "\n".join(f"  {describe_cycle(chain, runtime)}" for chain in cycles), pytrace=False)


def test_layers_import_only_downward():
    graph = faultzoo_graph()
    rank = {layer: k for k, (layer, _) in enumerate(LAYERS)}  # 0 = top
    unknown = sorted({m for m in graph.modules if layer_of(m) is None}
                     | {e.target for e in graph.edges if layer_of(e.target) is None})
    upward = []
    for edge in sorted(graph.edges, key=lambda e: (str(e.path), e.line, e.target)):
        source_layer, target_layer = layer_of(edge.source), layer_of(edge.target)
        if source_layer and target_layer and rank[target_layer] < rank[source_layer]:
            upward.append(f"  {edge.where}  {edge.source} ({source_layer}) imports {edge.target} "
                          f"({target_layer})  [{edge.kind}]")
    problems = []
    if unknown:
        problems.append("Modules in no layer (add them to LAYERS at the top of tests/test_architecture.py):\n"
                        + "\n".join(f"  {m}" for m in unknown))
    if upward:
        problems.append(f"{len(upward)} upward import(s):\n" + "\n".join(upward))
    if problems:
        pytest.fail("\n\n".join([*problems, layer_table()]), pytrace=False)


def _neutral_core_files() -> list[Path]:
    graph = faultzoo_graph()
    return sorted(path for module, path in graph.modules.items()
                  if module == NEUTRAL_CORE or module.startswith(NEUTRAL_CORE + "."))


def test_campaign_core_never_mentions_keras():
    hits = []
    for path in _neutral_core_files():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search("keras", line, re.IGNORECASE):
                hits.append(f"  {_display(path)}:{number}: {line.strip()}")
    if hits:
        pytest.fail(f"{NEUTRAL_CORE} is framework-neutral but mentions Keras on {len(hits)} line(s) "
                    "(code or comment; move it to the backend layer):\n" + "\n".join(hits), pytrace=False)


def _names_framework(node: ast.AST) -> bool:
    name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""
    return name.lower().endswith("framework")


def _is_str_literal(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str)
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):  # framework in ("torch", "keras")
        return bool(node.elts) and all(_is_str_literal(element) for element in node.elts)
    return False


def framework_comparisons(tree: ast.AST) -> list[int]:
    """Lines comparing a ``...framework`` name with a string literal (any Compare operator, either
    side), or ``match ...framework:`` with a string ``case``."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            for left, right in zip(operands, operands[1:]):
                if (_names_framework(left) and _is_str_literal(right)) or (
                        _names_framework(right) and _is_str_literal(left)):
                    lines.append(node.lineno)
                    break
        elif isinstance(node, ast.Match) and _names_framework(node.subject):
            lines += [case.pattern.lineno for case in node.cases if isinstance(case.pattern, ast.MatchValue)
                      and _is_str_literal(case.pattern.value)]
    return sorted(lines)


def test_campaign_core_does_not_branch_on_framework_name():
    hits = []
    for path in _neutral_core_files():
        source = path.read_text(encoding="utf-8")
        lines = source.splitlines()
        for number in framework_comparisons(ast.parse(source, filename=str(path))):
            hits.append(f"  {_display(path)}:{number}: {lines[number - 1].strip()}")
    if hits:
        pytest.fail(f"{NEUTRAL_CORE} compares a framework name with a string literal {len(hits)} time(s) "
                    "(dispatch through the backend instead):\n" + "\n".join(hits), pytrace=False)


# --- the checker checks itself on a tiny package --------------------------------------------------


def _write_package(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_graph_builder_on_a_synthetic_package(tmp_path):
    _write_package(tmp_path, {
        "pkg/__init__.py": "import importlib\nX = importlib.import_module('pkg.a')\n",
        # a -> b at module level; b -> a only inside a function: still a cycle
        "pkg/a.py": "from pkg import b\nfrom . import c\nimport os\n",
        "pkg/b.py": "def f():\n    from pkg.a import thing\n    return thing\n",
        # c -> a only under TYPE_CHECKING (else-branch runs): no runtime cycle a -> c -> a
        "pkg/c.py": ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import thing\n"
                     "else:\n    from .sub import d\n"),
        "pkg/sub/__init__.py": "from .d import VALUE\n",
        "pkg/sub/d.py": "from ..sub import e\nfrom .. import NAME\nVALUE = 1\n",
        "pkg/sub/e.py": "class K:\n    import pkg.sub.d\n",
    })
    graph = build_graph(tmp_path, "pkg")
    assert set(graph.modules) == {"pkg", "pkg.a", "pkg.b", "pkg.c", "pkg.sub", "pkg.sub.d", "pkg.sub.e"}
    edges = {(e.source, e.target, e.line, e.kind) for e in graph.edges}
    assert edges == {
        ("pkg.a", "pkg.b", 1, MODULE_LEVEL),
        ("pkg.a", "pkg.c", 2, MODULE_LEVEL),
        ("pkg.b", "pkg.a", 2, IN_FUNCTION),
        ("pkg.c", "pkg.a", 3, TYPE_ONLY),
        ("pkg.c", "pkg.sub.d", 5, MODULE_LEVEL),
        ("pkg.sub", "pkg.sub.d", 1, MODULE_LEVEL),
        ("pkg.sub.d", "pkg.sub.e", 1, MODULE_LEVEL),
        ("pkg.sub.d", "pkg", 2, MODULE_LEVEL),
        ("pkg.sub.e", "pkg.sub.d", 2, MODULE_LEVEL),  # class bodies run at import
    }  # no edge from importlib strings, none to os

    assert find_cycles(graph.adjacency()) == [["pkg.a", "pkg.b", "pkg.a"], ["pkg.sub.d", "pkg.sub.e", "pkg.sub.d"]]
    assert type_only_cycles(graph) == [["pkg.a", "pkg.c", "pkg.a"]]
    message = describe_cycle(["pkg.a", "pkg.b", "pkg.a"], graph.adjacency())
    assert "pkg/a.py:1 (module-level)" in message and "pkg/b.py:2 (in function)" in message


def test_cycle_finder_covers_every_edge_of_a_component():
    adjacency = {"a": {"b": []}, "b": {"c": [], "a": []}, "c": {"a": []}, "d": {"a": []}}
    cycles = find_cycles(adjacency)
    assert cycles == [["a", "b", "a"], ["b", "c", "a", "b"]]  # d is in no cycle
    assert strongly_connected_components(adjacency) == [["a", "b", "c"], ["d"]]


def test_layer_lookup_and_framework_comparisons():
    assert layer_of("faultzoo") == "base"
    assert layer_of("faultzoo.keras.campaign.fast") == "backends"
    assert layer_of("faultzoo.faults.keras") == "faults"
    assert layer_of("faultzoo.__main__") == "cli"
    assert layer_of("faultzoo.unheard_of") is None
    assert all(p == PACKAGE or p.startswith(PACKAGE + ".") for _, patterns in LAYERS for p in patterns)
    tree = ast.parse("if spec.framework == 'keras':\n    pass\n"
                     "x = 1 if 'torch' != framework else 2\n"
                     "ok = spec.framework == other\n"
                     "y = model_framework in ('torch', 'keras')\n"
                     "match self.framework:\n    case 'torch':\n        pass\n    case _:\n        pass\n")
    assert framework_comparisons(tree) == [1, 3, 5, 7]  # the match is reported at its string case
