"""One judge: an OpenAI-compatible endpoint from eval/judges.yaml, asked the judging prompt with structured output
where the endpoint has it, retried on transient faults; and its identity, what the verdict cache keys on (the
judge's name, model and endpoint, and a hash of the prompt, schema and sampling it is asked with)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import yaml

from core.errors import UserError, Where
from core.retry import Retry, transient_status
from core.settings import Settings

JUDGES = Path(__file__).with_name("judges.yaml")
RETRIES, TIMEOUT_S, BACKOFF_S = 4, 180.0, 0.5  # JUDGE_RETRIES, JUDGE_TIMEOUT_S override the first two
MAX_TOKENS = 200
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
# what a judge is asked with: a change to any of it makes every cached verdict a new question
PROMPT_SHA256 = hashlib.sha256(
    json.dumps({"template": TEMPLATE, "schema": SCHEMA, "temperature": 0.0, "max_tokens": MAX_TOKENS}).encode()
).hexdigest()


class Judge:
    def __init__(
        self,
        name: str,
        spec: dict[str, Any],
        s: Settings,
        base_url: str | None = None,
        served_as: str | None = None,
    ):
        from openai import OpenAI

        key = s.secret(spec["key_env"]) if spec.get("key_env") else "not-needed"
        if not key:
            raise UserError(f"judge '{name}' needs {spec['key_env']} in the environment", Where(key=spec["key_env"]))
        base_url = base_url or base_url_of(spec, s)
        self.name, self.model, self.structured, self.price = name, spec["model"], spec["structured"], spec["price"]
        self.key = key
        self.retries = RETRIES if s.judge_retries is None else s.judge_retries
        # who answers: the endpoint's address, or for a judge served for this run the model it serves (its
        # address is a new port each time)
        self.identity = {
            "name": name,
            "model": self.model,
            "structured": self.structured,
            "endpoint": served_as or base_url,
            "prompt": PROMPT_SHA256[:16],
        }
        # retries are ours (core/retry.py, the same policy as the Hub and RunPod calls), not the client's
        self.client = OpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=s.judge_timeout_s or TIMEOUT_S)

    def _once(self, text: str, schema: dict[str, Any], name: str) -> str:
        kwargs: dict[str, Any] = {}
        if self.structured == "json_schema":
            kwargs["response_format"] = {"type": "json_schema", "json_schema": {"name": name, "schema": schema}}
        elif self.structured == "llama_cpp":
            kwargs["response_format"] = {"type": "json_object", "schema": schema}
        elif self.structured == "tools":  # endpoints that ignore response_format but honour a forced tool call
            kwargs["tools"] = [{"type": "function", "function": {"name": name, "parameters": schema}}]
            kwargs["tool_choice"] = {"type": "function", "function": {"name": name}}
        reply = self.client.chat.completions.create(
            model=self.model,
            temperature=0.0,
            max_tokens=MAX_TOKENS,
            messages=[{"role": "user", "content": text}],
            **kwargs,
        )
        message = reply.choices[0].message
        if message.tool_calls:  # the verdict's JSON arguments are the raw reply
            return message.tool_calls[0].function.arguments or ""
        return message.content or ""

    def ask(self, text: str, schema: dict[str, Any] = SCHEMA, name: str = "verdict") -> str:
        """One judgment (a verdict, or what `schema` asks for: a GRPO reward's score); 429, 5xx, timeouts and
        dropped connections are retried with exponential backoff."""
        import openai

        def transient(exc: BaseException) -> bool:
            if isinstance(exc, (openai.APITimeoutError, openai.APIConnectionError)):
                return True
            return isinstance(exc, openai.APIStatusError) and transient_status(exc.status_code)

        return Retry(1 + self.retries, BACKOFF_S).call(lambda: self._once(text, schema, name), transient)


def base_url_of(spec: dict[str, Any], s: Settings) -> str:
    """Where a judge answers: its address variable (base_url_env, e.g. JUDGE_URL) when set, else its base_url."""
    return (s.raw(spec["base_url_env"]) if spec.get("base_url_env") else None) or spec["base_url"]


def judge_specs(names: list[str]) -> dict[str, dict[str, Any]]:
    specs = yaml.safe_load(JUDGES.read_text())
    unknown = [n for n in names if n not in specs]
    if unknown:
        raise UserError(
            f"unknown judge(s): {', '.join(unknown)}", Where(JUDGES, key="JUDGES"), f"one of: {', '.join(specs)}"
        )
    return {n: specs[n] for n in names}


def load_judges(
    names: list[str], s: Settings, urls: dict[str, str] | None = None, served_as: str | None = None
) -> list[Judge]:
    """The judges by name; those in `urls` answer there (a server started for this run, serving `served_as`)."""
    specs, urls = judge_specs(names), urls or {}
    return [Judge(n, specs[n], s, base_url=urls.get(n), served_as=served_as if n in urls else None) for n in names]


def render(item: dict, order: str, cand: str, base: str) -> str:
    a, b = (cand, base) if order == "CB" else (base, cand)
    return TEMPLATE.format(prompt=item["prompt"], a=a, b=b)


def estimate(items: list[dict], texts: dict, judges: list[Judge]) -> dict[str, float]:
    chars = sum(len(render(i, "CB", texts[i["item"]][0], texts[i["item"]][1])) for i in items)
    tokens_in, tokens_out = 2 * chars / 4, 2 * len(items) * 60
    return {j.name: (tokens_in * j.price["input"] + tokens_out * j.price["output"]) / 1e6 for j in judges}
