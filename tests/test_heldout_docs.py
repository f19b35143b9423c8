"""`make eval`'s documents from a held-out split of any SFT type a user config names: conversations under another
field with other role/content keys and role names, sharegpt-style, alpaca, user-defined prompt/answer fields;
a type it cannot take prompts from is one clear error naming the config key."""

from __future__ import annotations

import json

import pytest

from core.errors import UserError, Where
from eval.heldout import docs

WHERE = Where("config.yaml", key="test_datasets[0]")


def write(tmp_path, rows: list[dict]) -> str:
    path = tmp_path / "heldout.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_conversations_under_another_field_with_mapped_keys_and_roles(tmp_path):
    rows = [
        {
            "dialog": [
                {"speaker": "sys", "text": "Be brief."},
                {"speaker": "me", "text": "First?"},
                {"speaker": "bot", "text": "One."},
                {"speaker": "me", "text": "Second?"},
                {"speaker": "bot", "text": "Two."},
            ]
        },
        {"dialog": [{"speaker": "me", "text": "No answer yet"}]},  # nothing to score: left out
    ]
    ds = {
        "path": write(tmp_path, rows),
        "type": "chat_template",
        "field_messages": "dialog",
        "message_property_mappings": {"role": "speaker", "content": "text"},
        "roles": {"user": ["me"], "assistant": ["bot"], "system": ["sys"]},
    }
    got, chat, source = docs(ds, WHERE)
    assert got == [{"prompt": "Second?", "reference": "Two."}] and chat and source == ds["path"]


def test_sharegpt_alpaca_and_user_defined(tmp_path):
    share = {"conversations": [{"from": "human", "value": "Hi?"}, {"from": "gpt", "value": "Hello."}]}
    (tmp_path / "s").mkdir()
    got, chat, _ = docs({"path": write(tmp_path / "s", [share]), "type": "sharegpt"}, WHERE)
    assert got == [{"prompt": "Hi?", "reference": "Hello."}] and chat
    alpaca = {"instruction": "Add", "input": "2 and 3", "output": "5"}
    (tmp_path / "a").mkdir()
    got, chat, _ = docs({"path": write(tmp_path / "a", [alpaca]), "type": "alpaca"}, WHERE)
    assert got == [{"prompt": "Add\n\n2 and 3", "reference": "5"}] and not chat
    user = {"q": "Capital of France?", "a": "Paris"}
    kind = {
        "field_instruction": "q",
        "field_output": "a",
        "format": "Q: {instruction}\nA:",
        "no_input_format": "Q: {instruction}\nA:",
    }
    (tmp_path / "u").mkdir()
    got, chat, _ = docs({"path": write(tmp_path / "u", [user]), "type": kind}, WHERE)
    assert got == [{"prompt": "Q: Capital of France?\nA:", "reference": "Paris"}] and not chat


def test_a_type_without_prompts_is_refused_naming_the_key(tmp_path):
    with pytest.raises(UserError, match="type 'completion'") as err:
        docs({"path": write(tmp_path, [{"text": "just text"}]), "type": "completion"}, WHERE)
    assert err.value.where.key == "test_datasets[0]"
