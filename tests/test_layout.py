"""The package's shape: folders by concept, no import cycles, click only in the CLI, small parts.

The import graph is drawn from the code itself, function-level imports included (imports under
``if TYPE_CHECKING:`` do not run and are left out), the way docs/architecture.md describes it.
"""

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "clipxai"
MAX_TOP_LEVEL_MODULES = 6
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80
# Parts still over the limits, at their size when the limits came in: they may shrink, never grow,
# and each leaves this list when it is split (tracked in the package-by-concept issue).
NOT_YET_SPLIT = {
}


def _modules() -> dict[str, tuple[Path, bool]]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return out


def _absolute(module: str, is_package: bool, level: int, name: str | None) -> str:
    if level == 0:
        return name or ""
    base = module.split(".")[: None if is_package else -1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def _type_checking_only(node, parents) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            return True
    return False


def import_graph() -> dict[str, set[str]]:
    """module -> the package modules it imports, anywhere in its body."""
    modules = _modules()

    def target(name: str) -> str | None:
        parts = name.split(".")
        for i in range(len(parts), 0, -1):
            if ".".join(parts[:i]) in modules:
                return ".".join(parts[:i])
        return None

    graph = defaultdict(set)
    for module, (path, is_package) in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        for node in ast.walk(tree):
            if _type_checking_only(node, parents):
                continue
            if isinstance(node, ast.Import):
                names = [target(a.name) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                full = _absolute(module, is_package, node.level, node.module)
                names = [target(f"{full}.{a.name}") or target(full) for a in node.names]
            else:
                continue
            graph[module] |= {n for n in names if n and n != module}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in list(graph):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_imports_itself_through_others():
    assert cycles(import_graph()) == []


def test_the_top_level_reads_as_a_table_of_contents():
    modules = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(modules) <= MAX_TOP_LEVEL_MODULES, modules
    for folder in ("ascent", "terms", "params", "runs", "models", "analysis", "report", "cli", "util"):
        assert (PACKAGE / folder / "__init__.py").is_file(), folder


def test_click_is_imported_only_by_the_command_line():
    outside = sorted(m for m in _click_importers() if m != "clipxai.cli" and not m.startswith("clipxai.cli."))
    assert outside == []


def test_exit_codes_are_named_once_in_errors():
    """``EXIT_* = <number>`` is written only in clipxai/errors.py; everything else imports the names."""
    literal = []
    for module, (path, _) in _modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Assign) and isinstance(node.value, (ast.Constant, ast.Tuple)):
                names = [t.id for t in node.targets if isinstance(t, ast.Name)]
                names += [e.id for t in node.targets if isinstance(t, ast.Tuple) for e in t.elts if isinstance(e, ast.Name)]
                literal += [f"{module}.{n}" for n in names if n.startswith("EXIT_")]
    assert literal and all(name.startswith("clipxai.errors.") for name in literal), literal


def _click_importers() -> set[str]:
    found = set()
    for module, (path, _) in _modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            if any(name.split(".")[0] == "click" for name in names):
                found.add(module)
    return found


def sizes_over_the_limits() -> dict[str, int]:
    """Modules over MAX_MODULE_LINES and functions over MAX_FUNCTION_LINES, with their lengths."""
    over = {}
    for module, (path, _) in _modules().items():
        text = path.read_text(encoding="utf-8")
        if text.count("\n") > MAX_MODULE_LINES:
            over[module] = text.count("\n")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    over[f"{module}.{node.name}"] = length
    return over


def test_modules_and_functions_stay_small():
    over = sizes_over_the_limits()
    new = {name: size for name, size in over.items() if name not in NOT_YET_SPLIT}
    grown = {name: size for name, size in over.items() if size > NOT_YET_SPLIT.get(name, size)}
    assert new == {} and grown == {}
    split = sorted(set(NOT_YET_SPLIT) - set(over))
    assert split == [], f"{split} are within the limits now: take them off NOT_YET_SPLIT"
