"""What `make bench` times as a user runs it: each command is the user's own `make` target with the user's defaults
(a quick bench states each difference), and a time counts only once the command's work is checked: its exit status,
the lines it prints when done, the files and manifest section it writes. The default pipeline (`make train`,
`make merge`, `make gguf`, `make eval`) runs in one OUTPUTS; `make check` and bad-input refusals run cold (a new
process each time, imports included)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

from bench.measure import run_tracked, spread
from core import childenv
from core.paths import REPO
from core.settings import DEFAULT_RECIPE

# variables that would change what a target does from its defaults: the bench's commands never inherit them
NOT_INHERITED = {
    "RECIPE", "RUN", "ARGS", "DEVICE", "GPUS", "NODES", "STRATEGY", "QUANTS", "OUTTYPE", "BACKENDS", "LIMIT",
    "MAX_NEW_TOKENS", "GEN_BACKEND", "GEN_BATCH", "FORCE", "RESUME", "SEED", "DATA", "FORMAT",
}  # fmt: skip
TARGETS_S = {"pipeline": 180.0, "check": 5.0, "refusal": 2.0}
# quick mode's differences from the user's defaults, per stage (make bench without BENCH_QUICK has none)
QUICK = {
    "merge": {},
    "gguf": {"QUANTS": "Q8_0"},
    "eval": {"LIMIT": "2", "MAX_NEW_TOKENS": "8"},
}


class NotDone(RuntimeError):
    """A timed command that did not do its work: no time is recorded for it."""


def user_env(outputs: Path) -> dict[str, str]:
    env = childenv.child_env(offline=True, extra={"OUTPUTS": str(outputs), "PYTHONUNBUFFERED": "1"})
    return {k: v for k, v in env.items() if k not in NOT_INHERITED}


def make(target: str, variables: dict[str, str], outputs: Path) -> dict[str, Any]:
    """`make <target> VAR=value ...` from the repo root, measured; `command` is what a user types."""
    args = [f"{k}={v}" for k, v in variables.items()]
    out = run_tracked(["make", target, *args], env=user_env(outputs), cwd=REPO)
    return {**out, "command": shlex.join(["make", target, *args])}


def _fail(out: dict[str, Any], why: str) -> NotDone:
    return NotDone(
        f"`{out['command']}` did not do its work ({why}; exit {out['returncode']}):\n{out['stdout'][-2000:]}"
    )


def latest_run(outputs: Path, recipe: str = DEFAULT_RECIPE) -> Path | None:
    from core import rundir

    pointer = outputs / "runs" / recipe / rundir.LATEST
    return pointer.parent / pointer.read_text().strip() if pointer.is_file() else None


def checked_train(out: dict[str, Any], outputs: Path) -> Path:
    """The run `make train` completed: its manifest says completed and the final adapter is there."""
    from core import manifest, rundir

    run = latest_run(outputs)
    if out["returncode"] != 0 or run is None:
        raise _fail(out, "no run directory")
    m = manifest.read(run)
    if m.train.status != "completed" or not (rundir.final_adapter(run) / "adapter_model.safetensors").is_file():
        raise _fail(out, f"the run's status is {m.train.status}, or it has no final adapter")
    return run


def checked(stage: str, out: dict[str, Any], run: Path) -> dict[str, Any]:
    """What `make merge|gguf|eval` must have written to count: {} or the facts the report uses."""
    from core import manifest

    m = manifest.read(run)
    if out["returncode"] != 0:
        raise _fail(out, "a failed exit status")
    if stage == "merge":
        if m.merge is None or not m.merge.files or not all((run / m.merge.path / f).is_file() for f in m.merge.files):
            raise _fail(out, "no merged model recorded in the manifest")
        return {}
    if stage == "gguf":
        files = m.gguf.files if m.gguf else {}
        if m.gguf is None or m.gguf.parity != "pass" or "parity: pass" not in out["stdout"]:
            raise _fail(out, "no GGUF whose parity passed")
        if not all((run / m.gguf.path / f.file).is_file() for f in files.values()):
            raise _fail(out, "a GGUF file named in the manifest is missing")
        return {"mb": {k: f.bytes / 1e6 for k, f in files.items()}, "outtype": m.gguf.outtype}
    section = m.lm_eval
    rows = [*(section.results if section else []), *([section.base] if section and section.base else [])]
    printed = [
        r for r in rows if any(line.startswith(r.task) and r.engine in line for line in out["stdout"].split("\n"))
    ]
    if not rows or len(printed) != len(rows) or not all(r.metrics for r in rows):
        raise _fail(out, "no scored row for each backend in the manifest and the output")
    return {
        "rows": {r.backend: r.engine for r in rows},
        "choice": section.choice,
        "base_gguf_built": bool((section.base_gguf or {}).get("built")),
        "docs": min(section.limit or section.docs or 0, section.docs or 0),
    }


def gguf_phases(lines: list[tuple[float, str]]) -> dict[str, float]:
    """Seconds of the conversion and of each quantization, from when `make gguf` printed each step's line."""
    marks = [(t, text) for t, text in lines if text.startswith(("converting ", "quantizing -> ", "parity: HF"))]
    out = {}
    for (t, text), (t_next, _) in zip(marks, marks[1:], strict=False):
        if text.startswith("converting "):
            out["convert"] = t_next - t
        elif m := re.match(r"quantizing -> .*-([A-Za-z0-9_]+)\.gguf$", text):
            out[m.group(1)] = t_next - t
    return out


def pipeline(quick: bool, outputs: Path, train: dict[str, Any] | None, log=print) -> dict[str, Any]:
    """train (unless `train`, an already measured `make train` into `outputs`, is given), merge, gguf, eval."""
    stages: dict[str, dict[str, Any]] = {}
    if train is None:
        log("make train (the default recipe, as a user runs it)")
        train = make("train", {}, outputs)
    run = checked_train(train, outputs)
    stages["train"] = {"seconds": train["seconds"], "command": train["command"]}
    facts = {}
    for stage in ("merge", "gguf", "eval"):
        variables = QUICK[stage] if quick else {}
        log(f"make {stage} " + " ".join(f"{k}={v}" for k, v in variables.items()))
        out = make(stage, variables, outputs)
        facts[stage] = checked(stage, out, run)
        stages[stage] = {"seconds": out["seconds"], "command": out["command"]}
        if stage == "gguf":
            facts["gguf"]["phases_s"] = gguf_phases(out["lines"])
    return {"stages": stages, "total_s": sum(s["seconds"] for s in stages.values()), **facts}


def cold_check(name: str, work: Path) -> tuple[float, str]:
    """`make check RECIPE=name` as a user runs it, in a new process: (seconds, its summary line). A time counts only
    when the checks ran and passed: their `OK: 0 errors` line is printed."""
    out = make("check", {"RECIPE": name}, work)
    summary = next((x for x in out["stdout"].splitlines() if re.match(r"(OK|FAILED): \d+ errors", x)), None)
    if out["returncode"] != 0 or summary is None or not summary.startswith("OK: 0 errors"):
        raise NotDone(f"make check {name} did not pass (exit {out['returncode']}): {out['stdout'][-2000:]}")
    return out["seconds"], summary


def refusals(work: Path) -> dict[str, tuple[str, dict[str, str], dict[str, str], str]]:
    """Bad inputs a user makes, as (target, variables, files to write, what the error must name)."""
    line = '{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}]}\n'
    return {
        "make data-check DATA=<a file with a bad line>": (
            "data-check", {"DATA": str(work / "bad.jsonl")}, {"bad.jsonl": line + "{not json\n"}, "bad.jsonl:2",
        ),
        "make train RECIPE=<an unknown recipe>": ("train", {"RECIPE": "no-such-recipe"}, {}, "no-such-recipe"),
        "make eval RUN=<not a run directory>": ("eval", {"RUN": str(work / "no-run")}, {}, "no-run"),
    }  # fmt: skip


def cold_refusal(target: str, variables: dict[str, str], files: dict[str, str], names: str, work: Path) -> float:
    """A bad-input refusal as a user meets it: a time counts only for exit status 2 and an error naming the input."""
    work.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (work / name).write_text(text)
    out = make(target, variables, work)
    if out["returncode"] != 2 or names not in out["stdout"] or "Traceback" in out["stdout"]:
        raise NotDone(f"`{out['command']}` was not refused naming {names} (exit {out['returncode']}): {out['stdout']}")
    return out["seconds"]


def cli_latency(repeats: int, work: Path) -> dict[str, Any]:
    """`make check RECIPE=<the default>` and each bad-input refusal, cold, `repeats` times each: median and spread."""
    check = [cold_check(DEFAULT_RECIPE, work / "check")[0] for _ in range(repeats)]
    out = {"check": {"command": f"make check RECIPE={DEFAULT_RECIPE}", **spread(check)}, "refusals": {}}
    for what, (target, variables, files, names) in refusals(work / "refusals").items():
        times = [cold_refusal(target, variables, files, names, work / "refusals") for _ in range(repeats)]
        out["refusals"][what] = spread(times)
    return out


def note(p: dict[str, Any]) -> str:
    """What the pipeline's eval did: its rows' engines, and whether it converted the base model's GGUF."""
    e = p["eval"]
    docs = e["docs"]["median"] if isinstance(e["docs"], dict) else e["docs"]  # repeats combined: the same each time
    rows = ", ".join(f"{k} ({v})" for k, v in e["rows"].items())
    built = (
        " It converted the base model's f16 GGUF first (once; later evals reuse it)." if e["base_gguf_built"] else ""
    )
    return f"make eval ({e['choice']}) scored {docs:.0f} documents: {rows}.{built}"
