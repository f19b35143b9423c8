"""Bring your own axolotl config: configs in the shape of axolotl's own examples (tests/fixtures/axolotl: no meta
block, Hub ids, deprecated-but-accepted keys) pass `make check` and `make show` unchanged, their datasets
redirected to local files by ARGS. The base models are tiny random models of seven architectures (five outside
the repo's recipes) served under the configs' ids by a local Hub (tests/hub_files.py), so `make check` really
fetches config.json and the tokenizer through huggingface_hub into the HF cache, derives the meta (family =
config.json model_type) and checks LoRA targets on the module tree and the end of turn with the real tokenizer."""

from __future__ import annotations

import json

import pytest

from core import settings
from core.paths import REPO
from tests.conftest import run_cli
from tests.hub_files import HubFiles

FIXTURES = REPO / "tests" / "fixtures"
DATA = FIXTURES / "data"
# config file -> (model id in it, model_type, tokenizer, extra special tokens, ARGS redirecting its datasets)
CONFIGS = {
    "lora-alpaca-llama.yml": (
        "NousResearch/Llama-3.2-1B",
        "llama",
        "llama3",
        (),
        f"--datasets.0.path={DATA}/alpaca.jsonl",
    ),
    "qlora-sharegpt-qwen3.yml": ("Qwen/Qwen3-1.7B", "qwen3", "smollm2", (), f"--datasets.0.path={DATA}/sharegpt.jsonl"),
    "completion-mistral.yml": (
        "mistralai/Mistral-7B-v0.1",
        "mistral",
        "smollm2",
        (),
        f"--datasets.0.path={DATA}/text.jsonl",
    ),
    "full-gemma2.yml": (
        "google/gemma-2-2b-it",
        "gemma2",
        "smollm2",
        ("<start_of_turn>", "<end_of_turn>"),
        f"--datasets.0.path={REPO}/data/samples/philosophy_chat.train.jsonl",
    ),
    "multi-datasets-phi3.yml": (
        "microsoft/Phi-3-mini-4k-instruct",
        "phi3",
        "smollm2",
        ("<|system|>", "<|user|>", "<|assistant|>", "<|end|>"),
        f"--datasets.0.path={DATA}/alpaca.jsonl --datasets.1.path={DATA}/sharegpt.jsonl "
        "--datasets.1.field_messages=conversations --datasets.1.message_property_mappings.role=from "
        "--datasets.1.message_property_mappings.content=value --datasets.1.split=train",
    ),
    "input-output-olmo2.yml": (
        "allenai/OLMo-2-0425-1B",
        "olmo2",
        "smollm2",
        (),
        f"--datasets.0.path={DATA}/segments.jsonl",
    ),
    "legacy-keys-granite.yml": (
        "ibm-granite/granite-3.1-2b-instruct",
        "granite",
        "smollm2",
        (),
        f"--datasets.0.path={DATA}/dialogs.jsonl",
    ),
}
GATED = "meta-llama/Gated-Tiny"
GATED_TOKEN = "hf_fake-gated-token-for-tests-only"


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    from tools.tiny_models import build

    with HubFiles() as server:
        for name, (model, family, tokenizer, extra, _) in CONFIGS.items():
            folder = build(
                family, tmp_path_factory.mktemp(family), tokenizer, extra_tokens=extra, cache=settings.load().cache
            )
            server.add_model(model, folder)
            if name == "lora-alpaca-llama.yml":
                server.add_model(GATED, folder, gated_token=GATED_TOKEN)
        yield server


def hub_env(hub, home) -> dict:
    return {
        "HF_ENDPOINT": hub.endpoint,
        "HF_HUB_OFFLINE": "0",
        "HF_DATASETS_OFFLINE": "0",
        "HF_HUB_DISABLE_XET": "1",
        "HF_HOME": str(home / "hf"),
        "AFFINAGE_CACHE": str(home / "affinage"),
        "OUTPUTS": str(home / "out"),
    }


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_an_unchanged_axolotl_config_passes_check_and_show(name, hub, tmp_path):
    model, family, _, _, args = CONFIGS[name]
    config = FIXTURES / "axolotl" / name
    env = hub_env(hub, tmp_path)
    check = run_cli("launch.preflight", str(config), f"--args={args}", env=env, timeout=600)
    said = check.stdout + check.stderr
    assert check.returncode == 0 and "OK: 0 errors" in said, said[-4000:]
    assert f"{model}: " in said and "fetched into the HF cache" in said
    assert f"family {family} (config.json model_type)" in said
    if "adapter:" in config.read_text():
        assert "[ok] lora targets:" in said, said[-3000:]
    if "chat_template" in config.read_text():
        assert "[ok] end of turn: assistant turns end with" in said and "tokenized through axolotl" in said, said[
            -3000:
        ]
    # what was fetched is remembered for offline use
    remembered = (tmp_path / "affinage" / "hub_models.yaml").read_text()
    assert model in remembered
    show = run_cli("resolver.show", str(config), f"--args={args}", env=env, timeout=300)
    assert show.returncode == 0 and f"base_model: {model}" in show.stdout, show.stderr[-2000:]


@pytest.mark.slow
def test_a_cache_hit_makes_no_request_and_a_gated_model_needs_its_token(hub, tmp_path):
    name = "lora-alpaca-llama.yml"
    _, _, _, _, args = CONFIGS[name]
    config = str(FIXTURES / "axolotl" / name)
    env = hub_env(hub, tmp_path)
    assert run_cli("launch.preflight", config, f"--args={args}", env=env, timeout=600).returncode == 0
    hub.state.requests.clear()
    again = run_cli("launch.preflight", config, f"--args={args}", env=env, timeout=600)
    assert again.returncode == 0 and "files from the HF cache" in again.stdout, again.stdout[-2000:]
    # every fact came from the cache (bitsandbytes, imported by axolotl, still asks for its kernels when online)
    assert [r for r in hub.state.requests if "kernels-community" not in r] == []

    gated = run_cli("launch.preflight", config, f"--args={args} --base_model={GATED}", env=env, timeout=600)
    assert gated.returncode == 2 and f"the Hub refused access to {GATED}: it is gated" in gated.stdout, gated.stdout[
        -2000:
    ]
    assert "HF_TOKEN" in gated.stdout and "Traceback" not in gated.stdout + gated.stderr
    allowed = run_cli(
        "launch.preflight",
        config,
        f"--args={args} --base_model={GATED}",
        env={**env, "HF_TOKEN": GATED_TOKEN},
        timeout=600,
    )
    assert allowed.returncode == 0, allowed.stdout[-2000:]
    assert GATED_TOKEN not in allowed.stdout + allowed.stderr


@pytest.mark.slow
def test_a_hub_dataset_is_streamed_and_a_bad_row_is_named(hub, tmp_path):
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [
        {"messages": [{"role": "user", "content": f"question {i}"}, {"role": "assistant", "content": f"answer {i}"}]}
        for i in range(1, 6)
    ]
    rows[2]["messages"] = rows[2]["messages"][:1]  # row 3 has no assistant turn
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buf)
    hub.add("datasets", "my-org/chats", {"data/train-00000-of-00001.parquet": buf.getvalue()})
    env = hub_env(hub, tmp_path)
    proc = run_cli(
        "launch.preflight",
        "smollm2-135m-cpu",
        "--args=--datasets.0.path=my-org/chats --test_datasets=null",
        env=env,
        timeout=600,
    )
    said = proc.stdout + proc.stderr
    assert proc.returncode == 2, said[-3000:]
    assert "dataset my-org/chats, split train, row 3: conversation has no assistant turn" in said, said[-3000:]
    assert "1 bad of first 5 rows" in said and "Traceback" not in said
    check = run_cli("data.tools.data_check", "my-org/chats", env={**env, "SPLIT": "train"}, timeout=300)
    assert check.returncode == 2 and "row 3" in check.stdout, check.stdout[-2000:]
    assert json.loads(json.dumps(hub.state.requests))  # the dataset really came from the local Hub
