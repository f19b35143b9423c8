"""Preflight of a GRPO config's reward functions (trl.reward_funcs): each dotted path imports as axolotl imports it,
is callable, and takes what TRL passes. TRL calls f(prompts=, completions=, completion_ids=, trainer_state=,
log_extra=, log_metric=, **every dataset column) by keyword; a parameter without a default must be one of those,
and without **kwargs every one of those must be a parameter. The columns come from the dataset entries
(data/grpo_kinds.py columns). A path that names no module is what axolotl then loads as a reward model (a local
folder or a Hub id); it is stated, not checked. A reward carrying a `preflight` (a judge reward:
eval/reward_judge.py) adds what it says; its judge is asked only before training (launch/grpo.py)."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

from data import sources
from data.entries import dataset_entries
from data.grpo_kinds import columns
from launch.preflight.findings import Finding
from resolver.resolve import Resolved

TRL_KWARGS = frozenset({"prompts", "completions", "completion_ids", "trainer_state", "log_extra", "log_metric"})


def load_reward(path: str) -> tuple[Callable[..., Any] | None, str | None]:
    """(the function, None); (None, None) for a reward model path; (None, why) when it cannot be loaded."""
    module, _, attr = str(path).rpartition(".")
    if not module:
        if Path(path).expanduser().is_dir() or "/" in path:
            return None, None
        return None, f"{path!r} is neither module.function nor a reward model folder or Hub id"
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and module.startswith(exc.name) and (Path(path).expanduser().is_dir() or "/" in path):
            return None, None  # axolotl's reward-model fallback
        if exc.name and module.startswith(exc.name):
            return None, f"no module {exc.name!r} (dotted paths are imported from the repo root)"
        return None, f"importing {module} fails: it imports {exc.name!r}, which is not installed"
    except Exception as exc:  # noqa: BLE001 - a user's module may raise anything at import
        return None, f"importing {module} fails ({type(exc).__name__}: {str(exc)[:200]})"
    try:
        fn = getattr(mod, attr)
    except AttributeError as exc:
        return None, str(exc)[:300]
    if not callable(fn):
        return None, f"{path} is not a function"
    return fn, None


def signature_problems(fn: Callable[..., Any], cols: frozenset[str] | None) -> list[tuple[str, str]]:
    """(level, message) for parameters TRL cannot fill and keywords it passes that the function does not take."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return [("warning", "its signature cannot be read: not checked")]
    if len(params) < 2:
        return [("error", "it takes fewer than two parameters (axolotl wants prompts and completions)")]
    out = []
    positional = [n for n, p in params.items() if p.kind is inspect.Parameter.POSITIONAL_ONLY]
    if positional:
        out.append(("error", f"TRL passes every argument by keyword; {', '.join(positional)} is positional-only"))
    passed = TRL_KWARGS | (cols or frozenset())
    required = [
        n
        for n, p in params.items()
        if p.default is inspect.Parameter.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    for name in required:
        if name in passed:
            continue
        if cols is None:
            out.append(("warning", f"it needs a column {name!r}; the dataset's transform decides (not checked)"))
        else:
            given = ", ".join(sorted(cols - {"prompt"})) or "none"
            out.append(("error", f"it needs a column {name!r} the dataset does not give (its columns: {given})"))
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        extra = sorted(passed - set(params) - {"prompt"})
        if extra:
            out.append(("error", f"TRL also passes {', '.join(extra)}: add **kwargs to its parameters"))
    return out


def dataset_columns(config: dict[str, Any]) -> frozenset[str] | None:
    """The columns every training row has (the intersection over the training datasets); None if any is unknown
    (a transform of the user's, a Hub dataset not readable here)."""
    found: frozenset[str] | None = None
    for section, _, ds in dataset_entries(config):
        if section != "datasets":
            continue
        first = None
        if sources.is_local(ds):
            try:
                first = next((row.record for row in sources.rows(ds, 1)), None)
            except Exception:  # noqa: BLE001 - an unreadable file is the data check's finding
                return None
        cols = columns(ds, first)
        if cols is None or (first is None and ds.get("type") is None):
            return None
        found = cols if found is None else found & cols
    return found


def check_rewards(r: Resolved) -> list[Finding]:
    trl = r.config.get("trl") or {}
    funcs, weights = trl.get("reward_funcs") or [], trl.get("reward_weights")
    where = r.where("trl.reward_funcs")
    if not isinstance(funcs, list) or not funcs:
        return [Finding("error", "grpo", "GRPO needs reward functions: trl.reward_funcs is empty", where)]
    out = []
    if weights is not None and (not isinstance(weights, list) or len(weights) != len(funcs)):
        out.append(
            Finding(
                "error",
                "grpo",
                f"trl.reward_weights has {len(weights) if isinstance(weights, list) else 'no list of'} weights for "
                f"{len(funcs)} reward functions",
                r.where("trl.reward_weights"),
                "one weight per reward function, in the same order (or no reward_weights: all 1.0)",
            )
        )
    cols = dataset_columns(r.config)
    for i, path in enumerate(funcs):
        at = r.where(f"trl.reward_funcs[{i}]")
        fn, why = load_reward(str(path))
        if why:
            out.append(Finding("error", "grpo", f"reward function {path}: {why}", at, "a module.function path"))
            continue
        if fn is None:
            out.append(Finding("warning", "grpo", f"{path}: loaded by axolotl as a reward model (not checked)", at))
            continue
        problems = signature_problems(fn, cols)
        hook = getattr(fn, "preflight", None)
        said = hook(r.settings) if callable(hook) else []
        out += [Finding(level, "grpo", f"reward function {path}: {msg}", at) for level, msg in [*problems, *said]]
        if not any(level == "error" for level, _ in problems):
            out.append(Finding("ok", "grpo", f"reward function {path}: importable, takes what TRL passes", at))
    return out
