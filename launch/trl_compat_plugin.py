"""An axolotl plugin the launcher adds to GRPO runs: axolotl 0.21.0 replaces trl.trainer.utils.selective_log_softmax
with its Triton kernel whenever triton imports (loaders/patch_manager.py _apply_trl_trainer_utils_patches), but
its function takes (logits, index) while TRL 1.14's GRPO calls it with row_mask= (utils.py
selective_log_softmax_and_entropy): every GRPO step then fails with "unexpected keyword argument 'row_mask'". Once
the trainer exists (after axolotl's patches), TRL's call goes to axolotl's kernel when it asks only what that
kernel computes, and to TRL's own function (which axolotl kept) otherwise."""

from __future__ import annotations

from axolotl.integrations.base import BasePlugin


def compatible(patched, original):
    def selective_log_softmax(logits, index, temperature=1.0, row_mask=None):
        if row_mask is None and temperature == 1.0:
            return patched(logits, index)
        return original(logits, index, temperature=temperature, row_mask=row_mask)

    selective_log_softmax.axolotl_kernel = patched  # type: ignore[attr-defined]
    return selective_log_softmax


class TrlCompatPlugin(BasePlugin):
    def post_trainer_create(self, cfg, trainer):
        import trl.trainer.utils as trl_utils

        current = trl_utils.selective_log_softmax
        if getattr(current, "axolotl_kernel", None) is not None or current.__module__.startswith("trl."):
            return  # already wrapped, or TRL's own (axolotl did not patch: no triton)
        from axolotl.monkeypatch.trainer import utils as axolotl_utils

        trl_utils.selective_log_softmax = compatible(current, axolotl_utils.selective_log_softmax_original)
