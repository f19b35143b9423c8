"""Evaluation: lm-eval tasks, blind pairwise judging with statistics, leaderboard; and GRPO's rewards
(eval/rewards.py, eval/reward_judge.py) and prompt sets (eval/grpo_data.py).

axolotl's dataset-transform loader resolves only `module.function` (one dot: its prompt_strategies/base.py tries
the last two parts as a module and function, then looks inside its own package), so the GRPO prompt-set
transforms are attributes of this package: `type: eval.grpo_suite`, `type: eval.grpo_prompts`. They are
imported only when asked for."""

from __future__ import annotations

import importlib
from typing import Any

TRANSFORMS = ("grpo_suite", "grpo_prompts")


def __getattr__(name: str) -> Any:
    if name in TRANSFORMS:
        return getattr(importlib.import_module("eval.grpo_data"), name)
    raise AttributeError(f"module 'eval' has no attribute {name!r}")
