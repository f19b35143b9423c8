"""The study report as ONE self-contained HTML page (eval/study/report.html.j2, rendered by Jinja2 with every
value escaped): the markdown report's content (tables, and the PNGs embedded as data: URIs) plus the generations
side by side per prompt (the prompt, each model's answer, each judge's verdict in both orders) and per held-out
document (the reference and each model's prediction), filterable by suite. Inline CSS and JS only: it opens from a
file:// URL with no network."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

TEMPLATE = "report.html.j2"


def _verdicts(entry: dict[str, Any], item: str) -> list[dict[str, Any]]:
    out = []
    for judge, orders in sorted(entry["verdicts"].get(item, {}).items()):
        shown = []
        for order, what in (("CB", "fine-tune at A"), ("BC", "fine-tune at B")):
            v = orders.get(order)
            if v:
                shown.append(f"{what}: label {v['label'] or 'none'} \u2192 {v['verdict']}")
        unusable = not entry["judges"].get(judge, {}).get("usable", True)
        out.append({"judge": judge, "shown": shown, "unusable": unusable})
    return out


def _answer(title: str, text: Any, verdicts: list | None = None, score: str | None = None) -> dict[str, Any]:
    return {"title": title, "text": "" if text is None else text, "verdicts": verdicts or [], "score": score}


def judged_prompts(data: dict[str, Any]) -> list[dict[str, Any]]:
    """One card per judged prompt: the prompt, each run's answer with its judges' verdicts, each base's answer."""
    prompts: dict[str, dict[str, Any]] = {}
    for e in data["entries"]:
        for g in e["generations"]:
            p = prompts.setdefault(str(g["item"]), {"prompt": g["prompt"], "suite": f"{g['suite']}/{g['config']}"})
            p.setdefault("runs", []).append((e, g["candidate"]))
            p.setdefault("bases", {})[e.get("base", "base model")] = g["baseline"]
    cards = []
    for item, p in prompts.items():
        answers = [_answer(e["key"], text, verdicts=_verdicts(e, item)) for e, text in p["runs"]]
        answers += [_answer(f"{b} (base)", t) for b, t in p["bases"].items()]
        cards.append({"suite": p["suite"], "prompt": p["prompt"], "answers": answers})
    return cards


def heldout_docs(data: dict[str, Any]) -> list[dict[str, Any]]:
    docs: dict[str, dict[str, Any]] = {}
    for m in data["models"]:
        for row in m["rows"]:
            d = docs.setdefault(row["doc"], {"prompt": row["prompt"], "reference": row["reference"], "answers": []})
            d["answers"].append((m["name"], row["prediction"], row["metrics"].get("rouge1")))
    cards = []
    for d in docs.values():
        answers = [_answer("reference", d["reference"])]
        answers += [
            _answer(name, text, score=f"ROUGE-1 {r1:.3f}" if r1 is not None else None)
            for name, text, r1 in d["answers"]
        ]
        cards.append({"suite": "held-out", "prompt": d["prompt"], "answers": answers})
    return cards


def _block(b: tuple, folder: Path) -> dict[str, Any]:
    if b[0] == "h":
        return {"kind": "h", "level": b[1], "text": b[2]}
    if b[0] == "p":
        return {"kind": "p", "text": b[1]}
    if b[0] == "table":
        return {"kind": "table", "headers": b[1][0], "rows": b[1][1]}
    data = base64.b64encode((folder / b[1]).read_bytes()).decode()
    return {"kind": "img", "data": data, "alt": b[2]}


def page(title: str, items: list[tuple], folder: Path, data: dict[str, Any]) -> str:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    env = Environment(
        loader=FileSystemLoader(Path(__file__).parent),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    cards = judged_prompts(data) + heldout_docs(data)
    return env.get_template(TEMPLATE).render(
        title=title,
        blocks=[_block(b, folder) for b in items if b[0] in ("h", "p", "table", "img")],
        cards=cards,
        suites=sorted({c["suite"] for c in cards}),
    )
