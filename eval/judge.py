"""`make judge RUN=... JUDGES="gpt-4o,local"`: blind pairwise judging of a run against its base model.

Each pair is judged in BOTH orders with neutral labels (Response A / Response B); eval/verdicts.py maps the
verdict back by position; disagreeing orders are a tie (position-inconsistent); unparseable replies are
invalid, never wins. Raw replies are kept. Rows append to <run>/judge/<judge>.jsonl as they arrive, which is
also the resume cache; both models' answers go to <run>/judge/generations.jsonl. A cost estimate is printed
(and MAX_COST enforced) before any request. Structured output is asked for wherever the endpoint has it
(eval/judges.yaml). A judge below the position-consistency floor is reported as unusable, with no win rate.
JUDGES=local with no JUDGE_URL starts llama.cpp's server for the judge GGUF (JUDGE_GGUF, else the embedded
SmolLM2 GGUF) on 127.0.0.1 for the run and stops it after.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

from core import atomic, cli, manifest, rundir, settings
from core.errors import UserError, Where
from core.manifest import JudgeSection
from core.paths import REPO, repo_relative
from core.retry import Retry, transient_status
from core.settings import Settings
from eval import chain, judge_report
from eval.generate import for_run, load_suite
from eval.judge_server import served
from eval.judged_io import OURS, read_cache
from eval.stats import MIN_CONSISTENCY, TIE_CONVENTION
from eval.verdicts import ORDERS, parse_label, to_model

JUDGES = Path(__file__).with_name("judges.yaml")
RETRIES, TIMEOUT_S, BACKOFF_S = 4, 180.0, 0.5  # JUDGE_RETRIES, JUDGE_TIMEOUT_S override the first two
TEMPLATE = """You are judging two responses to the same prompt on creativity, coherence, depth, engagement and writing quality.

Prompt:
{prompt}

Response A:
{a}

Response B:
{b}

Which response is better? Reply with JSON only: {{"winner": "A" or "B" or "tie", "reason": "one sentence"}}"""
SCHEMA = {
    "type": "object",
    "properties": {"winner": {"type": "string", "enum": ["A", "B", "tie"]}, "reason": {"type": "string"}},
    "required": ["winner"],
}
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


class Judge:
    def __init__(self, name: str, spec: dict[str, Any], s: Settings | None = None, base_url: str | None = None):
        from openai import OpenAI

        s = s or settings.load()
        key = s.secret(spec["key_env"]) if spec.get("key_env") else "not-needed"
        if not key:
            raise UserError(f"judge '{name}' needs {spec['key_env']} in the environment", Where(key=spec["key_env"]))
        base_url = base_url or (s.raw(spec["base_url_env"]) if spec.get("base_url_env") else None) or spec["base_url"]
        self.name, self.model, self.structured, self.price = name, spec["model"], spec["structured"], spec["price"]
        self.key = key
        self.retries = RETRIES if s.judge_retries is None else s.judge_retries
        # retries are ours (core/retry.py, the same policy as the Hub and RunPod calls), not the client's
        self.client = OpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=s.judge_timeout_s or TIMEOUT_S)

    def _once(self, text: str) -> str:
        kwargs: dict[str, Any] = {}
        if self.structured == "json_schema":
            kwargs["response_format"] = {"type": "json_schema", "json_schema": {"name": "verdict", "schema": SCHEMA}}
        elif self.structured == "llama_cpp":
            kwargs["response_format"] = {"type": "json_object", "schema": SCHEMA}
        elif self.structured == "tools":  # endpoints that ignore response_format but honour a forced tool call
            kwargs["tools"] = [{"type": "function", "function": {"name": "verdict", "parameters": SCHEMA}}]
            kwargs["tool_choice"] = {"type": "function", "function": {"name": "verdict"}}
        reply = self.client.chat.completions.create(
            model=self.model, temperature=0.0, max_tokens=200, messages=[{"role": "user", "content": text}], **kwargs
        )
        message = reply.choices[0].message
        if message.tool_calls:  # the verdict's JSON arguments are the raw reply
            return message.tool_calls[0].function.arguments or ""
        return message.content or ""

    def ask(self, text: str) -> str:
        """One judgment; 429, 5xx, timeouts and dropped connections are retried with exponential backoff."""
        import openai

        def transient(exc: BaseException) -> bool:
            if isinstance(exc, (openai.APITimeoutError, openai.APIConnectionError)):
                return True
            return isinstance(exc, openai.APIStatusError) and transient_status(exc.status_code)

        return Retry(1 + self.retries, BACKOFF_S).call(lambda: self._once(text), transient)


def judge_specs(names: list[str]) -> dict[str, dict[str, Any]]:
    specs = yaml.safe_load(JUDGES.read_text())
    unknown = [n for n in names if n not in specs]
    if unknown:
        raise UserError(
            f"unknown judge(s): {', '.join(unknown)}", Where(JUDGES, key="JUDGES"), f"one of: {', '.join(specs)}"
        )
    return {n: specs[n] for n in names}


def load_judges(names: list[str], urls: dict[str, str] | None = None) -> list[Judge]:
    specs = judge_specs(names)
    return [Judge(n, specs[n], base_url=(urls or {}).get(n)) for n in names]


def render(item: dict, order: str, cand: str, base: str) -> str:
    a, b = (cand, base) if order == "CB" else (base, cand)
    return TEMPLATE.format(prompt=item["prompt"], a=a, b=b)


def estimate(items: list[dict], texts: dict, judges: list[Judge]) -> dict[str, float]:
    chars = sum(len(render(i, "CB", texts[i["item"]][0], texts[i["item"]][1])) for i in items)
    tokens_in, tokens_out = 2 * chars / 4, 2 * len(items) * 60
    return {j.name: (tokens_in * j.price["input"] + tokens_out * j.price["output"]) / 1e6 for j in judges}


def judge_all(
    judge: Judge, items: list[dict], texts: dict, out: Path, run_name: str, concurrency: int
) -> dict[str, int]:
    rows = read_cache(out)
    kept = [r for r in rows if not r.get("error")]  # failed requests are asked again
    if out.is_file() and (len(kept) != len(rows) or not out.read_text(encoding="utf-8").endswith("\n")):
        atomic.write_text(out, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept))
        if len(kept) != len(rows):
            print(f"{judge.name}: asking again {len(rows) - len(kept)} request(s) that failed last time")
    done = {(r["item"], r["order"]) for r in kept}
    todo = [(i, o) for i in items for o in ORDERS if (i["item"], o) not in done]
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
        }
        with lock, open(out, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            fh.flush()

    out.parent.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        list(pool.map(one, todo))
    failed = [r for r in read_cache(out) if r.get("error")]
    return {
        "cached": len(done),
        "asked": len(todo),
        "failed": len(failed),
        **({"first_error": failed[0]["error"]} if failed else {}),
    }


def failures(section: dict[str, Any]) -> UserError | None:
    """One clear error for requests that still failed after the client's retries (their rows are kept,
    scored invalid, and asked again by the next run)."""
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
) -> JudgeSection:
    """Judge the run against its base model (for a run started from another run: that run, whose merged weights
    are its base), or with versus="origin" against the base model at the root of its chain (eval/chain.py)."""
    m = manifest.read(run)
    against = chain.baseline(run, m, versus)
    floor = MIN_CONSISTENCY if min_consistency is None else min_consistency
    load_judges(judge_names)  # unknown judges and missing keys are refused before anything is generated
    items = load_suite(suite, limit, m.train.meta.sampling.model_dump())
    candidate = for_run(run, seed, max_new_tokens)  # GPU: recipe dtype, batched; CPU: llama.cpp on the GGUF
    baseline = for_run(run, seed, max_new_tokens, baseline=True, baseline_path=against.path)  # HF; CPU float32
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
    generations = run / against.folder / "generations.jsonl"
    atomic.write_text(
        generations,
        "".join(
            json.dumps({**{k: i[k] for k in ("item", "suite", "config", "prompt")}, "candidate": c, "baseline": b})
            + "\n"
            for i, (c, b) in ((i, texts[i["item"]]) for i in items)
        ),
    )
    log(f"versus: {against.label}")
    with served(judge_specs(judge_names), run / against.folder / "llama-server.log", say=log) as urls:
        judges = load_judges(judge_names, urls)
        return _judge_and_record(
            run, m, judges, items, texts, suite, seed, concurrency, max_cost, floor, log, backends, against
        )


def _judge_and_record(
    run, m, judges, items, texts, suite, seed, concurrency, max_cost, floor, log, backends, against
) -> JudgeSection:
    generations = run / against.folder / "generations.jsonl"
    costs = estimate(items, texts, judges)
    log("estimated judge cost: " + ", ".join(f"{k} ${v:.2f}" for k, v in costs.items()))
    if sum(costs.values()) > max_cost:
        raise UserError(
            f"estimated cost ${sum(costs.values()):.2f} exceeds MAX_COST=${max_cost:.2f}",
            Where(key="MAX_COST"),
            "raise MAX_COST, use fewer judges or LIMIT=",
        )
    files, counts = [], {}
    for judge in judges:
        out = run / against.folder / f"{judge.name}.jsonl"
        counts[judge.name] = judge_all(judge, items, texts, out, m.recipe_name, concurrency)
        files.append(out)
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
    section = JudgeSection(
        suite=repo_relative(suite),
        seed=seed,
        baseline=against.label,
        files=[str(f.relative_to(run)) for f in files],
        agreement=next(iter(report["runs"].values()), None),
        judges=summary,
        at=rundir.utc_now(),
        generations=rundir.relpath(generations, run),
        min_consistency=floor,
        backends=backends,
    )
    manifest.write_sections(run, **{against.section: section})
    atomic.write_text(run / against.folder / "report.md", judge_report.markdown(report))
    return section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_run_arguments(parser)
    parser.add_argument(
        "--judges", default=None, help="comma-separated names from eval/judges.yaml (default: JUDGES, else local)"
    )
    parser.add_argument("--suite", default=None, help="a prompt suite JSONL (default: SUITE, else the recipe's)")
    parser.add_argument("--limit", type=int, default=None, help="prompts to judge (default: LIMIT, else all)")
    parser.add_argument("--concurrency", type=int, default=None, help="requests at once (default: CONCURRENCY, else 4)")
    parser.add_argument("--seed", type=int, default=None, help="generation seed (default: SEED, else 0)")
    parser.add_argument(
        "--max-new-tokens", type=int, default=None, help="cap on generated tokens (default: MAX_NEW_TOKENS)"
    )
    parser.add_argument(
        "--max-cost", type=float, default=None, help="USD cap on judge calls (default: MAX_COST, else 5)"
    )
    ns = parser.parse_args(argv)

    def body() -> None:
        s = settings.load()
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
            )
            print(f"versus {section.baseline} (tie convention: {TIE_CONVENTION})")
            for name, j in section.judges.items():
                print(judge_report.one_line(name, j))
            print(f"report: {run / chain.baseline(run, manifest.read(run), v).folder / 'report.md'}")
            errors.append(failures(section.model_dump()))
        if any(errors):
            raise next(e for e in errors if e)

    return cli.main(body)


if __name__ == "__main__":
    sys.exit(main())
