"""Dataset stats on the real Brie data (../shared) with the recipes' own tokenizers, checked against an
independent count made here with the HF tokenizer and its chat template."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core import settings
from data.stats import packing_efficiency, padding_efficiency, summarize, tokenize_records
from data.tools.data_check import recipe_dataset
from tests.conftest import SHARED
from tools.tiny_models import llama3_tokenizer_dir

BRIE_VAL = SHARED / "brie" / "sft.val.jsonl"


@pytest.fixture
def brie_val():
    if not BRIE_VAL.is_file():
        pytest.skip(f"../shared is absent ({BRIE_VAL} not found): the Brie data lives only there")
    return BRIE_VAL


def independent_lengths(tokenizer_dir, records, template: str | None) -> list[int]:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    if template:
        from axolotl.utils.chat_templates import get_chat_template

        tok.chat_template = get_chat_template(template)
    return [
        len(tok(tok.apply_chat_template(r["messages"], tokenize=False), add_special_tokens=False)["input_ids"])
        for r in records
    ]


@pytest.mark.slow
@pytest.mark.parametrize("recipe,tokenizer", [("smollm2-135m-cpu", "smollm2"), ("llama32-3b-instruct-brie", "llama3")])
def test_stats_match_an_independent_count(brie_val, recipe, tokenizer, outputs):
    args = "--sequence_len=2048 --micro_batch_size=2"
    if tokenizer == "llama3":
        args += f" --tokenizer_config={llama3_tokenizer_dir()}"
    config, ds = recipe_dataset(recipe, brie_val, "messages", args, settings.load())
    items = tokenize_records(config, ds, brie_val, "messages")
    stats = summarize(items, 2048, 2)

    records = [json.loads(line) for line in brie_val.read_text().splitlines() if line.strip()]
    expected = independent_lengths(config["tokenizer_config"], records, "llama3" if tokenizer == "llama3" else None)
    assert [it["tokens"] for it in items] == expected
    assert stats["records"] == len(records) == 60
    assert (stats["tokens"]["min"], stats["tokens"]["max"]) == (min(expected), max(expected))
    assert stats["tokens"]["median"] == float(np.median(expected))
    assert stats["over_sequence_len"]["count"] == sum(n > 2048 for n in expected)
    kept = [n for n in expected if n <= 2048]
    assert stats["padding_efficiency"]["real_token_share"] == pytest.approx(padding_efficiency(kept, 2))
    assert 0 < stats["trained_token_share"] < 1


def test_packing_and_padding_by_hand():
    assert padding_efficiency([1, 3, 2, 2], 2) == pytest.approx(8 / 10)
    share, rows = packing_efficiency([6, 5, 4, 3, 2], 10)  # axolotl's first fit, in order: [6,4] [5,3,2]
    assert rows == 2 and share == pytest.approx(20 / 20)
    assert packing_efficiency([2, 9, 9, 2], 10) == (22 / 30, 3)  # in order: [2] fills first, 9 and 9 then apart
    assert packing_efficiency([3] * 5, 10, bin_size=2) == (15 / 30, 3)  # axolotl's cap on sequences per row
    assert packing_efficiency([], 10) == (0.0, 0)
    stats = summarize(
        [
            {"line": i + 1, "tokens": n, "trained": n // 2, "record": {"persona": "A" if i else "B"}}
            for i, n in enumerate([5, 12, 7])
        ],
        sequence_len=10,
        micro_batch=2,
    )
    assert stats["over_sequence_len"] == {"count": 1, "lines": [2], "action": "dropped (axolotl's default)"}
    assert stats["groups"] == {"persona": {"B": 1, "A": 2}}
