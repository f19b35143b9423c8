"""`make judge-report FILES="a.jsonl b.jsonl"`: re-analyze judged exports (the seeds' or ours) from their raw
rows: per file and judge, n, wins/losses/ties/invalid, win rate with Wilson 95 % CI in both tie readings (ties
excluded, ties as half) and as published, sign test, per suite, position consistency, inter-judge agreement,
an audit of stored winners vs our own parse, and the published figures beside what the rows reproduce.
A judge below the position-consistency floor (JUDGE_MIN_CONSISTENCY, default 50 %) is reported as unusable,
with no win rate."""

from __future__ import annotations

import argparse
import glob
import sys
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from core import atomic, cli, settings
from core.errors import UserError, Where
from core.mdtable import cell
from core.settings import Settings
from eval import judged_io
from eval.stats import MIN_CONSISTENCY, TIE_CONVENTION, agreement, usability, win_summary
from eval.verdicts import combine

PUBLISHED = Path(__file__).with_name("published.yaml")


def item_verdicts(rows: list[dict]) -> tuple[dict[str, str], dict[str, bool | None], dict[str, str]]:
    """{item: verdict}, {item: position-consistent or None (judged in one order)}, {item: suite}."""
    grouped: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        grouped[r["item"]].append(r)
    verdicts, consistent, suites = {}, {}, {}
    for item, rs in grouped.items():
        suites[item] = rs[0]["suite"]
        orders = {r["order"]: r["verdict"] for r in rs}
        if len(orders) == 2:
            verdicts[item], consistent[item] = combine(orders["CB"], orders["BC"])
        else:
            verdicts[item], consistent[item] = rs[0]["verdict"], None
    return verdicts, consistent, suites


def summarize_group(rows: list[dict], floor: float = MIN_CONSISTENCY) -> dict[str, Any]:
    verdicts, consistent, suites = item_verdicts(rows)
    out = win_summary(list(verdicts.values()))
    both = [c for c in consistent.values() if c is not None]
    out["position_consistency"] = (sum(both) / len(both)) if both else None
    out["judged_in_both_orders"] = len(both)
    out["usable"], out["usable_note"] = usability(out["position_consistency"], floor)
    by_suite: dict[str, list[str]] = defaultdict(list)
    for item, v in verdicts.items():
        by_suite[suites[item]].append(v)
    out["suites"] = {s: win_summary(v) for s, v in sorted(by_suite.items())}
    seed = [r for r in rows if r["format"] == "seed"]
    out["audit"] = (
        {
            "parse_vs_stored": [
                f"{r['file']}:{r['line']}: parsed {r['verdict']}, stored {r['stored']}"
                for r in seed
                if r["verdict"] != r["stored"]
            ],
            "stored_vs_original_buggy": sum(1 for r in seed if r["stored_buggy"] and r["stored_buggy"] != r["stored"]),
            "rows": len(seed),
        }
        if seed
        else None
    )
    out["verdicts"] = verdicts
    return out


def analyze(paths: list[Path], floor: float = MIN_CONSISTENCY) -> dict[str, Any]:
    published = yaml.safe_load(PUBLISHED.read_text())
    report: dict[str, Any] = {"files": {}, "runs": {}, "floor": floor}
    by_run: dict[str, dict[str, dict]] = defaultdict(dict)
    for path in paths:
        rows = judged_io.read(path)
        judges = sorted({r["judge"] for r in rows})
        entry = summarize_group(rows, floor)
        entry.update(
            run=rows[0]["run"],
            judges=judges,
            per_judge={j: summarize_group([r for r in rows if r["judge"] == j], floor) for j in judges}
            if len(judges) > 1
            else {},
        )
        for p in published:
            if p["run"] == entry["run"] and "judges" in p and set(p["judges"]) == set(judges):
                entry["published"] = {
                    "win_rate": p["win_rate"],
                    "source": p["source"],
                    "reproduced": round(entry["win_rate"], 3) == round(p["win_rate"], 3),
                }
        report["files"][path.name] = entry
        by_run[entry["run"]][" + ".join(judges)] = entry["verdicts"]
    for run, judged in by_run.items():
        agree = agreement(judged)
        if agree:
            for p in published:
                if p["run"] == run and "all_agree_rate" in p:
                    agree["published_all_agree_rate"] = p["all_agree_rate"]
            report["runs"][run] = agree
    return report


def pct(x: float | None) -> str:
    return "-" if x is None or x != x else f"{100 * x:.1f} %"


def reading(r: dict[str, Any]) -> str:
    return f"{pct(r['rate'])} ({pct(r['ci95'][0])} - {pct(r['ci95'][1])})"


def markdown(report: dict[str, Any], note: str | None = None) -> str:
    """The report; `note` is a paragraph under the title (make judge: which prompts were judged)."""
    out = [
        "# Judge report",
        "",
        *([note, ""] if note else []),
        f"Tie convention: {TIE_CONVENTION}. 95 % intervals are Wilson's. A judge whose position consistency is "
        f"below {pct(report.get('floor', MIN_CONSISTENCY))} is unusable: its verdict follows the order of the pair.",
        "",
        "| file | judges | n | W / L / T / invalid | ties excluded (95 % CI) | ties as half (95 % CI) | "
        "as published: wins / n (95 % CI) | sign test p | published | position consistency |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, e in report["files"].items():
        pub = e.get("published")
        pub_s = f"{pct(pub['win_rate'])} ({'reproduced' if pub['reproduced'] else 'NOT reproduced'})" if pub else "-"
        pc = pct(e["position_consistency"]) if e["position_consistency"] is not None else "n/a (one order)"
        counts = f"{e['wins']} / {e['losses']} / {e['ties']} / {e['invalid']}"
        if not e["usable"]:
            rates = "unusable | unusable | unusable | -"
        else:
            rates = (
                f"{reading(e['ties_excluded'])} | {reading(e['ties_half'])} | "
                f"{pct(e['win_rate'])} ({pct(e['ci95'][0])} - {pct(e['ci95'][1])}) | {e['sign_test_p']:.2g}"
            )
        judges = ", ".join(e["judges"])
        out.append(f"| {cell(name)} | {cell(judges)} | {e['n']} | {counts} | {rates} | {pub_s} | {pc} |")
    for name, e in report["files"].items():
        out += ["", f"## {name}", ""]
        if e["warning"]:
            out.append(f"**Warning:** {e['warning']}.")
        if e["usable_note"]:
            out.append(f"**{'Note' if e['usable'] else 'Unusable'}:** {e['usable_note']}.")
        for judge, j in e["per_judge"].items():
            out.append(
                f"- judge {judge}: "
                + (
                    f"unusable ({j['usable_note']})"
                    if not j["usable"]
                    else f"{j['wins']}/{j['n']} = {pct(j['win_rate'])} (CI {pct(j['ci95'][0])} - {pct(j['ci95'][1])}), "
                    f"ties excluded {reading(j['ties_excluded'])}, ties as half {reading(j['ties_half'])}"
                )
                + (f"; {j['warning']}" if j["warning"] else "")
            )
        out += ["", "| suite | n | W / L / T | ties excluded (95 % CI) | ties as half (95 % CI) | note |"]
        out.append("|---|---|---|---|---|---|")
        for suite, s in e["suites"].items():
            rates = (
                "unusable | unusable"
                if not e["usable"]
                else f"{reading(s['ties_excluded'])} | {reading(s['ties_half'])}"
            )
            out.append(
                f"| {cell(suite)} | {s['n']} | {s['wins']} / {s['losses']} / {s['ties']} | {rates} "
                f"| {'n < 30' if s['warning'] else ''} |"
            )
        audit = e.get("audit")
        if audit:
            out += [
                "",
                f"Audit: our parse of the raw judgment (seed mapping A = baseline, B = candidate) disagrees with the "
                f"stored winner on {len(audit['parse_vs_stored'])} of {audit['rows']} rows; the stored winner differs "
                f"from the seed's original (buggy) winner on {audit['stored_vs_original_buggy']} rows.",
            ]
            out += [f"- {x}" for x in audit["parse_vs_stored"][:20]]
    for run, a in report["runs"].items():
        out += [
            "",
            f"## Agreement between judges: {run}",
            "",
            f"{a['items']} items judged by all of: {', '.join(a['judges'])}.",
            "",
        ]
        out += [f"- Cohen's kappa {pair}: {k:.3f}" for pair, k in a["cohen_kappa"].items()]
        if a["fleiss_kappa"] is not None:
            out.append(f"- Fleiss' kappa: {a['fleiss_kappa']:.3f}")
        pub = a.get("published_all_agree_rate")
        out.append(
            f"- all judges agree: {a['all_agree']}/{a['items']} = {pct(a['all_agree_rate'])}"
            + (f" (published {pct(pub)})" if pub is not None else "")
        )
    return "\n".join(out) + "\n"


def floor(s: settings.Settings) -> float:
    """The position-consistency floor: JUDGE_MIN_CONSISTENCY (a share, 0-1, checked in core/settings.py), else the
    default."""
    return MIN_CONSISTENCY if s.judge_min_consistency is None else s.judge_min_consistency


def one_line(name: str, j: dict[str, Any]) -> str:
    """One line per judge: both tie readings, or why there is no win rate."""
    pc = "n/a" if j["position_consistency"] is None else f"{j['position_consistency']:.0%}"
    counts = f"{j['wins']} W / {j['losses']} L / {j['ties']} T / {j['invalid']} invalid of {j['n']}"
    if not j.get("usable", True):
        return f"{name}: UNUSABLE ({j['usable_note']}); {counts}"

    def reading(r: dict[str, Any]) -> str:
        return f"{r['rate']:.1%} (95% CI {r['ci95'][0]:.1%}-{r['ci95'][1]:.1%})"

    return (
        f"{name}: {counts}; win rate ties excluded {reading(j['ties_excluded'])}, ties as half "
        f"{reading(j['ties_half'])}; position consistency {pc}" + (f"; {j['warning']}" if j["warning"] else "")
    )


def expand(patterns: list[str]) -> list[Path]:
    paths: list[Path] = []
    for pattern in patterns:
        found = sorted(glob.glob(pattern)) or ([pattern] if Path(pattern).exists() else [])
        if not found:
            raise UserError(f"no file matches '{pattern}'", Where(key="FILES"))
        paths += [Path(p) for p in found]
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", help="judged exports, globs allowed (default: FILES)")
    ns = parser.parse_args(argv)

    def body(s: Settings) -> None:
        files = ns.files or (s.files or "").split()
        if not files:
            raise UserError("no judged files given", Where(key="FILES"), 'make judge-report FILES="exports/*.jsonl"')
        report = analyze(expand(files), floor(s))
        text = markdown(report)
        out = s.outputs / "judge-report" / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        atomic.write_text(out / "report.md", text)
        atomic.write_json(out / "report.json", dict(report))
        print(text)
        print(f"saved: {out / 'report.md'}")

    return cli.main(body)


if __name__ == "__main__":
    sys.exit(main())
