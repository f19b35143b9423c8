"""No network behaves exactly like HF_HUB_OFFLINE=1: with the Hub unreachable (the Hub fake stopped: a port on
127.0.0.1 where nothing listens) and HF_HUB_OFFLINE unset, one short probe finds it, and make check of a config
naming a model that is not here prints what it prints offline (the warning naming the command that fetches the
facts), never a library's internal error."""

from __future__ import annotations

import re

from resolver import facts
from tests.conftest import run_cli
from tests.hub_server import LocalHub, stopped_endpoint

MODEL = "google/gemma-3-27b-it"  # in no facts table, in no cache here


def test_the_probe_tells_a_listening_hub_from_a_stopped_one():
    with LocalHub() as hub:
        assert facts.reachable(hub.endpoint)  # any answer (here a 404 for /) counts
    assert not facts.reachable(stopped_endpoint())


def test_make_check_with_no_network_says_what_it_says_offline(tmp_path):
    dead = stopped_endpoint()
    env = {"HF_HOME": str(tmp_path / "hf"), "AFFINAGE_CACHE": str(tmp_path / "cache"), "OUTPUTS": str(tmp_path)}
    argv = ("launch.preflight", "smollm2-135m-cpu", f"--args=--base_model={MODEL}")
    offline = run_cli(*argv, env={**env, "HF_HUB_OFFLINE": "1"}, timeout=600)
    cut = run_cli(*argv, env={**env, "HF_HUB_OFFLINE": "0", "HF_ENDPOINT": dead}, timeout=600)
    said = cut.stdout + cut.stderr
    assert "Traceback" not in said and "RuntimeError" not in said and "client has been closed" not in said, said
    assert "ConnectError" not in said and "Connection refused" not in said, said[-3000:]
    model = next(x for x in cut.stdout.splitlines() if x.startswith("[warning] model:"))
    assert f"no facts for {MODEL} here" in model and f"the Hub ({dead}) cannot be reached" in model, model
    assert f"hint: run make check with network access once (it fetches {MODEL}'s config" in cut.stdout
    assert cut.returncode == offline.returncode == 0, offline.stdout[-3000:]

    def same(text: str) -> str:
        return re.sub(r"[\d.]+ GB free", "N GB free", text.replace(f"the Hub ({dead}) cannot be reached", "OFF"))

    assert same(cut.stdout) == same(offline.stdout.replace("HF_HUB_OFFLINE=1", "OFF"))
