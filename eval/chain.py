"""The chain of a run that started from another run (a DPO or GRPO run on top of an SFT run, train.start_from in
its manifest): which run it started from, the original base model at the chain's root, what each run of it trained
on, which held-out split the chain is scored on, and the leaderboard's "base -> SFT -> DPO" table with the reward
margins (GRPO: mean rewards) from training.

Read through manifests only: a run's start run is the folder its manifest names, never a guessed path."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core import manifest
from core.errors import UserError, Where
from core.manifest import Manifest
from core.mdtable import cell
from core.paths import REPO


@dataclass(frozen=True)
class Link:
    run: Path
    manifest: Manifest

    @property
    def label(self) -> str:
        return f"{self.manifest.recipe_name}/{self.run.name}"


def start_run(run: Path, m: Manifest | None = None) -> Path | None:
    """The run this one started from (its merged weights are this run's base model), or None."""
    m = m or manifest.read(run)
    start = m.train.start_from
    if start is None:
        return None
    path = Path(start.run)
    path = path if path.is_absolute() else REPO / path  # as make train recorded it, from the repo root
    if not (path / manifest.MANIFEST).is_file():
        raise UserError(
            f"the run {run.name} started from {start.run}, which is gone",
            Where(run / manifest.MANIFEST, key="train.start_from.run"),
            "restore that run directory (its manifest names the weights this run was trained on)",
        )
    return path


def links(run: Path) -> list[Link]:
    """The chain from its root to this run: [SFT run, DPO run] (a plain run: just itself)."""
    out: list[Link] = []
    seen: set[Path] = set()
    current: Path | None = run
    while current is not None and current.resolve() not in seen:
        seen.add(current.resolve())
        m = manifest.read(current)
        out.append(Link(current, m))
        current = start_run(current, m)
    return out[::-1]


def origin_base(run: Path) -> tuple[str, str]:
    """(name, loadable path) of the base model at the chain's root: what the first run fine-tuned."""
    root = links(run)[0].manifest.train.base_model
    return root.name, root.path


def training_files(run: Path) -> list[tuple[Link, Path | None, str]]:
    """(run, local file or None when it is not here, path as recorded) of every training dataset of every run in
    the chain: what the chain's weights were trained on (a DPO run: its pairs; the SFT run it started from: its
    conversations)."""
    out = []
    for link in links(run):
        for ds in link.manifest.train.datasets:
            if ds.role != "train":
                continue
            path = Path(ds.path).expanduser()
            path = path if path.is_absolute() else REPO / path  # as make train recorded it, from the repo root
            out.append((link, path if path.is_file() else None, ds.path))
    return out


def heldout_run(run: Path) -> Path:
    """The run whose held-out split (test_datasets) scores this chain: the first run of it that is not a
    preference run (a preference run's test_datasets are pairs, not conversations); the run itself otherwise."""
    for link in reversed(links(run)):
        pref = link.manifest.train.preference
        if pref is None or not pref.rl:
            return link.run
    return run


def margins(m: Manifest) -> dict[str, float | None]:
    s = m.train.summary
    return {
        "first_margin": s.first_margin if s else None,
        "final_margin": s.final_margin if s else None,
        "eval_margin": s.eval_margin if s else None,
    }


def _num(x: float | None, fmt: str = "{:.3f}") -> str:
    return fmt.format(x) if isinstance(x, int | float) else "-"


def training_reward(t: dict[str, Any]) -> str:
    """A preference run's reward margins (first step, last step, held-out); a GRPO run's mean reward (first and
    last logged step); '-' for a run with neither."""
    if t.get("final_margin") is not None:
        return " / ".join(_num(t.get(k)) for k in ("first_margin", "final_margin", "eval_margin"))
    if t.get("final_reward") is not None:
        return f"{_num(t.get('first_reward'))} / {_num(t.get('final_reward'))} / - (GRPO mean reward)"
    return "-"


def chain_table(rows: list[dict[str, Any]], primary: str) -> list[str]:
    """Markdown: one block per chained run, base -> each run in order, with the primary held-out metric, the
    judges' win rate against the previous step and the reward margins (first step, last step, held-out)."""
    by_label = {r["run"]: r for r in rows}
    out: list[str] = []
    for r in rows:
        if not r.get("chain") or len(r["chain"]) < 2:
            continue
        out += [
            f"### {' -> '.join(['base', *[lbl.split('/')[0] for lbl in r['chain']]])}",
            "",
            f"| step | model | {primary} | judges' win rate vs the step before | reward margin first / last / held-out |",
            "|---|---|---|---|---|",
            f"| base | {cell(r['origin'])} | {_num(r.get('origin_score'))} | - | - |",
        ]
        for label in r["chain"]:
            step = by_label.get(label, {})
            wins = ", ".join(
                f"{j} {100 * s['win_rate']:.0f} %" + (f" (held-out n={s['heldout']['n']})" if s.get("heldout") else "")
                for j, s in (step.get("judges") or {}).items()
                if s.get("win_rate")
            )
            out.append(
                f"| {cell(label.split('/')[0])} | {cell(label)} | {_num(step.get('score'))} | {cell(wins or '-')} | "
                f"{training_reward(step.get('train') or {})} |"
            )
        out.append("")
    return out


@dataclass(frozen=True)
class Against:
    """What `make judge` compares the run with, and where that comparison is kept."""

    label: str
    path: str | None  # the model to load; None: the run's own base_model (its manifest's train.base_model)
    folder: str  # under the run directory
    section: str  # the manifest section


VERSUS = ("base", "origin")


def baseline(run: Path, m: Manifest, versus: str = "base") -> Against:
    """versus "base": the run's base model, which for a chained run is the run it started from; "origin": the
    base model at the chain's root (for a plain run the same model, so it is refused there)."""
    if versus == "origin":
        if m.train.start_from is None:
            raise UserError(
                f"BASELINE=origin compares a chained run with its chain's root model, and {run.name} did not start "
                "from another run",
                Where(key="BASELINE"),
                "BASELINE=base (its base model) is the comparison for this run",
            )
        name, path = origin_base(run)
        return Against(f"base model {name} (the chain's root)", path, "judge-origin", "judge_origin")
    if versus != "base":
        raise UserError(f"unknown BASELINE={versus}", Where(key="BASELINE"), f"one of: {', '.join(VERSUS)}")
    start = m.train.start_from
    if start is not None:
        return Against(f"start run {Path(start.run).name} ({start.recipe})", None, "judge", "judge")
    return Against("base model", None, "judge", "judge")


def versus_for(run: Path, asked: str | None) -> list[str]:
    """BASELINE= as asked; unset: a chained run is judged against the run it started from, then the root's base."""
    if asked:
        baseline(run, manifest.read(run), asked)  # an unknown or impossible one is refused before any work
        return [asked]
    return ["base", "origin"] if manifest.read(run).train.start_from is not None else ["base"]
