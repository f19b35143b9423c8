"""The GPU bench's axolotl plugin (added to `plugins` by bench/gpu.py only, never by a recipe): the model's memory
once it and its adapter are loaded, then the probe of bench/probe.py on the Trainer axolotl builds."""

from __future__ import annotations

from pathlib import Path

from axolotl.integrations.base import BasePlugin

from bench.probe import PROBE_FILE, Probe, instrument


class BenchProbePlugin(BasePlugin):
    probe: Probe | None = None

    def post_model_load(self, cfg, model):
        self.probe = Probe(Path(cfg.output_dir) / PROBE_FILE)
        self.probe.loaded()

    def post_trainer_create(self, cfg, trainer):
        instrument(trainer, Path(cfg.output_dir) / PROBE_FILE, self.probe)
