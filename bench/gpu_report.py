"""The GPU check's report (bench/gpu_check.py; written by bench/gpu_device.py's stages): outputs/gpu-check/<UTC timestamp>/report.json
and report.md, rewritten after every stage, so a stage's results are on disk before the next starts and a crash
keeps everything before it. A stage that fails is recorded with its error and the stages that needed it say so;
nothing is dropped silently. Standard library only: the check writes its first stage (installing the carry)
before anything else imports."""

from __future__ import annotations

import json
import os
import time
import traceback
from pathlib import Path
from typing import Any

BUDGET_S = 8 * 60  # the whole check on one H100


class Report:
    def __init__(self, folder: Path, command: str | None = None):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / "report.json"
        self.data: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {
            "command": command, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "status": "running",
            "stages": [], "t0": time.time(),
        }  # fmt: skip

    def stage_result(self, name: str) -> dict[str, Any] | None:
        return next((s for s in self.data["stages"] if s["name"] == name), None)

    def ok(self, name: str) -> bool:
        s = self.stage_result(name)
        return bool(s and s["status"] == "ok")

    def run(self, name: str, body, needs: tuple[str, ...] = ()) -> bool:
        """Run a stage: `body(result)` fills its result dict; any exception is recorded as the stage's failure, and a
        stage whose `needs` did not succeed is skipped, saying which. Written before the next stage starts."""
        entry: dict[str, Any] = {"name": name, "status": "running", "result": {}}
        self.data["stages"].append(entry)
        missing = [n for n in needs if not self.ok(n)]
        t0 = time.time()
        try:
            if missing:
                entry.update(status="skipped", error=f"needs {', '.join(missing)}, which did not succeed")
                return False
            body(entry["result"])
            entry["status"] = "ok"
        except Exception as exc:  # noqa: BLE001 - a stage's failure is recorded, and the check goes on
            entry.update(status="failed", error=f"{type(exc).__name__}: {exc}"[-3000:])
            entry["traceback"] = traceback.format_exc()[-4000:]
        finally:
            entry["seconds"] = round(time.time() - t0, 2)
            self.write()
        return entry["status"] == "ok"

    def finish(self) -> str:
        stages = self.data["stages"]
        self.data["status"] = "failed" if any(s["status"] in ("failed", "running") for s in stages) else "completed"
        self.data["seconds"] = round(time.time() - self.data.get("t0", time.time()), 1)
        self.write()
        return self.data["status"]

    def write(self) -> None:
        for name, text in (
            ("report.json", json.dumps(self.data, indent=2, default=str)),
            ("report.md", markdown(self.data)),
        ):
            tmp = self.folder / f".{name}.tmp"
            tmp.write_text(text)
            os.replace(tmp, self.folder / name)


def _f(x: Any, fmt: str = "{:.2f}") -> str:
    return "-" if x is None else fmt.format(x)


def side_row(recipe: str, side: str, s: dict[str, Any], plan: float | None) -> str:
    return (
        f"| {recipe} | {side} | {s.get('attention', '-')} | {s.get('packing', '-')} | {_f(s.get('tokens_per_s'), '{:.0f}')} "
        f"| {s.get('timed_steps', '-')} | {_f(s.get('real_share'), '{:.1%}')} | {_f(s.get('mfu'), '{:.1%}')} "
        f"| {_f(s.get('peak_gpu_allocated_gib'))} / {_f(s.get('peak_gpu_reserved_gib'))} | {_f(s.get('peak_rss_gib'))} "
        f"| {_f(plan)} |"
    )


def markdown(r: dict[str, Any]) -> str:
    env = next((s for s in r["stages"] if s["name"] == "environment"), {}).get("result", {})
    out = [
        "# GPU check: make train vs the seed-style baseline",
        "",
        f"- status: **{r['status']}**"
        + (
            f", {r['seconds'] / 60:.1f} min in all (budget {BUDGET_S // 60} min on one H100)" if "seconds" in r else ""
        ),  # fmt: skip
        f"- command: `{r.get('command')}`; started {r.get('started')}",
    ]
    if env:
        out += [
            f"- machine: {env.get('gpu') or 'CPU (DEVICE=cpu: a run of the check, not a measurement)'}; Python "
            f"{env.get('python')}, torch {env.get('torch')}, CUDA {env.get('cuda')}",
            f"- axolotl: {env.get('axolotl')}",
            "- versions: " + ", ".join(f"{k} {v}" for k, v in (env.get("versions") or {}).items()),
            f"- attention path: {env.get('path')}",
            f"- MFU: {env.get('mfu_peak')}",
        ]
    out += ["", "## Stages", "", "| stage | status | seconds | note |", "|---|---|---|---|"]
    for s in r["stages"]:
        note = (s.get("error") or s["result"].get("note") or "").replace("|", "/").replace("\n", " ")
        out.append(f"| {s['name']} | {s['status']} | {s.get('seconds', '-')} | {note[-300:]} |")
    rows = [s for s in r["stages"] if s["name"].endswith(": compare") and s["status"] == "ok"]
    if rows:
        out += [
            "",
            "## Ours vs the baseline (tokens counted from the attention masks, padding excluded; the same probe)",
            "",
            "| recipe | side | attention | packing | tokens/s | timed steps | real tokens / slots | MFU "
            "| peak GPU GiB alloc / reserved | peak RSS GiB | plan GiB |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for s in rows:
            x = s["result"]
            out.append(side_row(x["recipe"], "ours (make train)", x["ours"], x.get("plan_gib")))
            out.append(side_row(x["recipe"], "baseline (TRL, seed-style)", x["baseline"], x.get("plan_gib")))
            out.append(
                f"| {x['recipe']} | ours / baseline | | | {_f(x.get('speedup'), '{:.2f}x')} | | | | "
                f"{_f(x.get('memory_ratio'), '{:.2f}x')} | | |"
            )
        out += [
            "",
            f"FLOPs: {rows[0]['result'].get('formula', '')}. Peak memory: {rows[0]['result'].get('memory_how', '')}",
        ]
    targets = next((s for s in r["stages"] if s["name"] == "summary"), {}).get("result", {}).get("targets")
    if targets:
        out += ["", "## Targets (reported, not asserted)", "", "| target | measured | reached |", "|---|---|---|"]
        out += [f"| {t['target']} | {t['measured']} | {t['reached']} |" for t in targets]
    return "\n".join(out) + "\n"
