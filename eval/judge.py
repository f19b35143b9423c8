"""`make judge RUN=... JUDGES="gpt-4o,local"`: blind pairwise judging of a run against its base model.

Each pair is judged in BOTH orders with neutral labels (Response A / Response B); eval/verdicts.py maps the
verdict back by position; disagreeing orders are a tie (position-inconsistent); unparseable replies are
invalid, never wins. Raw replies are kept. Verdicts are cached in <run>/judge/cache/<judge>.jsonl under the
identity of what was judged (the judge, its prompt, the order, both texts' sha256 and the model, backend,
settings and seed that generated each: eval/judged_io.py), rows appended as they arrive: a changed generation
(another SEED or MAX_NEW_TOKENS) is judged again, an unchanged one never twice. This judging's rows go to
<run>/judge/<judge>.jsonl, both models' answers to <run>/judge/generations.jsonl. A run trained on `make prefs`
pairs (its own or its chain's) is judged on the prompts they were not drawn from only (eval/prefs_split.py), a
GRPO run on the prompts its chain did not train on (eval/grpo_data.py) and never by the judge that gave it its
reward (eval/reward_judge.py). A cost estimate is printed (and MAX_COST enforced) before any request. Structured
output is asked for wherever the endpoint has it (eval/judges.yaml). A judge below the position-consistency floor is reported as unusable,
with no win rate. JUDGES=local with no JUDGE_URL starts llama.cpp's server for the judge GGUF (JUDGE_GGUF, else
the embedded SmolLM2 GGUF) on 127.0.0.1 for the run and stops it after.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core import atomic, cli, manifest, rundir, settings
from core.errors import UserError, Where
from core.manifest import JudgeSection
from core.paths import REPO, repo_relative
from core.sections import HeldoutRecord
from core.settings import Settings
from eval import chain, grpo_data, judge_report, prefs_split, reward_judge
from eval.generate import for_run, load_suite
from eval.judge_client import Judge as Judge
from eval.judge_client import estimate, judge_specs, load_judges, render
from eval.judge_server import judge_gguf, served
from eval.judged_io import OURS, judged_spec, read_cache, verdict_key
from eval.stats import MIN_CONSISTENCY, TIE_CONVENTION
from eval.verdicts import ORDERS, parse_label, to_model

# what the manifest keeps per judge (eval/judge_report.py computes it)
_COUNTS = ("n", "wins", "losses", "ties", "invalid", "warning")
_RATES = (
    "win_rate",
    "ci95",
    "ties_excluded",
    "ties_half",
    "sign_test_p",
    "position_consistency",
    "usable",
    "usable_note",
)
SUMMARY_KEYS = _COUNTS + _RATES
__all__ = ["SUMMARY_KEYS", "Judge", "failures", "judge_all", "judge_specs", "load_judges", "main", "run_judging"]


def generated_by(result: dict[str, Any]) -> dict[str, Any]:
    """How an answer was made (eval/generate.py's result): its part of a verdict's key beside the text's hash."""
    return {k: result.get(k) for k in ("model", "backend", "settings", "seed")}


def judge_all(
    judge: Judge,
    items: list[dict],
    texts: dict,
    out: Path,
    run_name: str,
    concurrency: int,
    sides: dict[Any, dict] | None = None,
    current: Path | None = None,
) -> dict[str, Any]:
    """Ask `judge` about each item in both orders, except what the cache `out` holds under the same key (the
    judge, its prompt, the order, both texts and, from `sides`, how each was generated). Rows append to `out` as
    they arrive; `current`, when given, is rewritten with this judging's rows: one per item and order."""
    rows = read_cache(out)
    kept = [r for r in rows if not r.get("error")]  # failed requests are asked again
    if out.is_file() and (len(kept) != len(rows) or not out.read_text(encoding="utf-8").endswith("\n")):
        atomic.write_text(out, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept))
        if len(kept) != len(rows):
            print(f"{judge.name}: asking again {len(rows) - len(kept)} request(s) that failed last time")
    tasks = [(i, o) for i in items for o in ORDERS]
    specs = {
        (i["item"], o): judged_spec(judge.identity, o, i["prompt"], *texts[i["item"]], (sides or {}).get(i["item"]))
        for i, o in tasks
    }
    keys = {task: verdict_key(spec) for task, spec in specs.items()}
    done = {r.get("key") for r in kept}
    todo, asking = [], set()
    for i, o in tasks:
        key = keys[(i["item"], o)]
        if key not in done and key not in asking:  # the same question twice in a suite is asked once
            asking.add(key)
            todo.append((i, o))
    lock = threading.Lock()

    def one(task) -> None:
        item, order = task
        cand, base = texts[item["item"]]
        error = None
        try:
            reply = judge.ask(render(item, order, cand, base))
        except Exception as exc:  # noqa: BLE001 - after the retries: keep the error, score it invalid
            reply, error = None, f"{type(exc).__name__}: {exc}".replace(judge.key, "***")[:300]
        label = parse_label(reply)
        row = {
            "format": OURS,
            "run": run_name,
            "judge": judge.name,
            "suite": f"{item['suite']}/{item['config']}",
            "item": item["item"],
            "prompt": item["prompt"],
            "order": order,
            "reply": reply,
            "label": label,
            "verdict": to_model(label, order),
            "error": error,
            "key": keys[(item["item"], order)],
            "judged": specs[(item["item"], order)],
        }
        with lock, open(out, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            fh.flush()

    out.parent.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        list(pool.map(one, todo))
    by_key = {r["key"]: r for r in read_cache(out) if r.get("key")}
    mine = [
        {
            **by_key[keys[(i["item"], o)]],
            "run": run_name,
            "suite": f"{i['suite']}/{i['config']}",
            "item": i["item"],
            "prompt": i["prompt"],
        }
        for i, o in tasks
    ]
    if current is not None:
        atomic.write_text(current, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in mine))
    failed = [r for r in mine if r.get("error")]
    return {
        "cached": sum(1 for i, o in tasks if keys[(i["item"], o)] in done),
        "asked": len(todo),
        "failed": len(failed),
        **({"first_error": failed[0]["error"]} if failed else {}),
    }


def failures(section: dict[str, Any]) -> UserError | None:
    """One clear error for requests that still failed after the retries of core/retry.py (their rows are
    kept, scored invalid, and asked again by the next run)."""
    bad = {name: s["requests"] for name, s in section["judges"].items() if s["requests"].get("failed")}
    if not bad:
        return None
    name, req = next(iter(bad.items()))
    return UserError(
        f"{sum(r['failed'] for r in bad.values())} judge request(s) failed after retries "
        f"({name}: {req['first_error']})",
        Where(key="JUDGES"),
        "they are scored invalid in this report; run make judge again to ask only those",
    )


def judged_items(run: Path, suite: Path, sampling: dict, limit: int | None, max_new_tokens: int | None, log=print):
    """The suite's items as judged: each capped at MAX_NEW_TOKENS (the cap is part of its settings, so of both
    caches' keys), for a run trained on make prefs pairs only those the pairs were not drawn from, then LIMIT."""
    items = load_suite(suite, None, sampling)
    if max_new_tokens:
        items = [{**i, "max_tokens": min(i["max_tokens"], max_new_tokens)} for i in items]
    items, heldout = prefs_split.restrict(run, items, log, grpo_data.sources(run))
    items = items[:limit] if limit else items
    return items, heldout.model_copy(update={"n": len(items)}) if heldout else None


def served_model(s: Settings) -> str:
    """Who answers for a judge served for this run (its address is a new port each time): the GGUF it serves."""
    gguf = judge_gguf(s)
    return f"llama.cpp server: {gguf.name} ({gguf.stat().st_size} bytes)"


def run_judging(
    run: Path,
    judge_names: list[str],
    suite: Path,
    limit: int | None = None,
    concurrency: int = 4,
    seed: int = 0,
    max_new_tokens: int | None = None,
    max_cost: float = 5.0,
    log=print,
    min_consistency: float | None = None,
    versus: str = "base",
    *,
    s: Settings,
) -> JudgeSection:
    """Judge the run against its base model (for a run started from another run: that run, whose merged weights
    are its base), or with versus="origin" against the base model at the root of its chain (eval/chain.py)."""
    m = manifest.read(run)
    against = chain.baseline(run, m, versus)
    floor = MIN_CONSISTENCY if min_consistency is None else min_consistency
    load_judges(judge_names, s)  # unknown judges and missing keys are refused before anything is generated
    reward_judge.refuse_reward_judges(run, judge_names, s)  # a GRPO chain's reward judge is not evidence on it
    items, heldout = judged_items(run, suite, m.train.meta.sampling.model_dump(), limit, max_new_tokens, log)
    candidate = for_run(run, seed, max_new_tokens, s=s)  # GPU: recipe dtype, batched; CPU: llama.cpp on the GGUF
    baseline = for_run(run, seed, max_new_tokens, baseline=True, baseline_path=against.path, s=s)  # HF; CPU float32
    backends = {"candidate": candidate.backend_key, "baseline": baseline.backend_key}
    log(
        f"generating {len(items)} x 2 responses ({backends['candidate']} / {backends['baseline']}; cached per "
        "model, backend, prompt, settings, seed)"
    )
    try:
        cand, base_answers = candidate.generate_many(items), baseline.generate_many(items)
    finally:
        candidate.close()
        baseline.close()
    texts = {i["item"]: (c["text"], b["text"]) for i, c, b in zip(items, cand, base_answers, strict=True)}
    sides = {
        i["item"]: {"candidate": generated_by(c), "baseline": generated_by(b)}
        for i, c, b in zip(items, cand, base_answers, strict=True)
    }
    generations = run / against.folder / "generations.jsonl"
    atomic.write_text(
        generations,
        "".join(
            json.dumps(
                {**{k: i[k] for k in ("item", "suite", "config", "prompt")}, "candidate": c, "baseline": b}
                | {"generated": sides[i["item"]]}
            )
            + "\n"
            for i, (c, b) in ((i, texts[i["item"]]) for i in items)
        ),
    )
    log(f"versus: {against.label}")
    with served(judge_specs(judge_names), run / against.folder / "llama-server.log", s, say=log) as urls:
        judges = load_judges(judge_names, s, urls, served_as=served_model(s) if urls else None)
        judging = Judging(run, m, items, texts, sides, suite, seed, backends, against, heldout)
        return _judge_and_record(judging, judges, concurrency, max_cost, floor, log)


@dataclass(frozen=True)
class Judging:
    """What one `make judge` comparison judges: the run, the items, both sides' answers and how they were made."""

    run: Path
    manifest: Any
    items: list[dict]
    texts: dict
    sides: dict
    suite: Path
    seed: int
    backends: dict[str, str]
    against: chain.Against
    heldout: HeldoutRecord | None


def heldout_note(heldout: HeldoutRecord | None) -> str | None:
    if heldout is None:
        return None
    return (
        f"Judged on the held-out part only: n = {heldout.n} of the suite's {heldout.of} prompts; "
        f"{heldout.excluded} are the training part of the preference pairs or GRPO prompts this run's chain "
        "trained on "
        f"({'; '.join(heldout.sources)})."
    )


def _judge_and_record(j: Judging, judges: list[Judge], concurrency, max_cost, floor, log) -> JudgeSection:
    folder = j.run / j.against.folder
    costs = estimate(j.items, j.texts, judges)
    log("estimated judge cost: " + ", ".join(f"{k} ${v:.2f}" for k, v in costs.items()))
    if sum(costs.values()) > max_cost:
        raise UserError(
            f"estimated cost ${sum(costs.values()):.2f} exceeds MAX_COST=${max_cost:.2f}",
            Where(key="MAX_COST"),
            "raise MAX_COST, use fewer judges or LIMIT=",
        )
    files, counts = [], {}
    for judge in judges:
        cache, current = folder / "cache" / f"{judge.name}.jsonl", folder / f"{judge.name}.jsonl"
        if current.is_file() and not cache.is_file():  # rows of a version before the cache was keyed: kept
            cache.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(current, cache)
        name = j.manifest.recipe_name
        counts[judge.name] = judge_all(judge, j.items, j.texts, cache, name, concurrency, j.sides, current)
        files.append(current)
    report = judge_report.analyze(files, floor)
    summary = {}
    for path, judge in zip(files, judges, strict=True):
        e = report["files"][path.name]
        summary[judge.name] = {k: e[k] for k in SUMMARY_KEYS}
        summary[judge.name]["suites"] = {
            s: {k: v[k] for k in ("n", "wins", "losses", "ties", "win_rate", "ci95", "ties_excluded", "ties_half")}
            for s, v in e["suites"].items()
        }
        summary[judge.name]["requests"] = counts[judge.name]
        if j.heldout is not None:  # the leaderboard's row says its n is the held-out part's
            summary[judge.name]["heldout"] = {"n": j.heldout.n, "of": j.heldout.of}
    section = JudgeSection(
        suite=repo_relative(j.suite),
        seed=j.seed,
        baseline=j.against.label,
        files=[str(f.relative_to(j.run)) for f in files],
        agreement=next(iter(report["runs"].values()), None),
        judges=summary,
        at=rundir.utc_now(),
        generations=rundir.relpath(folder / "generations.jsonl", j.run),
        min_consistency=floor,
        backends=j.backends,
        heldout=j.heldout,
    )
    manifest.write_sections(j.run, **{j.against.section: section})
    made = f"Answers generated by: candidate {j.backends['candidate']}, baseline {j.backends['baseline']}."
    note = "\n\n".join(x for x in (heldout_note(j.heldout), made) if x)
    atomic.write_text(folder / "report.md", judge_report.markdown(report, note=note))
    return section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_run_arguments(parser)
    parser.add_argument(
        "--judges", default=None, help="comma-separated names from eval/judges.yaml (default: JUDGES, else local)"
    )
    parser.add_argument("--suite", default=None, help="a prompt suite JSONL (default: SUITE, else the recipe's)")
    parser.add_argument(
        "--limit", type=settings.flag_type("LIMIT"), default=None, help="prompts to judge (default: LIMIT, else all)"
    )
    parser.add_argument(
        "--concurrency",
        type=settings.flag_type("CONCURRENCY"),
        default=None,
        help="requests at once (default: CONCURRENCY, else 4)",
    )
    parser.add_argument(
        "--seed", type=settings.flag_type("SEED"), default=None, help="generation seed (default: SEED, else 0)"
    )
    parser.add_argument(
        "--max-new-tokens",
        type=settings.flag_type("MAX_NEW_TOKENS"),
        default=None,
        help="cap on generated tokens (default: MAX_NEW_TOKENS)",
    )
    parser.add_argument(
        "--max-cost",
        type=settings.flag_type("MAX_COST"),
        default=None,
        help="USD cap on judge calls (default: MAX_COST, else 5)",
    )
    ns = parser.parse_args(argv)

    def body(s: Settings) -> None:
        run = cli.run_from(ns, s)
        versus = chain.versus_for(run, s.baseline)
        suite_name = manifest.read(run).train.meta.eval_suite or "brie"
        suite = Path(ns.suite or s.suite) if (ns.suite or s.suite) else REPO / "eval" / "suites" / f"{suite_name}.jsonl"
        judges = [j.strip() for j in (ns.judges or s.judges or "local").split(",") if j.strip()]

        def first(*values):
            return next((v for v in values if v is not None), None)

        errors = []
        for v in versus:
            section = run_judging(
                run,
                judges,
                suite,
                first(ns.limit, s.limit) or None,
                first(ns.concurrency, s.concurrency, 4),
                first(ns.seed, s.seed, 0),
                first(ns.max_new_tokens, s.max_new_tokens) or None,
                first(ns.max_cost, s.max_cost, 5.0),
                min_consistency=judge_report.floor(s),
                versus=v,
                s=s,
            )
            print(f"versus {section.baseline} (tie convention: {TIE_CONVENTION})")
            if section.heldout is not None:
                print(heldout_note(section.heldout))
            for name, j in section.judges.items():
                print(judge_report.one_line(name, j))
            print(f"report: {run / chain.baseline(run, manifest.read(run), v).folder / 'report.md'}")
            errors.append(failures(section.model_dump()))
        if any(errors):
            raise next(e for e in errors if e)

    return cli.main(body)


if __name__ == "__main__":
    sys.exit(main())
