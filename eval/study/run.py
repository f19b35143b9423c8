"""`make study STUDY=studies/x.yaml [RUNPOD=1 MAX_COST=40]`: train, evaluate and judge every model of a study,
then write its report (eval/study/report.py). Locally the runs go one after another; with RUNPOD=1 each run
gets its own pod, in parallel, within MAX_COST. Re-running a study skips finished runs (by manifest), goes
on with unfinished ones and tries failed ones again; one live table shows state, step, loss and cost. One
`make study` of a study at a time: a second is refused, naming the first (eval/study/state.py's hold)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core import cli
from core.errors import UserError, Where
from core.settings import Settings
from eval.study import local, pods, report, spec, state
from eval.study.progress import Progress


def refuse_big_models_on_cpu(runs: list[spec.StudyRun], study_file: Path, s: Settings) -> None:
    """launch.train refuses a >1B model on CPU; say so once, for the whole study, before anything starts."""
    from launch.train import CPU_MAX_PARAMS_B
    from resolver.profiles import cuda_available
    from resolver.registry import load_recipe

    if s.force or cuda_available(s):
        return
    big = [
        r.key
        for r in runs
        if "base_model" not in r.overrides and load_recipe(r.recipe).meta.params_b > CPU_MAX_PARAMS_B
    ]
    if big:
        raise UserError(
            f"{len(big)} run(s) train models above {CPU_MAX_PARAMS_B:g}B and this machine has no GPU: {', '.join(big)}",
            Where(study_file, key="runs"),
            "RUNPOD=1 MAX_COST=<USD> trains each on its own pod; FORCE=1 trains on CPU anyway (days)",
        )


def run_study(s: Settings, study_ref: str | None) -> None:
    study, runs, jobs, paths = report.load(study_ref, s)
    study_file = Path(study_ref or "")
    with state.hold(paths, study.name):  # a second `make study` of this study is refused here
        state.read_state(paths)  # a corrupt state.json is refused before any work
        spec.check_overrides(runs, study_file, s.cache)
        if not s.runpod:
            refuse_big_models_on_cpu(runs, study_file, s)
        where = f"RunPod, MAX_COST ${s.max_cost or study.budget.max_cost}" if s.runpod else "this machine"
        print(f"study {study.name}: {len(runs)} runs on {where}; folder {paths.root}", flush=True)
        stopped: dict[str, str] = {}
        with Progress(runs, f"study {study.name}") as prog:
            if s.runpod:
                failed, stopped = pods.run_all(study, paths, runs, jobs, s, prog)
            else:
                failed = local.run_all(paths, runs, jobs, study.retries, prog)
        folder = report.build(study, runs, jobs, paths)
    print(f"report: {folder / 'report.md'} and {folder / 'report.html'}")
    problems = [f"{k}: {why.splitlines()[0]}" for k, why in failed.items()]
    problems += [f"{k}: {why}" for k, why in stopped.items()]
    if problems:
        raise UserError(
            f"{len(problems)} of {len(runs)} run(s) did not finish:\n  " + "\n  ".join(problems),
            Where(study_file),
            "the step logs are under " + str(paths.root / "logs") + "; make study again goes on from here",
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", nargs="?", help="the study file (default: STUDY)")
    ns = parser.parse_args(argv)

    def body(s: Settings) -> None:
        run_study(s, ns.study or s.study)

    return cli.main(body)


if __name__ == "__main__":
    sys.exit(main())
