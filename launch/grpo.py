"""GRPO around the trainer (make train, launch/train.py): before training, each reward function that carries a
`before_training` check runs it (a judge reward measures its judge's agreement with itself and refuses below the
floor: eval/reward_judge.py), and a vLLM server the config generates with must answer, all before a run
directory exists; the run then records the trl settings and those figures (manifest train.grpo). After training,
the rewards of every logged step come from TRL's log (training_summary, launch/execute.py).

The launcher loads reward functions by the dotted path the recipe gives, as the trainer does
(launch/preflight/grpo_rewards.py load_reward), and knows only that protocol: nothing here imports eval."""

from __future__ import annotations

import math
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from core import manifest
from core.errors import UserError, Where
from core.manifest import GrpoRecord, RewardStep
from core.sections import RewardJudgeRecord
from core.settings import Settings
from launch.preflight.grpo import beta_of, generation_where
from launch.preflight.grpo_rewards import load_reward

HEALTH_TIMEOUT_S = 5.0


def _reward_paths(config: dict[str, Any]) -> list[str]:
    return [str(p) for p in (config.get("trl") or {}).get("reward_funcs") or []]


def before_training(config: dict[str, Any], s: Settings, log=print) -> dict[str, dict[str, Any]]:
    """Each reward's own check before training ({reward path: what it measured}; a reward's `before_training`
    hook is given the command's settings); a UserError refuses the run."""
    if config.get("rl") != "grpo":
        return {}
    checks: dict[str, dict[str, Any]] = {}
    for path in _reward_paths(config):
        fn, why = load_reward(path)
        if why:
            raise UserError(f"reward function {path}: {why}", Where(key="trl.reward_funcs"))
        hook = getattr(fn, "before_training", None)
        if not callable(hook):
            continue
        log(f"reward {path}: measuring its judge before training")
        checks[path] = hook(s)
        got = checks[path]
        if isinstance(got, dict) and "consistency" in got:
            log(
                f"reward {path}: judge {got.get('judge')} agrees with itself on {got.get('agreed')} of {got.get('n')} "
                f"({100 * got['consistency']:.0f} %, floor {100 * got.get('floor', 0):.0f} %)"
            )
    vllm_server(config)
    return checks


def vllm_server(config: dict[str, Any]) -> None:
    """With trl.use_vllm in server mode, the server must answer /health/ before training starts (TRL would wait
    vllm_server_timeout seconds, then fail inside the trainer)."""
    trl, vllm = config.get("trl") or {}, config.get("vllm") or {}
    if not trl.get("use_vllm") or trl.get("vllm_mode") == "colocate":
        return
    host = trl.get("vllm_server_host") or vllm.get("host") or "0.0.0.0"
    port = trl.get("vllm_server_port") or vllm.get("port") or 8000
    url = f"http://{'127.0.0.1' if host == '0.0.0.0' else host}:{port}/health/"
    try:
        with urllib.request.urlopen(url, timeout=HEALTH_TIMEOUT_S) as reply:
            if reply.status == 200:
                return
            problem = f"it answered {reply.status}"
    except (urllib.error.URLError, OSError) as exc:
        problem = str(getattr(exc, "reason", exc))
    raise UserError(
        f"trl.use_vllm: no vLLM server answers at {url} ({problem})",
        Where(key="trl.vllm_server_host"),
        "start it first on a GPU the training does not use: make show RECIPE=<recipe> > /tmp/grpo.yaml && "
        "CUDA_VISIBLE_DEVICES=1 axolotl vllm-serve /tmp/grpo.yaml (docs/grpo.md)",
    )


def record(run: Path, config: dict[str, Any], checks: dict[str, dict[str, Any]]) -> None:
    """The run's GRPO settings and its reward judges' figures, into the manifest's train section."""
    if config.get("rl") != "grpo":
        return
    trl = config.get("trl") or {}
    weights = trl.get("reward_weights")
    grpo = GrpoRecord(
        num_generations=trl.get("num_generations"),
        max_completion_length=trl.get("max_completion_length"),
        beta=beta_of(config),
        reward_funcs=_reward_paths(config),
        reward_weights=[float(w) for w in weights] if isinstance(weights, list) else None,
        generation=generation_where(config),
        judges={path: RewardJudgeRecord.model_validate(c) for path, c in checks.items()},
    )
    m = manifest.read(run)
    manifest.write_sections(run, train=m.train.model_copy(update={"grpo": grpo}))


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def reward_summary(history: list[dict[str, Any]]) -> dict[str, Any]:
    """TrainSummary's GRPO fields from TRL's log history: every logged step's weighted reward, its spread, each
    reward function's mean (rewards/<name>/mean) and what reward functions logged (judge/...); NaN (a function
    that scored nothing that step) is recorded as null. Empty for other runs."""
    steps = []
    for h in history:
        if "reward" not in h or "step" not in h:
            continue
        functions = {k[len("rewards/") : -len("/mean")]: _number(v) for k, v in h.items() if k.startswith("rewards/")
                     and k.endswith("/mean")}  # fmt: skip
        metrics = {k: float(v) for k, v in h.items() if k.startswith("judge/") and _number(v) is not None}
        steps.append(
            RewardStep(
                step=int(h["step"]),
                reward=_number(h["reward"]),
                reward_std=_number(h.get("reward_std")),
                functions=functions,
                metrics=metrics,
            )
        )
    if not steps:
        return {}
    return {"rewards": steps, "first_reward": steps[0].reward, "final_reward": steps[-1].reward}
