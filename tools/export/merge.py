"""`make merge RUN=... | RECIPE=...`: adapter + base -> merged model in <run>/merged, verified.

peft does the merge. Verified, not trusted: every LoRA-targeted weight must change (a merge that applies
LoRA to 0 tensors exits 0 elsewhere: axolotl's default merge on Gemma3ForConditionalGeneration does),
merged logits must equal peft's unmerged logits, and non-LoRA tensors (a vision tower) must survive.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

from core import atomic, cli, manifest, rundir
from core.errors import UserError, Where
from core.hashing import sha256_file
from core.manifest import MergeSection
from core.settings import Settings

PROBE = [{"role": "user", "content": "Describe the sound of rain in one sentence."}]
TOLERANCE = {"float32": 1e-3, "bfloat16": 0.15, "float16": 0.05}  # torch dtype name -> max logits difference


def run_dtype(run: Path) -> str:
    """The dtype training used (the run's resolved config), so the merge is not silently up/down-cast."""
    cfg = yaml.safe_load((run / "config.yaml").read_text()) or {}
    if cfg.get("bf16") in (True, "auto", "true"):
        return "bfloat16"
    if cfg.get("fp16") in (True, "true"):
        return "float16"
    return "float32"


def load_base(base: str, dtype: str):
    """Load the base with its own class from config.json (Gemma3ForConditionalGeneration keeps its vision tower)."""
    import torch
    import transformers
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(base)
    arch = (config.architectures or [None])[0]
    cls = getattr(transformers, arch, None) if arch else None
    return (cls or AutoModelForCausalLM).from_pretrained(base, dtype=getattr(torch, dtype))


def _checksums(model) -> dict[str, float]:
    return {n: p.detach().double().abs().sum().item() for n, p in model.state_dict().items()}


def _probe_logits(model, tokenizer):
    import torch

    if tokenizer.chat_template:
        enc = tokenizer.apply_chat_template(PROBE, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    else:
        enc = tokenizer(PROBE[0]["content"], return_tensors="pt")
    with torch.no_grad():
        return model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits.float()


def merge(run: Path, log=print) -> MergeSection:
    m = manifest.read(run)
    adapter = rundir.final_adapter(run)
    if not (adapter / "adapter_config.json").is_file():
        raise UserError(
            "the run's final checkpoint is not a LoRA adapter (nothing to merge)",
            Where(adapter),
            "full fine-tunes are already complete models",
        )
    if m.train.base_model is None:
        raise UserError("the manifest names no base model", Where(run / manifest.MANIFEST, key="train.base_model"))
    base = m.train.base_model.path
    dtype = run_dtype(run)
    from peft import PeftConfig, PeftModel  # the run is what a merge needs: now the libraries
    from transformers import AutoTokenizer

    peft_cfg = PeftConfig.from_pretrained(adapter)
    tokenizer = AutoTokenizer.from_pretrained(adapter if (adapter / "tokenizer_config.json").is_file() else base)
    log(f"merging {adapter} into {base} ({dtype})")
    model = load_base(base, dtype)
    vocab = model.get_input_embeddings().weight.shape[0]
    if len(tokenizer) > vocab:
        if peft_cfg.modules_to_save is None and not getattr(peft_cfg, "trainable_token_indices", None):
            raise UserError(
                f"the tokenizer has {len(tokenizer)} tokens but the base has {vocab} and the adapter "
                "trained no embeddings: the new tokens would be random",
                Where(adapter / "adapter_config.json"),
                "train with the new tokens' embeddings (lora_modules_to_save: [embed_tokens, lm_head])",
            )
        model.resize_token_embeddings(len(tokenizer))
    before = _checksums(model)
    peft_model = PeftModel.from_pretrained(model, adapter)
    lora_modules = [n for n, m in peft_model.named_modules() if hasattr(m, "lora_A") and len(getattr(m, "lora_A", {}))]
    unmerged_logits = _probe_logits(peft_model, tokenizer)
    merged = peft_model.merge_and_unload()
    after = _checksums(merged)
    changed = sorted(n for n in before if n in after and before[n] != after[n])
    missing = sorted(set(before) - set(after))
    if not lora_modules or len([n for n in changed if n.endswith(".weight")]) < len(lora_modules):
        raise UserError(
            f"merge changed {len(changed)} tensors but the adapter has {len(lora_modules)} LoRA modules",
            Where(adapter),
            "the adapter's target names do not match this base model",
        )
    if missing:
        raise UserError(f"merge lost {len(missing)} tensors of the base (e.g. {missing[0]})", Where(adapter))
    diff = (unmerged_logits - _probe_logits(merged, tokenizer)).abs().max().item()
    if diff > TOLERANCE[dtype]:
        raise UserError(f"merged logits differ from the adapter's by {diff:.4g} (> {TOLERANCE[dtype]})", Where(adapter))
    eos_id = tokenizer.eos_token_id
    merged.generation_config.eos_token_id = eos_id
    merged.generation_config.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos_id
    merged.config.eos_token_id = eos_id
    target = run / "merged"
    with atomic.folder(target) as tmp:
        merged.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        for extra in ("processor_config.json", "preprocessor_config.json"):
            if (Path(base) / extra).is_file():
                (tmp / extra).write_bytes((Path(base) / extra).read_bytes())
    files = sorted(p for p in target.glob("*.safetensors"))
    section = MergeSection(
        path="merged",
        dtype=dtype,
        lora_modules=len(lora_modules),
        changed_tensors=len(changed),
        logits_max_abs_diff=diff,
        chat_template=bool(tokenizer.chat_template),
        eos_token=tokenizer.eos_token,
        files={p.name: sha256_file(p) for p in files},
        adapter_sha256=m.train.final_checkpoint.sha256,
        merged_at=rundir.utc_now(),
    )
    manifest.write_sections(run, merge=section)
    log(f"merged: {target} ({len(lora_modules)} LoRA modules, {len(changed)} tensors changed, logits diff {diff:.2e})")
    return section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_run_arguments(parser)
    ns = parser.parse_args(argv)

    def body(s: Settings) -> None:
        run = cli.run_from(ns, s)
        section = merge(run)
        print(json.dumps(section.model_dump(mode="json", exclude={"files"}), indent=1))
        print(f"next: make gguf RUN={run}")

    return cli.main(body)


if __name__ == "__main__":
    sys.exit(main())
