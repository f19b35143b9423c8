"""Preference data without training: every format axolotl's DPO/ORPO/KTO strategies read is validated row by row
(chosen identical to rejected, an empty side, roles out of order, a side repeating the prompt, each named by
file:line), the seeds' kind of file (prompt as a message list, chosen/rejected strings) passes make check
through axolotl's own strategy, data-check reports per-side statistics and the chosen-longer share, data-convert
round-trips between the formats (the shipped ORPO and KTO samples are exactly its output), and make prefs keeps
only position-consistent verdicts under AGREE=any/all."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core import settings
from core.paths import REPO
from data import preferences as prefs
from data.kinds import kind_of
from tests.conftest import run_cli, write_recipe

SAMPLE = REPO / "data" / "samples" / "preferences.train.jsonl"
U = {"role": "user", "content": "What makes a good question?"}


def jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


BAD = [  # (record, fragment of the reason)
    ({"messages": [U], "chosen": "It opens a door.", "rejected": "It opens a door."}, "identical"),
    ({"messages": [U], "chosen": "  ", "rejected": "Whatever."}, "'chosen' is empty"),
    ({"messages": [U, U], "chosen": "One that invites thought.", "rejected": "No."}, "roles out of order"),
    ({"messages": [{"role": "assistant", "content": "Hi"}], "chosen": "Yes indeed.", "rejected": "No."}, "roles"),
    ({"messages": [U], "chosen": "What makes a good question?", "rejected": "Brevity."}, "repeats the prompt"),
    ({"messages": [U], "chosen": "A fine answer."}, "no 'rejected' field"),
]


def test_each_bad_row_is_named_by_file_and_line(tmp_path):
    good = {"messages": [U], "chosen": "One that the asker cares about.", "rejected": "Any question at all."}
    path = jsonl(tmp_path / "p.jsonl", [good, *[r for r, _ in BAD], good, "{not json"])
    proc = run_cli("data.tools.data_check", str(path), "--recipe", "", env={"OUTPUTS": str(tmp_path / "o")})
    said = proc.stdout + proc.stderr
    assert proc.returncode == 2 and "Traceback" not in said, said
    for line, (_, reason) in enumerate(BAD, 2):
        assert f"p.jsonl:{line}: " in said and reason in said.split(f"p.jsonl:{line}: ")[1].splitlines()[0], reason
    assert f"p.jsonl:{len(BAD) + 2}: duplicate of line 1" in said
    assert f"p.jsonl:{len(BAD) + 3}: " in said  # the unreadable line


def test_validators_follow_each_axolotl_strategy():
    pair = {"prompt": "Name a colour.", "chosen": "Teal.", "rejected": "Seven."}
    assert kind_of({"type": "chatml.prompt_pairs"}, "dpo").check(pair) is None
    assert "no 'question' field" in kind_of({"type": "chatml.intel"}, "dpo").check(pair)
    assert kind_of({}, "dpo").check(pair) is None  # no type: the rows already hold prompt/chosen/rejected
    custom = {"type": {"field_prompt": "q", "field_chosen": "good", "field_rejected": "bad"}}
    assert (
        kind_of(custom, "dpo")
        .check({"q": "Name a colour.", "good": "Teal.", "bad": "Teal."})
        .startswith("chosen is identical")
    )
    seed = {"prompt": [U], "chosen": "One you want answered.", "rejected": "Any."}
    assert kind_of({"type": "chat_template.default", "field_messages": "prompt"}, "dpo").check(seed) is None
    orpo = kind_of({"type": "chat_template.argilla"}, "orpo")
    as_chat = prefs.write(prefs.read(seed, "pairs"), "pairs-chat")[0]
    assert orpo.check(as_chat) is None
    with_system = {**as_chat, "chosen": [{"role": "system", "content": "Be kind."}, *as_chat["chosen"]]}
    assert "put a system prompt in a 'system' field" in orpo.check(with_system)
    assert kind_of({"type": "chat_template.default"}, "orpo").error  # ORPO reads chat_template.argilla only
    kto = kind_of({"type": "chatml.prompt_pairs"}, "kto")
    assert kto.check({"prompt": "Name a colour.", "completion": "Teal.", "label": True}) is None
    assert "'label' must be true" in kto.check({"prompt": "Name a colour.", "completion": "Teal.", "label": "yes"})
    assert kind_of({"type": "alpaca"}, "dpo").error and kind_of({"type": "chat_template.default"}, None).error


def test_convert_round_trips_and_the_shipped_samples_are_its_output(tmp_path):
    for to, shipped in (("pairs-chat", "preferences.train.pairs-chat.jsonl"), ("kto", "preferences.train.kto.jsonl")):
        out = tmp_path / f"{to}.jsonl"
        proc = run_cli("data.tools.convert", str(SAMPLE), "--to", to, "--out", str(out))
        assert proc.returncode == 0, proc.stderr
        assert out.read_text() == (SAMPLE.parent / shipped).read_text(), f"regenerate {shipped} with make data-convert"
    back = tmp_path / "back.jsonl"
    assert (
        run_cli(
            "data.tools.convert", str(tmp_path / "kto.jsonl"), "--to", "pairs-messages", "--out", str(back)
        ).returncode
        == 0
    )
    assert back.read_text() == SAMPLE.read_text()
    # a desirable completion with no undesirable partner cannot become a pair: named, nothing written
    lone = jsonl(tmp_path / "lone.jsonl", [{"prompt": "Hi there", "completion": "Hello!", "label": True}])
    proc = run_cli("data.tools.convert", str(lone), "--to", "pairs", "--out", str(tmp_path / "x.jsonl"))
    assert proc.returncode == 2 and "lone.jsonl:1: no completion of the opposite label" in proc.stderr + proc.stdout
    assert not (tmp_path / "x.jsonl").exists()


def test_data_check_reports_per_side_statistics_and_length_bias(tmp_path):
    proc = run_cli("data.tools.data_check", str(SAMPLE), env={"OUTPUTS": str(tmp_path)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    stats = json.loads((tmp_path / "data" / "preferences.train" / "stats.json").read_text())
    chars = stats["stats"]["characters"]
    assert chars["pairs"] == 30 and 0.3 <= chars["chosen_longer_share"] <= 0.7  # the sample is balanced on purpose
    assert stats["stats"]["tokens"]["chosen"]["n"] == 30 and stats["length_bias"] is None
    biased = [
        {"messages": [U], "chosen": f"A long and careful answer number {i}.", "rejected": "No."} for i in range(10)
    ]
    proc = run_cli("data.tools.data_check", str(jsonl(tmp_path / "b.jsonl", biased)), env={"OUTPUTS": str(tmp_path)})
    assert "the chosen side is the longer one in 100% of pairs" in proc.stdout


@pytest.fixture
def seed_recipe(tmp_path):
    """The seeds' preference file shape: the prompt as a message list under 'prompt', chosen/rejected strings."""
    rows = [
        {
            "prompt": [
                {"role": "system", "content": "You are Brie."},
                {"role": "user", "content": r["messages"][0]["content"]},
            ],
            "chosen": r["chosen"],
            "rejected": r["rejected"],
        }
        for r in map(json.loads, SAMPLE.read_text().splitlines())
    ]
    data = jsonl(tmp_path / "seed_prefs.jsonl", rows)
    body = (
        f"rl: dpo\nsample_packing: false\ndatasets:\n  - path: {data}\n    type: chat_template.default\n"
        "    field_messages: prompt\n    field_chosen: chosen\n    field_rejected: rejected\ntest_datasets: null\n"
    )
    return write_recipe(tmp_path / "seed-dpo.yaml", body)


def test_the_seed_preference_format_passes_make_check(seed_recipe, roomy_disk):
    from launch.preflight.checks import errors_of, run_checks

    _, findings = run_checks(str(seed_recipe), settings.load())
    text = "\n".join(map(str, findings))
    assert not errors_of(findings), text
    assert "30 records of type chat_template.default, all valid" in text
    assert "chosen and rejected end with '<|im_end|>', trained (rendered through axolotl)" in text
    assert "reference model: adapter-disabled policy (no second copy)" in text


def test_preference_config_mistakes_are_errors(tmp_path, roomy_disk, monkeypatch):
    from launch.preflight.checks import errors_of, run_checks

    monkeypatch.setenv("DEVICE", "gpu")  # checked as the GPU run (the CPU profile turns packing off itself)

    data = REPO / "data/samples/preferences.train.kto.jsonl"
    body = (
        f"rl: kto\nmicro_batch_size: 1\nsample_packing: true\ndatasets:\n  - path: {data}\n"
        "    type: llama3.prompt_pairs\n    field_chossen: x\ntest_datasets: null\n"
    )
    errors = "\n".join(
        map(str, errors_of(run_checks(str(write_recipe(tmp_path / "k.yaml", body)), settings.load())[1]))
    )
    assert "KTO's KL term needs at least 2 completions per batch" in errors
    assert "KTO needs remove_unused_columns: false" in errors and "sample_packing cannot be used with rl: kto" in errors
    assert "axolotl does not know the key 'datasets[0].field_chossen'" not in errors  # KTO rows: a warning only
    # a Llama 3 strategy on SmolLM2's ChatML model: prompts in a format the model is never prompted with (rendered
    # through axolotl: a heavy check, which runs once the config's cheap mistakes above are fixed)
    fixed = body.replace("micro_batch_size: 1\nsample_packing: true", "micro_batch_size: 2\nsample_packing: false")
    fixed += "remove_unused_columns: false\n"
    errors = "\n".join(
        map(str, errors_of(run_checks(str(write_recipe(tmp_path / "k2.yaml", fixed)), settings.load())[1]))
    )
    assert "KTO" not in errors and "not this model's assistant header '<|im_start|>assistant'" in errors, errors
    simpo = "rl: simpo\nsample_packing: false\n" + (REPO / "recipes/fragments/data/preferences.yaml").read_text()
    errors = "\n".join(
        map(str, errors_of(run_checks(str(write_recipe(tmp_path / "s.yaml", simpo)), settings.load())[1]))
    )
    assert "rl: simpo needs simpo_gamma" in errors


def test_prefs_keeps_only_position_consistent_pairs():
    from eval.prefs import consistent, decide

    both_c, both_b = {"CB": "candidate", "BC": "candidate"}, {"CB": "baseline", "BC": "baseline"}
    flip, tie = {"CB": "candidate", "BC": "baseline"}, {"CB": "tie", "BC": "tie"}
    assert consistent(both_c) == "candidate" and consistent(both_b) == "baseline"
    assert consistent(flip) is None and consistent(tie) is None and consistent({"CB": "candidate"}) is None
    judges = {
        "a": {"x": both_c, "y": flip, "z": both_c, "w": tie},
        "b": {"x": both_c, "y": both_c, "z": both_b, "w": tie},
    }
    assert decide("x", judges, "all") == ("candidate", "kept")
    assert decide("y", judges, "any") == ("candidate", "kept")
    assert decide("y", judges, "all") == (None, "not every judge position-consistent")
    assert decide("z", judges, "any") == (None, "judges disagree")
    assert decide("w", judges, "any") == (None, "tie or invalid")
    assert decide("y", {"a": judges["a"]}, "any") == (None, "position-inconsistent")
