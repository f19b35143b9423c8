"""Studies: many models compared in one command (make study STUDY=studies/x.yaml).

spec (the study file, typed), job (one run's steps, the same locally and on a pod), state (where a study's
runs live, which are finished: by manifest), local (one run after another on this machine), pods + pod + hub
(RUNPOD=1: one pod per run within MAX_COST, each uploading its results to a private Hub repo, collected
here), progress (the live table), analysis (the statistics over every finished run, eval/stats.py), report +
html (markdown, PNGs and one self-contained page), run (the `make study` CLI)."""
