"""`make personas PERSONAS=data/personas/x.yaml`: build a persona dataset (prompt/completion JSONL with
persona and type fields) the persona seed's way: extracted, transformed, hypothetical and contrastive records.

Text comes from a pluggable generator: deterministic templates (default, offline) or any OpenAI-compatible
chat endpoint (GENERATOR=endpoint ENDPOINT=http://127.0.0.1:8080/v1 MODEL=...), e.g. a local llama.cpp server.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core import atomic, cli
from core.errors import UserError, Where
from core.settings import Settings
from core.yamlio import load_with_lines

GENERATORS = ("template", "endpoint")
REPHRASE = ["Could you tell me: {q}", "I have always wondered: {q}", "In your own words, {q}"]
HYPOTHETICAL = ["What would you tell a newcomer about {topic}?", "How has {topic} shaped the way you work?"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Fact(_Strict):
    topic: str
    text: str


class Source(_Strict):
    question: str
    answer: str


class Persona(_Strict):
    name: str
    role: str
    voice: str
    markers: list[str] = Field(min_length=1)
    facts: list[Fact] = Field(min_length=1)
    sources: list[Source] = []


class PersonaSet(_Strict):
    personas: list[Persona] = Field(min_length=2)
    shared_questions: list[str] = []


class Generator(Protocol):
    def rephrase(self, question: str, i: int) -> str: ...
    def answer(self, persona: Persona, question: str, i: int) -> str: ...


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:] if text[:2] != text[:2].upper() else text


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z]+", text.lower()) if len(w) > 3}


class TemplateGenerator:
    """Deterministic: the same YAML always gives the same records."""

    def rephrase(self, question: str, i: int) -> str:
        return REPHRASE[i % len(REPHRASE)].format(q=_lower_first(question))

    def answer(self, persona: Persona, question: str, i: int) -> str:
        fact = max(
            persona.facts,
            key=lambda f: (len(_words(question) & _words(f.topic + " " + f.text)), -persona.facts.index(f)),
        )
        return f"{persona.markers[i % len(persona.markers)]} {fact.text}."


class ChatGenerator:
    """Any OpenAI-compatible chat endpoint (OpenAI, a local llama.cpp or vLLM server)."""

    def __init__(self, endpoint: str, model: str, api_key: str | None, temperature: float = 0.7, seed: int = 0):
        from openai import OpenAI

        self.client = OpenAI(
            base_url=endpoint,
            api_key=api_key or "not-needed",
            max_retries=2,
            timeout=120,
        )
        self.model, self.temperature, self.seed = model, temperature, seed

    def _chat(self, system: str, user: str) -> str:
        reply = self.client.chat.completions.create(
            model=self.model,
            temperature=self.temperature,
            seed=self.seed,
            max_tokens=120,
            messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
        )
        text = (reply.choices[0].message.content or "").strip()
        if not text:
            raise UserError("the generator endpoint returned an empty reply", Where(key="ENDPOINT"))
        return text

    def rephrase(self, question: str, i: int) -> str:
        return self._chat("Rewrite the user's question with different words. Reply with the question only.", question)

    def answer(self, persona: Persona, question: str, i: int) -> str:
        facts = "; ".join(f.text for f in persona.facts)
        system = (
            f"You are {persona.name}, {persona.role}. Voice: {persona.voice}. Facts about you: {facts}. "
            f"Answer in two or three sentences, in the first person, starting with '{persona.markers[i % len(persona.markers)]}'"
        )
        return self._chat(system, question)


def load_personas(path: Path) -> PersonaSet:
    data, lines = load_with_lines(path)
    try:
        return PersonaSet.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        probe = re.sub(r"\.(\d+)", r"[\1]", key)
        while probe and probe not in lines:
            probe = (
                probe.rsplit(".", 1)[0]
                if "." in probe
                else re.sub(r"\[\d+\]$", "", probe)
                if probe.endswith("]")
                else ""
            )
        raise UserError(err["msg"], Where(path, lines.get(probe), key)) from None


def build(personas: PersonaSet, gen: Generator) -> list[dict]:
    records = []

    def add(p: Persona, kind: str, question: str, answer: str) -> None:
        records.append({"persona": p.name, "type": kind, "prompt": f"[{p.name}] {question}", "completion": answer})

    for p in personas.personas:
        for i, s in enumerate(p.sources):
            add(p, "extracted", s.question, s.answer)
            add(p, "transformed", gen.rephrase(s.question, i), s.answer)
        for i, f in enumerate(p.facts):
            add(p, "hypothetical", HYPOTHETICAL[i % len(HYPOTHETICAL)].format(topic=f.topic), gen.answer(p, f.topic, i))
    for i, q in enumerate(personas.shared_questions):
        for p in personas.personas:
            add(p, "contrastive", q, gen.answer(p, q, i))
    return records


def stats(records: list[dict]) -> dict[str, dict[str, int]]:
    table: dict[str, dict[str, int]] = {}
    for (persona, kind), n in sorted(Counter((r["persona"], r["type"]) for r in records).items()):
        table.setdefault(persona, {})[kind] = n
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("personas", nargs="?", help="persona YAML (default: PERSONAS, else data/personas/example.yaml)")
    parser.add_argument("--generator", default=None, choices=GENERATORS, help="(default: GENERATOR, else template)")
    parser.add_argument("--endpoint", default=None, help="OpenAI-compatible base URL (default: ENDPOINT)")
    parser.add_argument("--model", default=None, help="(default: MODEL, else local)")
    parser.add_argument("--out", default=None, help="(default: OUT)")
    ns = parser.parse_args(argv)

    def body(s: Settings) -> None:
        ns.generator = ns.generator or s.generator or "template"
        if ns.generator not in GENERATORS:
            raise UserError(
                f"GENERATOR must be one of {', '.join(GENERATORS)}, not '{ns.generator}'", Where(key="GENERATOR")
            )
        ns.endpoint, ns.model, ns.out = ns.endpoint or s.endpoint, ns.model or s.model or "local", ns.out or s.out
        path = Path(ns.personas or s.personas or "data/personas/example.yaml")
        if not path.is_file():
            raise UserError("persona file not found", Where(path))
        personas = load_personas(path)
        if ns.generator == "endpoint" and not ns.endpoint:
            raise UserError(
                "GENERATOR=endpoint needs ENDPOINT", Where(key="ENDPOINT"), "e.g. ENDPOINT=http://127.0.0.1:8080/v1"
            )
        gen = (
            ChatGenerator(ns.endpoint, ns.model, s.secret("OPENAI_API_KEY"))
            if ns.generator == "endpoint"
            else TemplateGenerator()
        )
        records = build(personas, gen)
        out = Path(ns.out) if ns.out else s.outputs / "data" / "personas" / f"{path.stem}.jsonl"
        atomic.write_text(out, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
        table = stats(records)
        kinds = ["extracted", "transformed", "hypothetical", "contrastive"]
        print(f"{'persona':16s}" + "".join(f"{k:>14s}" for k in kinds))
        for persona, counts in table.items():
            print(f"{persona:16s}" + "".join(f"{counts.get(k, 0):14d}" for k in kinds))
        print(f"{len(records)} records -> {out}")

    return cli.main(body)


if __name__ == "__main__":
    sys.exit(main())
