"""An axolotl plugin the launcher adds to every run: seed Python, NumPy and torch with the recipe's `seed` right
before the model is built. axolotl builds the model (and with it the LoRA A matrices, kaiming-random) before the
HF Trainer seeds anything, so two runs of one recipe started from different adapters: their first two losses agree
(LoRA B starts at zero) and then the curves part (measured: every lora_B gradient of the first step differed
between two runs; with this hook every gradient of every step is bit-identical, on a loaded machine too). A
resumed run loads its adapter from the checkpoint, so it continues the run it resumes exactly."""

from __future__ import annotations

from axolotl.integrations.base import BasePlugin

DEFAULT_SEED = 42  # the HF Trainer's own default


class SeedPlugin(BasePlugin):
    def pre_model_load(self, cfg):
        from transformers import set_seed

        set_seed(int(cfg.seed if cfg.seed is not None else DEFAULT_SEED))
