"""Both sides of a preference pair end with the assistant's answer: axolotl trains chosen[-1] (and rejected[-1], and
KTO's completion[-1]) as the answer whatever its role, so a side given as messages whose last turn is the user's
teaches the model to speak as the user. Checked for every preference format the repo reads (data/preferences.py)
and every axolotl strategy it validates (data/preference_kinds.py), by make check's validators and by make
data-check, each bad row named by file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from data import preferences as prefs
from data.kinds import kind_of
from tests.conftest import run_cli

Q = "Which cheese goes with pears?"
USER = {"role": "user", "content": "And with apples?"}
A_GOOD = {"role": "assistant", "content": "A ripe Comté."}
A_BAD = {"role": "assistant", "content": "Any cheese at all."}


def conv(answer: dict) -> list[dict]:
    return [{"role": "user", "content": Q}, answer]


# (format, a good record, a field, what replaces that field so its last message is a user turn)
FORMATS = [
    ("pairs", {"prompt": Q, "chosen": "A ripe Comté.", "rejected": "Any."}, "chosen", [A_GOOD, USER]),
    ("pairs", {"prompt": Q, "chosen": "A ripe Comté.", "rejected": "Any."}, "rejected", USER),
    ("pairs-messages", {"messages": conv(A_GOOD)[:1], "chosen": A_GOOD, "rejected": A_BAD}, "chosen", USER),
    ("pairs-messages", {"messages": conv(A_GOOD)[:1], "chosen": [A_GOOD], "rejected": [A_BAD]}, "rejected", [USER]),
    ("pairs-chat", {"chosen": conv(A_GOOD), "rejected": conv(A_BAD)}, "chosen", [*conv(A_GOOD), USER]),
    ("pairs-chat", {"chosen": conv(A_GOOD), "rejected": conv(A_BAD)}, "rejected", [*conv(A_BAD), USER]),
    ("kto", {"prompt": Q, "completion": "A ripe Comté.", "label": True}, "completion", [A_GOOD, USER]),
]


@pytest.mark.parametrize("fmt, good, field, bad", FORMATS)
def test_every_format_refuses_a_side_that_ends_with_a_user_turn(fmt, good, field, bad):
    assert prefs.check(good, fmt) is None
    reason = prefs.check({**good, field: bad}, fmt)
    assert reason is not None and f"'{field}' ends with a 'user' turn" in reason and "assistant" in reason, reason


# (dataset entry, rl, a good record, the field whose last message becomes a user turn)
KINDS = [
    ({"type": "chatml.ultra"}, "dpo", {"prompt": Q, "chosen": conv(A_GOOD), "rejected": conv(A_BAD)}, "chosen"),
    ({"type": "llama3.ultra"}, "dpo", {"prompt": Q, "chosen": conv(A_GOOD), "rejected": conv(A_BAD)}, "rejected"),
    ({"type": "chatml.prompt_pairs"}, "dpo", {"prompt": Q, "chosen": [A_GOOD], "rejected": [A_BAD]}, "chosen"),
    ({"type": "chatml.intel"}, "ipo", {"question": Q, "chosen": [A_GOOD], "rejected": "Any."}, "chosen"),
    ({"type": "llama3.icr"}, "dpo", {"input": Q, "chosen": "Comté.", "rejected": [A_BAD]}, "rejected"),
    ({"type": "chatml"}, "dpo", {"instruction": Q, "chosen_response": [A_GOOD], "rejected": "No."}, "chosen_response"),
    ({}, "simpo", {"prompt": Q, "chosen": [A_GOOD], "rejected": [A_BAD]}, "rejected"),  # passthrough
    (
        {"type": {"field_prompt": "q", "field_chosen": "good", "field_rejected": "bad"}},
        "dpo",
        {"q": Q, "good": [A_GOOD], "bad": [A_BAD]},
        "good",
    ),
    (
        {"type": "chat_template.default", "field_messages": "prompt"},
        "dpo",
        {"prompt": conv(A_GOOD)[:1], "chosen": A_GOOD, "rejected": A_BAD},
        "chosen",
    ),
    (  # ShareGPT-style messages: the role and content under other names, roles renamed
        {
            "type": "chat_template.default",
            "field_chosen": "win",
            "field_rejected": "lose",
            "message_property_mappings": {"role": "from", "content": "value"},
            "roles": {"user": ["human"], "assistant": ["gpt"]},
        },
        "dpo",
        {
            "messages": [{"from": "human", "value": Q}],
            "win": [{"from": "gpt", "value": "A ripe Comté."}],
            "lose": {"from": "gpt", "value": "Any."},
        },
        "lose",
    ),
    ({"type": "chat_template.argilla_chat"}, "dpo", {"chosen": conv(A_GOOD), "rejected": conv(A_BAD)}, "rejected"),
    ({"type": "chatml.argilla_chat"}, "dpo", {"chosen": conv(A_GOOD), "rejected": conv(A_BAD)}, "chosen"),
    ({"type": "chat_template.argilla"}, "orpo", {"chosen": conv(A_GOOD), "rejected": conv(A_BAD)}, "chosen"),
    ({}, "kto", {"prompt": Q, "completion": [A_GOOD], "label": True}, "completion"),
    ({"type": "chatml.prompt_pairs"}, "kto", {"prompt": Q, "completion": A_GOOD, "label": False}, "completion"),
    ({"type": "llama3.argilla_chat"}, "kto", {"completion": conv(A_GOOD), "label": True}, "completion"),
]


def user_ending(record: dict, field: str) -> dict:
    """The record with `field`'s last message turned into a user turn (in the record's own field names)."""
    value = record[field]
    if isinstance(value, str):
        return {**record, field: [USER]}
    last = value[-1] if isinstance(value, list) else value
    turned = {k: ("human" if v in ("gpt", "assistant") else "And with apples?") for k, v in last.items()}
    if "role" in last:
        turned = {"role": "user", "content": "And with apples?"}
    return {**record, field: [*value[:-1], turned] if isinstance(value, list) else turned}


@pytest.mark.parametrize("ds, rl, good, field", KINDS, ids=[f"{rl}-{ds.get('type') or 'none'}" for ds, rl, *_ in KINDS])
def test_every_strategy_refuses_a_side_that_ends_with_a_user_turn(ds, rl, good, field):
    kind = kind_of(ds, rl=rl)
    assert kind.error is None and kind.check is not None, kind
    assert kind.check(good) is None
    reason = kind.check(user_ending(good, field))
    assert reason is not None and "ends with a 'user' turn" in reason and "assistant" in reason, reason


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.parametrize("fmt, good, field, bad", [FORMATS[0], FORMATS[3], FORMATS[4], FORMATS[6]])
def test_data_check_names_the_file_and_line_of_a_side_ending_with_a_user_turn(fmt, good, field, bad, tmp_path):
    other = json.loads(json.dumps(good, ensure_ascii=False).replace("Comté", "Brie de Meaux"))
    path = write_jsonl(tmp_path / f"{fmt}.jsonl", [good, other, {**good, field: bad}])
    proc = run_cli("data.tools.data_check", str(path), "--recipe", "", env={"OUTPUTS": str(tmp_path / "o")})
    said = proc.stdout + proc.stderr
    assert proc.returncode == 2 and "Traceback" not in said, said[-2000:]
    assert f"{path}:3: '{field}' ends with a 'user' turn" in said, said[-2000:]
    assert f"{path}:1:" not in said and f"{path}:2:" not in said


def test_data_check_reads_a_json_array_of_pairs_as_pairs(tmp_path):
    good = {"messages": conv(A_GOOD)[:1], "chosen": "A ripe Comté.", "rejected": "Any."}
    path = tmp_path / "pairs.json"
    path.write_text(json.dumps([good, {**good, "chosen": [A_GOOD, USER]}]))
    proc = run_cli("data.tools.data_check", str(path), "--recipe", "", env={"OUTPUTS": str(tmp_path / "o")})
    said = proc.stdout + proc.stderr
    assert proc.returncode == 2 and "Traceback" not in said, said[-2000:]
    assert "'chosen' ends with a 'user' turn" in said and "(pairs-messages)" in said, said[-2000:]
