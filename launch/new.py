"""`make new RECIPE=mine MODEL=org/Some-Model DATA=<file or org/dataset> [METHOD=lora|qlora|full] [HELDOUT=<file>]`:
write a small recipe (recipes/<name>.yaml) from the model's own files and the data's first records: the chat
template and its end of turn from the tokenizer, LoRA targets from the module tree (every Linear of the language
model but the head and the routers), the dataset entry in axolotl's keys for the format found, and the GPU the
plan suggests; then run `make check` on it."""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import Any

from core import cli
from core.errors import UserError, Where
from core.paths import FRAGMENTS, RECIPES, repo_relative
from core.settings import Settings
from core.yamlio import dump
from data import sources
from data.entries import dataset_file
from resolver import architecture, facts
from resolver.turns import terminator

METHODS = ("lora", "qlora", "full")
# the seeds' trainer settings (Brie cards): 2 epochs, 2 x 4, lr 2e-4 linear, warmup 20, max length 2048
TRAINING = {
    "sequence_len": 2048,
    "micro_batch_size": 2,
    "gradient_accumulation_steps": 4,
    "num_epochs": 2,
    "learning_rate": 2.0e-4,
    "lr_scheduler": "linear",
    "warmup_steps": 20,
    "logging_steps": 10,
    "eval_steps": 50,
    "save_steps": 100,
}
FAST_PATH = {
    "bf16": "auto",
    "tf32": True,
    "attn_implementation": "flash_attention_2",
    "sample_packing": True,
    "eval_sample_packing": False,
    "pad_to_sequence_len": True,
    "gradient_checkpointing": True,
}


def dataset_entry(data: str, rows: list[Any]) -> dict[str, Any]:
    """axolotl's dataset entry for what the first records look like."""
    first = next((r.record for r in rows if r.error is None and isinstance(r.record, dict)), None)
    if first is None:
        raise UserError("no readable record in the data", Where(data), "make data-check DATA=<file> says why")
    entry: dict[str, Any] = {"path": data}
    for field in ("messages", "conversations", "conversation"):
        turns = first.get(field)
        if isinstance(turns, list) and turns and isinstance(turns[0], dict):
            entry.update(type="chat_template", field_messages=field, roles_to_train=["assistant"], train_on_eos="turn")
            if "from" in turns[0] and "value" in turns[0]:
                entry["message_property_mappings"] = {"role": "from", "content": "value"}
            return entry
    if "prompt" in first and "completion" in first:
        entry["type"] = {
            "field_instruction": "prompt",
            "field_output": "completion",
            "format": "{instruction}\n",
            "no_input_format": "{instruction}\n",
        }
    elif "instruction" in first and "output" in first:
        entry["type"] = "alpaca"
    elif "segments" in first:
        entry["type"] = "input_output"
    elif "text" in first:
        entry["type"] = "completion"
    else:
        raise UserError(
            f"cannot tell the data's format from its fields ({', '.join(sorted(first))})",
            Where(data),
            "messages/conversations, prompt+completion, instruction+output, segments or text are understood",
        )
    return entry


def lora_targets(model: str, cache: Path) -> list[str]:
    """The language model's Linear names, without the head and without routers (outputs far narrower than the
    hidden size: a mixture-of-experts gate picks experts, it does not transform the hidden state)."""
    tree = architecture.tree(model, cache=cache)
    hidden = tree.text["hidden_size"] or 1
    narrow = {lin.name.split(".")[-1] for lin in tree.linears if lin.out_features < max(hidden // 8, 2)}
    return [n for n in architecture.language_linear_names(model, cache=cache) if n not in narrow]


def build(
    name: str, model: str, data: str, method: str, val: str | None, template: str | None, s: Settings
) -> dict[str, Any]:
    if method not in METHODS:
        raise UserError(f"METHOD must be one of {', '.join(METHODS)}, not '{method}'", Where(key="METHOD"))
    for key, path in (("DATA", data), ("HELDOUT", val)):
        if path and sources.is_local({"path": path}) and not dataset_file({"path": path}).is_file():
            raise UserError("dataset file not found", Where(dataset_file({"path": path}), key=key))
    f = facts.get(model, s, fetch_if_missing=True)
    if f is None or f.folder is None:
        raise UserError(
            f"{model}'s config and tokenizer are not available here", Where(key="MODEL"), facts.fetch_hint(model)
        )
    rows = list(sources.rows({"path": data}, limit=20))
    entry = dataset_entry(data, rows)
    recipe: dict[str, Any] = {"base_model": model}
    if entry["type"] == "chat_template":
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(f.folder)
        if template is None and not tokenizer.chat_template:
            raise UserError(
                f"{model}'s tokenizer has no chat template and the data is conversations",
                Where(key="TEMPLATE"),
                "pass TEMPLATE=<one of axolotl's named templates, e.g. chatml or llama3>",
            )
        recipe["chat_template"] = template or "tokenizer_default"
        from resolver.turns import named_template

        end = terminator(tokenizer, named_template(recipe["chat_template"], {}, tokenizer))
        if end and end != tokenizer.eos_token:
            recipe["eot_tokens"] = [end]  # the turn terminator is not the eos: train it explicitly
    if method != "full":
        recipe.update(lora_r=16, lora_alpha=32, lora_target_modules=lora_targets(model, s.cache))
    recipe["datasets"] = [entry]
    if val:
        recipe["test_datasets"] = [{**entry, "path": val, "split": "train"}]
    recipe.update(TRAINING, **FAST_PATH)
    gpu, count = suggest(recipe, model, s)
    recipe["meta"] = {
        "description": f"{name}: {model} ({method}) on {Path(data).name}",
        "gpu": {"type": gpu, "count": count},
    }
    return recipe


def suggest(recipe: dict[str, Any], model: str, s: Settings) -> tuple[str, int]:
    from launch.preflight import estimate
    from launch.preflight.plan import suggest_gpu

    table = estimate.gpu_table(s.gpu_table)["gpus"]
    return suggest_gpu(estimate.model_facts(recipe, model, s.cache), recipe, table)


def refuse_existing(path: Path, force: bool) -> None:
    if path.exists() and not force:
        raise UserError(
            "the recipe exists already", Where(path), "choose another RECIPE= name, or FORCE=1 to replace it"
        )


def write(path: Path, recipe: dict[str, Any], method: str, argv: str, force: bool) -> None:
    refuse_existing(path, force)
    fragments = [FRAGMENTS / "base.yaml", FRAGMENTS / "method" / f"{method}.yaml"]
    recipe = {"extends": [os.path.relpath(f, path.parent.resolve()) for f in fragments], **recipe}
    header = (
        f"# Written by `{argv}`: edit freely (make check RECIPE={path.stem} checks it).\n"
        "# Derived from the model's own files: the chat template and its end of turn, the LoRA targets; the GPU\n"
        "# is make plan's suggestion. Training settings are the Brie seed's (2 epochs, 2 x 4, lr 2e-4).\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + dump(recipe), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args(argv)

    def body(s: Settings) -> int:
        if not s.recipe or not s.model or not s.data:
            raise UserError(
                "make new needs RECIPE=<new name>, MODEL=<hub id or folder> and DATA=<file or dataset>",
                Where(key="RECIPE" if not s.recipe else "MODEL" if not s.model else "DATA"),
            )
        if not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", s.recipe):
            raise UserError(
                f"RECIPE '{s.recipe}' is not a recipe name (lower-case letters, digits, . _ -)", Where(key="RECIPE")
            )
        path = Path(s.out).expanduser() if s.out else RECIPES / f"{s.recipe}.yaml"
        method = s.method or "lora"
        refuse_existing(path, s.force)  # before the model's files are read
        recipe = build(s.recipe, s.model, s.data, method, s.heldout, s.template, s)
        write(path, recipe, method, f"make new RECIPE={s.recipe} MODEL={s.model} DATA={s.data}", s.force)
        print(f"wrote {repo_relative(path)}; checking it:")
        from launch.preflight.__main__ import check

        return check(str(path), s, s.args)

    return cli.main(body)


if __name__ == "__main__":
    sys.exit(main())
