"""Judge rewards for GRPO: completions scored by one of the configured judges (eval/judges.yaml: the local
llama.cpp server, or an OpenAI-compatible endpoint), named in a recipe's trl.reward_funcs as

  eval.reward_judge.score_<judge>     the judge scores each completion 1-10; reward (score - 1) / 9
  eval.reward_judge.pairwise_<judge>  each completion against every other of its prompt's group, in both orders,
                                      with make judge's prompt and verdicts; reward: its share of wins (a tie, or
                                      orders that disagree, count half)

where <judge> is the judge's name with every other character than a letter or digit as '_' (score_local,
score_gemini_2_5_flash_lite). Requests, cache, timeouts and retries: eval/reward_judge_io.py. A request that still
fails scores None (no reward for that completion); a step where every request failed stops training. Each step
logs the share of failed requests, and pairwise steps their position consistency.

Before training the launcher calls each reward's `before_training` (launch/grpo.py): the judge is measured as make
judge measures it, on the calibration pairs (eval/reward_calibration.jsonl): each response scored twice without the
cache, or each pair judged in both orders. Agreeing less often than the floor (JUDGE_MIN_CONSISTENCY, else
eval/stats.py MIN_CONSISTENCY) refuses training with the figure; the figure goes in the manifest
(train.grpo.judges). make judge refuses that judge for the run and every run chained on it (refuse_reward_judges):
it is the judge the model learned to please.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from core import manifest, rundir, settings
from core.errors import UserError, Where
from core.paths import repo_relative
from eval import chain
from eval.judge_client import JUDGES, base_url_of, judge_specs
from eval.judge_report import floor as consistency_floor
from eval.reward_judge_io import LOWEST, Asker, pair_texts, pair_verdict
from eval.rewards import prompt_text, text_of

MODES = ("score", "pairwise")
CALIBRATION = Path(__file__).with_name("reward_calibration.jsonl")


def attribute(judge: str) -> str:
    return re.sub(r"[^0-9A-Za-z]", "_", judge)


def _judge_named(suffix: str) -> str | None:
    specs = yaml.safe_load(JUDGES.read_text(encoding="utf-8")) or {}
    return next((name for name in specs if attribute(name) == suffix), None)


@cache
def _asker(judge: str) -> Asker:
    """The judge a reward asks, once per trainer process: TRL calls the reward inside axolotl's trainer, so this
    is where that process's settings are read (the environment make train gave it)."""
    return Asker(judge, settings.load())


def _step_health(judge: str, asked: int, errors: list[str], log_metric: Callable | None) -> None:
    if log_metric is not None and asked:
        log_metric(f"judge/{attribute(judge)}/failed", len(errors) / asked)
    if asked and len(errors) == asked:
        raise RuntimeError(f"reward judge '{judge}': every request of this step failed ({errors[0]})")


def score_rewards(judge: str, prompts: list, completions: list, log_metric: Callable | None = None) -> list:
    asker = _asker(judge)
    scores, errors = asker.scores([(prompt_text(p), text_of(c)) for p, c in zip(prompts, completions, strict=True)])
    _step_health(judge, len(scores), errors, log_metric)
    return [None if s is None else (s - LOWEST) / 9.0 for s in scores]


def pairwise_rewards(judge: str, prompts: list, completions: list, log_metric: Callable | None = None) -> list:
    """Round robin within each prompt's group (completions of the same prompt); None for a completion with no
    decided comparison (alone in its group, or every reply about it unreadable)."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, p in enumerate(prompts):
        groups[json.dumps(p, sort_keys=True, default=str)].append(i)
    pairs = [(g[a], g[b]) for g in groups.values() for a in range(len(g)) for b in range(a + 1, len(g))]
    texts = [
        t
        for i, j in pairs
        for t in pair_texts(prompt_text(prompts[i]), text_of(completions[i]), text_of(completions[j]))
    ]
    answers = _asker(judge).many(texts)
    points, decided, consistent = [0.0] * len(prompts), [0] * len(prompts), 0
    for n, (i, j) in enumerate(pairs):
        verdict, agreed = pair_verdict(answers[2 * n][0], answers[2 * n + 1][0])
        if verdict == "invalid":
            continue
        consistent += agreed
        decided[i] += 1
        decided[j] += 1
        points[i] += {"candidate": 1.0, "baseline": 0.0, "tie": 0.5}[verdict]
        points[j] += {"candidate": 0.0, "baseline": 1.0, "tie": 0.5}[verdict]
    _step_health(judge, len(texts), [e for _, e in answers if e], log_metric)
    if log_metric is not None and pairs:
        log_metric(f"judge/{attribute(judge)}/position_consistency", consistent / len(pairs))
    return [points[i] / decided[i] if decided[i] else None for i in range(len(prompts))]


def calibration() -> list[dict[str, str]]:
    return [json.loads(x) for x in CALIBRATION.read_text(encoding="utf-8").splitlines() if x.strip()]


def measure(judge: str, mode: str, s: settings.Settings) -> dict[str, Any]:
    """The judge's agreement with itself on the calibration pairs; refuses (UserError) below the floor or when it
    does not answer. Returns the figure as the manifest records it."""
    floor = consistency_floor(s)
    asker = Asker(judge, s)
    items = calibration()
    if mode == "score":
        both = [(i["prompt"], i[side]) for i in items for side in ("a", "b")]
        first, errors = asker.scores(both, cached=False)
        second, more = asker.scores(both, cached=False)
        errors, n, asked = errors + more, len(both), 2 * len(both)
        agreed = sum(a is not None and a == b for a, b in zip(first, second, strict=True))
        what = "responses scored twice gave the same score"
    else:
        answers = asker.many([t for i in items for t in pair_texts(i["prompt"], i["a"], i["b"])], cached=False)
        errors, n, asked = [e for _, e in answers if e], len(items), len(answers)
        agreed = sum(pair_verdict(answers[2 * k][0], answers[2 * k + 1][0])[1] for k in range(n))
        what = "pairs judged in both orders gave the same verdict"
    where = Where(key="trl.reward_funcs")
    if len(errors) == asked:
        raise UserError(
            f"the reward judge '{judge}' did not answer at {asker.judge.identity['endpoint']}: {errors[0]}",
            where,
            "start the judge's server or set its address (JUDGE_URL for local), or name another judge",
        )
    record = {
        "judge": judge,
        "mode": mode,
        "model": asker.judge.model,
        "endpoint": asker.judge.identity["endpoint"],
        "n": n,
        "agreed": agreed,
        "consistency": agreed / n,
        "floor": floor,
        "failed_requests": len(errors),
        "calibration": repo_relative(CALIBRATION),
        "at": rundir.utc_now(),
    }
    if agreed / n < floor:
        raise UserError(
            f"the reward judge '{judge}' agrees with itself too rarely: {agreed} of {n} calibration {what} "
            f"({100 * agreed / n:.0f} % < the {100 * floor:.0f} % floor); a reward from it would be noise",
            where,
            "name another judge in trl.reward_funcs (a bigger model, or a structured-output endpoint), or set "
            "JUDGE_MIN_CONSISTENCY=<share> to accept it",
        )
    return record


def preflight(judge: str, mode: str, s: settings.Settings) -> list[tuple[str, str]]:
    """What make check says about a judge reward, without asking the judge (it asks before training)."""
    spec = judge_specs([judge])[judge]
    out = [
        (
            "ok",
            f"judge {judge} ({spec['model']} at {base_url_of(spec, s)}), {mode}; measured for agreement with itself "
            f"on {len(calibration())} calibration pairs before training (floor {100 * consistency_floor(s):.0f} %)",
        )
    ]
    if spec.get("key_env") and not s.secret(spec["key_env"]):
        out.append(("warning", f"judge {judge} needs {spec['key_env']} in the environment when training starts"))
    return out


@cache
def reward_for(mode: str, judge: str) -> Callable[..., list]:
    rewards = score_rewards if mode == "score" else pairwise_rewards

    def reward(prompts: list, completions: list, **kwargs: Any) -> list:
        return rewards(judge, prompts, completions, kwargs.get("log_metric"))

    reward.__name__ = reward.__qualname__ = f"judge_{mode}_{attribute(judge)}"  # TRL logs rewards/<name>/mean
    reward.judge, reward.mode = judge, mode  # type: ignore[attr-defined]
    reward.before_training = lambda s: measure(judge, mode, s)  # type: ignore[attr-defined]
    reward.preflight = lambda s: preflight(judge, mode, s)  # type: ignore[attr-defined]
    return reward


def __getattr__(name: str) -> Any:
    mode, _, suffix = name.partition("_")
    judge = _judge_named(suffix) if mode in MODES and suffix else None
    if judge is None:
        raise AttributeError(
            f"module 'eval.reward_judge' has no attribute {name!r}: a judge reward is score_<judge> or "
            f"pairwise_<judge>, <judge> one of {', '.join(attribute(j) for j in _all_judges())}"
        )
    return reward_for(mode, judge)


def _all_judges() -> list[str]:
    return list(yaml.safe_load(JUDGES.read_text(encoding="utf-8")) or {})


def reward_judges(run: Path) -> list[tuple[str, dict[str, Any]]]:
    """(run label, judge record) of every judge reward of the GRPO runs in `run`'s chain."""
    out = []
    for link in chain.links(run):
        grpo = getattr(link.manifest.train, "grpo", None)
        for record in (grpo.judges if grpo else {}).values():
            out.append((link.label, record.model_dump()))
    return out


def refuse_reward_judges(run: Path, names: list[str], s: settings.Settings) -> None:
    """make judge with a judge that gave a GRPO run of this chain its reward (the same name, or the same model at
    the same endpoint under another name) is refused: the model learned to please that judge."""
    specs = judge_specs(names)
    for label, rec in reward_judges(run):
        for name in names:
            same = name == rec["judge"] or (
                specs[name]["model"] == rec.get("model") and base_url_of(specs[name], s) == rec.get("endpoint")
            )
            if same:
                others = [n for n in _all_judges() if n != rec["judge"]]
                raise UserError(
                    f"judge '{name}' is the reward judge of the GRPO run {label} ({rec['model']} at "
                    f"{rec.get('endpoint')}): the model learned to please it, so its verdict is no evidence",
                    Where(run / manifest.MANIFEST, key="JUDGES"),
                    f"judge with another: JUDGES={others[0] if others else '<another judge>'}",
                )
