"""Experiment tracking through axolotl's own keys: W&B (offline mode here) and MLflow (a local file store) are off
unless the config asks, and then they really log the run's metrics; their keys come from the environment only and
never reach a file the run writes, the tracker's own files, or the output (the secrets scan of tests/test_secrets.py
applied to them)."""

from __future__ import annotations

import pytest

from core import manifest, rundir, settings
from tests.conftest import SMOKE, run_cli
from tests.test_secrets import files_under

WANDB_KEY = "wandbfaketestkey0123456789abcdef01234567"
MLFLOW_TOKEN = "mlflow-fake-token-for-tests-0123456789"


@pytest.mark.slow
def test_wandb_and_mlflow_log_through_axolotl_keys_and_keys_stay_in_the_environment(tmp_path, monkeypatch):
    store = tmp_path / "mlruns"
    args = (
        f"{SMOKE} --wandb_project=affinage-test --wandb_mode=offline --mlflow_tracking_uri=file://{store} "
        "--mlflow_experiment_name=affinage-test"
    )
    env = {
        "OUTPUTS": str(tmp_path / "out"),
        "WANDB_API_KEY": WANDB_KEY,
        "MLFLOW_TRACKING_TOKEN": MLFLOW_TOKEN,
        "WANDB_MODE": "offline",
        "MLFLOW_ALLOW_FILE_STORE": "true",
    }  # a local file store: the test's choice
    proc = run_cli("launch.train", "smollm2-135m-cpu", f"--args={args}", env=env, timeout=900)
    said = proc.stdout + proc.stderr
    assert proc.returncode == 0, said[-3000:]
    assert "logging to W&B project affinage-test, MLflow file://" in said
    monkeypatch.setenv("OUTPUTS", env["OUTPUTS"])
    run = rundir.latest_run(settings.load().outputs, "smollm2-135m-cpu")
    assert manifest.read(run).status == "completed"
    wandb_runs = list((run / "logs" / "wandb").glob("offline-run-*/run-*.wandb"))
    assert wandb_runs and wandb_runs[0].stat().st_size > 0  # W&B logged, into the run directory
    losses = [p for p in store.rglob("metrics/*") if p.is_file() and p.name.endswith("loss")]
    losses += [p for p in store.rglob("metrics/train/*") if p.is_file() and p.name == "loss"]
    assert losses and losses[0].read_text().strip()  # MLflow logged the loss
    files = files_under(run, store)
    assert len(files) > 10  # the scan reads something: the run, W&B's and MLflow's own files
    leaks = [
        f"{key[:6]}... in {p}" for p in files for key in (WANDB_KEY, MLFLOW_TOKEN) if key.encode() in p.read_bytes()
    ]
    leaks += [f"{key[:6]}... in the output" for key in (WANDB_KEY, MLFLOW_TOKEN) if key in said]
    assert not leaks, leaks


@pytest.mark.slow
def test_no_tracker_unless_the_config_asks(tmp_path, monkeypatch):
    env = {"OUTPUTS": str(tmp_path / "out"), "WANDB_API_KEY": WANDB_KEY}
    proc = run_cli("launch.preflight", "smollm2-135m-cpu", env=env, timeout=600)
    # the recipes log to TensorBoard (a local file); W&B and MLflow stay off although a W&B key is in the environment
    assert proc.returncode == 0 and "[ok] tracking: logging to TensorBoard (output/runs)\n" in proc.stdout, proc.stdout[
        -2000:
    ]
    bad = run_cli("launch.preflight", "smollm2-135m-cpu", "--args=--comet_api_key=abc", env=env, timeout=600)
    assert bad.returncode == 2 and "'comet_api_key' holds a credential in the config file" in bad.stdout
