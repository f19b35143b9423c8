"""The study report as ONE self-contained HTML page: the markdown report's content (tables, and the PNGs
embedded as data: URIs) plus the generations side by side per prompt (the prompt, each model's answer, each
judge's verdict in both orders) and per held-out document (the reference and each model's prediction),
filterable by suite. Inline CSS and JS only: it opens from a file:// URL with no network."""

from __future__ import annotations

import base64
import html as _html
from pathlib import Path
from typing import Any

CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1200px;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:12px}
th,td{border:1px solid #ccc;padding:3px 6px;vertical-align:top;text-align:left}
th{background:#f2f2f2}img{max-width:100%;border:1px solid #ddd;margin:.4em 0}
.prompt{border:1px solid #ccc;border-radius:6px;padding:.6em 1em;margin:1em 0}
.prompt h4{margin:.2em 0}.suite{color:#666;font-size:12px}
.answers{display:grid;grid-template-columns:repeat(auto-fit,minmax(260px,1fr));gap:.6em}
.answer{background:#fafafa;border:1px solid #e4e4e4;border-radius:4px;padding:.4em .6em;white-space:pre-wrap}
.answer b{display:block;margin-bottom:.2em}.verdicts{font-size:12px;color:#333;margin-top:.4em}
.bad{color:#a33}#filter{position:sticky;top:0;background:#fff;padding:.5em 0;border-bottom:1px solid #ddd}
"""
JS = """
(function () {
  var select = document.getElementById('suite');
  function apply() {
    var value = select.value, shown = 0, cards = document.querySelectorAll('.prompt');
    cards.forEach(function (card) {
      var on = value === 'all' || card.getAttribute('data-suite') === value;
      card.hidden = !on;
      if (on) { shown += 1; }
    });
    document.getElementById('shown').textContent = shown + ' of ' + cards.length + ' prompts';
  }
  select.addEventListener('change', apply);
  apply();
})();
"""


def esc(text: Any) -> str:
    return _html.escape("" if text is None else str(text))


def _table(table) -> str:
    headers, rows = table
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _image(folder: Path, name: str, alt: str) -> str:
    data = base64.b64encode((folder / name).read_bytes()).decode()
    return f'<img alt="{esc(alt)}" src="data:image/png;base64,{data}">'


def _verdicts(entry: dict[str, Any], item: str) -> str:
    parts = []
    for judge, orders in sorted(entry["verdicts"].get(item, {}).items()):
        unusable = not entry["judges"].get(judge, {}).get("usable", True)
        shown = []
        for order, what in (("CB", "fine-tune at A"), ("BC", "fine-tune at B")):
            v = orders.get(order)
            if v:
                shown.append(f"{what}: label {v['label'] or 'none'} &rarr; {esc(v['verdict'])}")
        cls = ' class="bad"' if unusable else ""
        note = " (judge unusable: below the position-consistency floor)" if unusable else ""
        parts.append(f"<div{cls}>{esc(judge)}: {'; '.join(shown)}{note}</div>")
    return f'<div class="verdicts">{"".join(parts)}</div>' if parts else ""


def judged_prompts(data: dict[str, Any]) -> list[str]:
    """One card per judged prompt: the prompt, each run's answer with its judges' verdicts, each base's answer."""
    prompts: dict[str, dict[str, Any]] = {}
    for e in data["entries"]:
        for g in e["generations"]:
            p = prompts.setdefault(str(g["item"]), {"prompt": g["prompt"], "suite": f"{g['suite']}/{g['config']}"})
            p.setdefault("runs", []).append((e, g["candidate"]))
            p.setdefault("bases", {})[e.get("base", "base model")] = g["baseline"]
    cards = []
    for item, p in prompts.items():
        answers = [
            f'<div class="answer"><b>{esc(e["key"])}</b>{esc(text)}{_verdicts(e, item)}</div>' for e, text in p["runs"]
        ]
        answers += [f'<div class="answer"><b>{esc(b)} (base)</b>{esc(t)}</div>' for b, t in p["bases"].items()]
        cards.append(
            f'<div class="prompt" data-suite="{esc(p["suite"])}"><span class="suite">{esc(p["suite"])}</span>'
            f'<h4>{esc(p["prompt"])}</h4><div class="answers">{"".join(answers)}</div></div>'
        )
    return cards


def heldout_docs(data: dict[str, Any]) -> list[str]:
    docs: dict[str, dict[str, Any]] = {}
    for m in data["models"]:
        for row in m["rows"]:
            d = docs.setdefault(row["doc"], {"prompt": row["prompt"], "reference": row["reference"], "answers": []})
            d["answers"].append((m["name"], row["prediction"], row["metrics"].get("rouge1")))
    cards = []
    for d in docs.values():
        answers = [f'<div class="answer"><b>reference</b>{esc(d["reference"])}</div>']
        answers += [
            f'<div class="answer"><b>{esc(name)}</b>{esc(text)}<div class="verdicts">ROUGE-1 {r1:.3f}</div></div>'
            if r1 is not None
            else f'<div class="answer"><b>{esc(name)}</b>{esc(text)}</div>'
            for name, text, r1 in d["answers"]
        ]
        cards.append(
            f'<div class="prompt" data-suite="held-out"><span class="suite">held-out</span>'
            f'<h4>{esc(d["prompt"])}</h4><div class="answers">{"".join(answers)}</div></div>'
        )
    return cards


def page(title: str, items: list[tuple], folder: Path, data: dict[str, Any]) -> str:
    body = []
    for b in items:
        if b[0] == "h":
            body.append(f"<h{b[1]}>{esc(b[2])}</h{b[1]}>")
        elif b[0] == "p":
            body.append(f"<p>{esc(b[1])}</p>")
        elif b[0] == "table":
            body.append(_table(b[1]))
        elif b[0] == "img":
            body.append(_image(folder, b[1], b[2]))
    cards = judged_prompts(data) + heldout_docs(data)
    suites = sorted({c.split('data-suite="', 1)[1].split('"', 1)[0] for c in cards})
    options = '<option value="all">all suites</option>' + "".join(f'<option value="{s}">{s}</option>' for s in suites)
    body.append("<h2>Generations side by side</h2>")
    body.append(
        f'<div id="filter"><label>suite <select id="suite">{options}</select></label> <span id="shown"></span></div>'
    )
    body += cards or ["<p>No generations yet: judging and evaluation write them.</p>"]
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>{''.join(body)}<script>{JS}</script></body></html>"
    )
