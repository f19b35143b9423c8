"""How a GRPO judge reward asks its judge (eval/reward_judge.py): the scoring prompt and the reading of its reply,
make judge's pairwise prompt and verdicts for the pairwise mode, and the requests themselves: through the judge
client (structured output, timeouts and retries: eval/judge_client.py), CONCURRENCY at once, answers cached in
OUTPUTS/cache/reward-judge/<judge>.jsonl under what was asked (the judge's name, model, endpoint and the
question's whole text), so the same completion of the same prompt is asked once, across steps and runs."""

from __future__ import annotations

import hashlib
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from core.settings import Settings
from eval.judge_client import Judge, load_judges, render
from eval.verdicts import parse_label, to_model

SCORE_TEMPLATE = """You are scoring one response to a prompt on creativity, coherence, depth, engagement and writing quality.

Prompt:
{prompt}

Response:
{response}

Score the response from 1 (very poor) to 10 (excellent). Reply with JSON only: {{"score": <an integer from 1 to 10>, "reason": "one sentence"}}"""
SCORE_SCHEMA = {
    "type": "object",
    "properties": {"score": {"type": "integer", "minimum": 1, "maximum": 10}, "reason": {"type": "string"}},
    "required": ["score"],
}
LOWEST, HIGHEST = 1, 10
CONCURRENCY = 4  # CONCURRENCY= overrides


def score_text(prompt: str, response: str) -> str:
    return SCORE_TEMPLATE.format(prompt=prompt, response=response)


def parse_score(reply: str | None) -> int | None:
    """The 1-10 score of a reply: every JSON object in it with a "score" must give the same whole number in range
    (a reply with two different scores, or none, is invalid: None)."""
    found = set()
    decoder = json.JSONDecoder()
    text = reply or ""
    for start in (i for i, ch in enumerate(text) if ch == "{"):
        try:
            obj, _ = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict) and "score" in obj:
            value = obj["score"]
            ok = isinstance(value, int | float) and not isinstance(value, bool) and float(value).is_integer()
            found.add(int(value) if ok and LOWEST <= value <= HIGHEST else None)
    return found.pop() if len(found) == 1 else None


def pair_verdict(reply_cb: str | None, reply_bc: str | None) -> tuple[str, bool]:
    """(verdict on the pair shown as candidate = first, baseline = second; whether both orders agreed), as make
    judge reads it: orders that disagree are a tie; an unreadable reply in either order is "invalid"."""
    first, second = to_model(parse_label(reply_cb), "CB"), to_model(parse_label(reply_bc), "BC")
    if "invalid" in (first, second):
        return "invalid", False
    return (first, True) if first == second else ("tie", False)


def pair_texts(prompt: str, first: str, second: str) -> tuple[str, str]:
    """make judge's prompt for one pair, in both orders (first shown as A, then as B)."""
    item = {"prompt": prompt}
    return render(item, "CB", first, second), render(item, "BC", first, second)


class Asker:
    """One judge, with its answer cache and its request pool."""

    def __init__(self, name: str, s: Settings, cache_dir: Path | None = None):
        self.judge: Judge = load_judges([name], s)[0]
        self.name = name
        self.concurrency = s.concurrency or CONCURRENCY
        self.path = (cache_dir or s.outputs / "cache" / "reward-judge") / f"{name}.jsonl"
        self.cache: dict[str, str] | None = None
        self.lock = threading.Lock()

    def key(self, text: str) -> str:
        who = {k: self.judge.identity[k] for k in ("name", "model", "structured", "endpoint")}
        return hashlib.sha256(json.dumps([who, text], ensure_ascii=False).encode()).hexdigest()

    def _load(self) -> dict[str, str]:
        if self.cache is None:
            self.cache = {}
            if self.path.is_file():
                for raw in self.path.read_text(encoding="utf-8").splitlines():
                    try:
                        row = json.loads(raw)
                    except json.JSONDecodeError:
                        continue  # a line cut short by a kill: asked again
                    if isinstance(row, dict) and isinstance(row.get("reply"), str):
                        self.cache[row["key"]] = row["reply"]
        return self.cache

    def ask(
        self, text: str, schema: dict[str, Any] | None = None, cached: bool = True
    ) -> tuple[str | None, str | None]:
        """(reply, None), or (None, the error after the client's retries, with the key hidden)."""
        key = self.key(text)
        with self.lock:
            hit = self._load().get(key) if cached else None
        if hit is not None:
            return hit, None
        try:
            reply = self.judge.ask(text, schema, "score") if schema else self.judge.ask(text)
        except Exception as exc:  # noqa: BLE001 - after the retries: no reward for this completion
            return None, f"{type(exc).__name__}: {exc}".replace(self.judge.key, "***")[:300]
        with self.lock:
            self._load()[key] = reply
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps({"key": key, "judge": self.name, "reply": reply}, ensure_ascii=False) + "\n")
        return reply, None

    def many(
        self, texts: list[str], schema: dict[str, Any] | None = None, cached: bool = True
    ) -> list[tuple[str | None, str | None]]:
        with ThreadPoolExecutor(max_workers=max(1, self.concurrency)) as pool:
            return list(pool.map(lambda t: self.ask(t, schema, cached), texts))

    def scores(self, items: list[tuple[str, str]], cached: bool = True) -> tuple[list[int | None], list[str]]:
        """(1-10 score or None for each (prompt, response), the errors of requests that failed)."""
        answers = self.many([score_text(p, r) for p, r in items], SCORE_SCHEMA, cached)
        return [parse_score(reply) for reply, _ in answers], [e for _, e in answers if e]
