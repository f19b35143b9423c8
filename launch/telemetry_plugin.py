"""The axolotl plugin half of launch/telemetry.py, added by the launcher to every run (launch/execute.py): the RSS
sampler and the GPU peak start when the config is registered (before the model loads, so loading counts), the
batches and steps are counted on the Trainer axolotl builds, and the record is written into the output folder at
the end of training, where the launcher reads it into the manifest (launch/telemetry_record.py)."""

from __future__ import annotations

from pathlib import Path

from axolotl.integrations.base import BasePlugin

from launch.telemetry import TELEMETRY_FILE, Probe, instrument


class TelemetryPlugin(BasePlugin):
    probe: Probe | None = None

    def register(self, cfg):
        if self.probe is None:  # axolotl may prepare the plugins more than once in a process
            self.probe = Probe(Path(cfg["output_dir"]) / TELEMETRY_FILE)

    def post_trainer_create(self, cfg, trainer):
        if self.probe is None:  # a plugin manager that skipped register: start here
            self.probe = Probe(Path(cfg.output_dir) / TELEMETRY_FILE)
        instrument(trainer, self.probe)
