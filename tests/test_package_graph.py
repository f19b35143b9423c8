"""The shape of the code, read from the source: the package import graph has no cycle (function-local imports
count: they hide cycles, they do not remove them), the environment is read only in core/settings.py and at the
edges, production code never imports the tests, and no Python file grows past the size one job needs."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

from core.paths import REPO

# the top-level packages, lowest first: each imports only those before it (resolver: the recipe system)
PRODUCT = ("core", "resolver", "data", "tools", "launch", "eval", "bench")
MAX_LINES = 400
# where os.environ may be read: the settings module, the child-process environment, and entry points (`main`)
ENV_READERS = {"core/settings.py", "core/childenv.py"}


def product_files() -> list[Path]:
    return sorted(p for top in PRODUCT for p in (REPO / top).rglob("*.py"))


def package_of(module: str) -> str | None:
    """The innermost package (a folder with __init__.py) that holds `module` (dotted), or None if not ours."""
    parts = module.split(".")
    if parts[0] not in (*PRODUCT, "tests"):
        return None
    for n in range(len(parts), 0, -1):
        folder = REPO.joinpath(*parts[:n])
        if (folder / "__init__.py").is_file():
            return ".".join(parts[:n])
    return None


def module_name(path: Path) -> str:
    rel = path.relative_to(REPO).with_suffix("")
    return ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)


def imports(path: Path) -> set[str]:
    """Every module `path` imports, anywhere in the file (from x import y counts x.y when that is a module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            for a in node.names:
                candidate = f"{node.module}.{a.name}"
                if (REPO.joinpath(*candidate.split(".")).with_suffix(".py")).is_file() or (
                    REPO.joinpath(*candidate.split(".")) / "__init__.py"
                ).is_file():
                    found.add(candidate)
    return found


def package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for path in product_files():
        src = package_of(module_name(path))
        for target in imports(path):
            dst = package_of(target)
            if dst and src and dst != src:
                graph[src].add(dst)
    return graph


def file_graph() -> dict[str, set[str]]:
    """module -> the modules of ours it imports (a `from pkg import name` of a non-module name counts pkg)."""
    modules = {module_name(p): p for p in product_files()}
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        for target in imports(path):
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                graph[name].add(target)
    return graph


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """Every import of a top-level package that stands above the importer's in PRODUCT."""
    rank = {top: i for i, top in enumerate(PRODUCT)}
    return [
        f"{src} -> {dst}"
        for src, targets in sorted(graph.items())
        for dst in sorted(targets)
        if rank[dst.split(".")[0]] > rank[src.split(".")[0]]
    ]


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_the_package_graph_has_no_cycle():
    graph = package_graph()
    assert graph["launch"] and graph["eval"], "the graph reader found no edges: it reads nothing"
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_no_two_files_import_each_other_even_through_others():
    graph = file_graph()
    assert len(graph) > 100 and graph["launch.train"], "the file graph reader found no edges: it reads nothing"
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_imports_point_down_the_layers():
    assert not upward_imports(file_graph())
    assert upward_imports({"data.kinds": {"launch.train"}, "launch.train": {"data.kinds"}}) == [
        "data.kinds -> launch.train"
    ]


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_core_depends_on_nothing_of_ours():
    assert package_graph().get("core", set()) == set()


def test_production_code_never_imports_the_tests():
    offenders = [
        str(p.relative_to(REPO)) for p in product_files() if any(m.split(".")[0] == "tests" for m in imports(p))
    ]
    assert not offenders


def _environ_reads(path: Path) -> list[tuple[int, str]]:
    """(line, enclosing function) of every os.environ / os.getenv use outside a `main` function."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []

    def walk(node: ast.AST, func: str) -> None:
        for child in ast.iter_child_nodes(node):
            name = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else func
            if (
                isinstance(child, ast.Attribute)
                and isinstance(child.value, ast.Name)
                and child.value.id == "os"
                and child.attr in ("environ", "getenv")
                and name != "main"
            ):
                out.append((child.lineno, name))
            walk(child, name)

    walk(tree, "<module>")
    return out


def test_the_environment_is_read_only_in_settings_and_entry_points():
    offenders = [
        f"{p.relative_to(REPO)}:{line} (in {func})"
        for p in product_files()
        if str(p.relative_to(REPO)) not in ENV_READERS
        for line, func in _environ_reads(p)
    ]
    assert not offenders, offenders


def test_files_stay_small():
    long = [
        f"{p.relative_to(REPO)} ({n} lines)"
        for p in [*product_files(), *(REPO / "tests").glob("*.py")]
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    ]
    assert not long, long
