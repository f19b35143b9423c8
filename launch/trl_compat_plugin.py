"""An axolotl plugin the launcher adds to every rl: run (DPO, KTO, ORPO, GRPO...): axolotl 0.21.0 replaces trl.trainer.utils.selective_log_softmax
with its Triton kernel whenever triton imports (loaders/patch_manager.py _apply_trl_trainer_utils_patches), but
its function takes (logits, index) while TRL 1.14's GRPO calls it with row_mask= (utils.py
selective_log_softmax_and_entropy, and KTO's and DPO's own calls, through the name their modules imported after
axolotl's patch): every such step then fails with "unexpected keyword argument 'row_mask'". Once the trainer
exists (after axolotl's patches), each TRL module's name goes to axolotl's kernel when a call asks only what that
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
        import sys

        from axolotl.monkeypatch.trainer import utils as axolotl_utils

        kernel = axolotl_utils.selective_log_softmax
        original = getattr(axolotl_utils, "selective_log_softmax_original", None)
        if original is None:
            return  # axolotl did not patch (no triton): TRL's own function everywhere
        wrapped = compatible(kernel, original)
        for name, module in list(sys.modules.items()):
            if name.split(".")[0] == "trl" and getattr(module, "selective_log_softmax", None) is kernel:
                module.selective_log_softmax = wrapped  # trl.trainer.utils, and trainers that imported the name
