"""Settings are read once, at each entry point, and passed down (core/settings.py): library code never calls
`settings.load()` itself. Read from the source: every call of core.settings' `load` in the packages is in one of the
entry points below, and each loads them once."""

from __future__ import annotations

import ast
from pathlib import Path

from core.paths import REPO

PACKAGES = ("core", "resolver", "data", "tools", "launch", "eval", "bench")
# processes that do not start from one of our command lines (core.cli.main gives those their settings)
ENTRY_POINTS = {
    "core/cli.py": {"main"},  # every command: loads them and hands them to the command's body
    "launch/cloud/runpod/entrypoint.py": {"main", "account"},  # a pod's first process; account: its fallback
    "eval/study/pod.py": {"main"},  # a study job's process on its pod
    "bench/gpu_device.py": {"main"},  # make gpu-check's process on the device
    "launch/rank_plugin.py": {"RankFingerprintPlugin.register"},  # axolotl calls the plugin in each rank
    "eval/reward_judge.py": {"_asker"},  # TRL calls a judge reward inside the trainer (once per judge: cached)
}


def load_calls(path: Path) -> list[tuple[str, int]]:
    """(enclosing function, line) of every call of core.settings' load (as settings.load or an imported load)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = (
        {"load"}
        if any(
            isinstance(n, ast.ImportFrom) and n.module == "core.settings" and any(a.name == "load" for a in n.names)
            for n in ast.walk(tree)
        )
        else set()
    )
    found: list[tuple[str, int]] = []

    def walk(node: ast.AST, scope: list[str]) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                walk(child, [*scope, child.name])
                continue
            if isinstance(child, ast.Call):
                f = child.func
                via_module = (
                    isinstance(f, ast.Attribute)
                    and f.attr == "load"
                    and isinstance(f.value, ast.Name)
                    and f.value.id == "settings"
                )
                if via_module or (isinstance(f, ast.Name) and f.id in names):
                    found.append((".".join(scope) or "<module>", child.lineno))
            walk(child, scope)

    walk(tree, [])
    return found


def library_files() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py") if p.name != "settings.py")


def test_library_code_does_not_load_the_settings():
    stray = []
    for path in library_files():
        rel = path.relative_to(REPO).as_posix()
        allowed = ENTRY_POINTS.get(rel, set())
        stray += [f"{rel}:{line} ({scope})" for scope, line in load_calls(path) if scope not in allowed]
    assert not stray, "settings.load() outside an entry point (take `s: Settings` instead):\n" + "\n".join(stray)


def test_each_entry_point_loads_them_once_and_exists():
    for rel, scopes in ENTRY_POINTS.items():
        calls = load_calls(REPO / rel)
        for scope in scopes:
            assert [s for s, _ in calls].count(scope) == 1, (rel, scope, calls)


def test_the_rule_sees_a_load_in_library_code(tmp_path):
    """The check itself: a library function that loads the settings, either way of writing it, is found."""
    sample = tmp_path / "lib.py"
    sample.write_text(
        "from core import settings\nfrom core.settings import load\n\n"
        "def helper():\n    return settings.load().outputs\n\n"
        "class Thing:\n    def method(self):\n        return load()\n"
    )
    assert load_calls(sample) == [("helper", 5), ("Thing.method", 9)]


def test_the_old_path_helpers_are_gone():
    """OUTPUTS and AFFINAGE_CACHE are `s.outputs` and `s.cache`: no helper reads the environment for them."""
    import core.settings as module

    assert not hasattr(module, "outputs_dir") and not hasattr(module, "cache_dir")
