"""The seeds' way of training, as a baseline: a plain TRL SFTTrainer + peft script (no packing, eager
attention, padded batches), with the recipe's model, data, LoRA and batch settings and the same steps.

Run as its own process (`python -m bench.baseline_trainer --spec spec.json`) so its start-up, peak memory
and wall time are measured like axolotl's. Prints one JSON line of results.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path


class CountingCollator:
    """Wraps the trainer's collator to count real (attention) tokens and padded positions per batch."""

    def __init__(self, inner):
        self.inner, self.real, self.padded = inner, 0, 0

    def __call__(self, features):
        batch = self.inner(features)
        mask = batch.get("attention_mask")
        if mask is not None:
            self.real += int(mask.sum())
            self.padded += int(mask.numel())
        else:
            self.real += int(batch["input_ids"].numel())
            self.padded += int(batch["input_ids"].numel())
        return batch


def run(spec: dict) -> dict:
    import torch
    from datasets import load_dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    torch.manual_seed(spec.get("seed", 42))
    gpu = torch.cuda.is_available()
    dtype = torch.bfloat16 if gpu else torch.float32
    tok = AutoTokenizer.from_pretrained(spec["model"])
    model = AutoModelForCausalLM.from_pretrained(spec["model"], dtype=dtype, attn_implementation="eager")
    data = load_dataset("json", data_files=spec["data"], split="train").select_columns(["messages"])
    args = SFTConfig(
        output_dir=spec["output_dir"],
        max_steps=spec["steps"],
        per_device_train_batch_size=spec["micro_batch"],
        gradient_accumulation_steps=spec["accum"],
        learning_rate=spec["lr"],
        lr_scheduler_type="linear",
        warmup_steps=0,
        max_length=spec["sequence_len"],
        packing=False,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        bf16=gpu,
        use_cpu=not gpu,
        assistant_only_loss=False,
        seed=spec.get("seed", 42),
        dataloader_num_workers=0,
    )
    peft = LoraConfig(
        r=spec["lora_r"],
        lora_alpha=spec["lora_alpha"],
        lora_dropout=0.05,
        target_modules=spec["targets"],
        task_type="CAUSAL_LM",
    )
    trainer = SFTTrainer(model=model, args=args, train_dataset=data, processing_class=tok, peft_config=peft)
    counter = CountingCollator(trainer.data_collator)
    trainer.data_collator = counter
    if gpu:
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    out = trainer.train()
    seconds = time.perf_counter() - start
    return {
        "steps": out.global_step,
        "train_seconds": seconds,
        "s_per_step": seconds / max(out.global_step, 1),
        "real_tokens": counter.real,
        "padded_tokens": counter.padded,
        "tokens_per_s": counter.real / seconds,
        "padding_real_share": counter.real / max(counter.padded, 1),
        "final_loss": out.training_loss,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
        "peak_gpu_gb": torch.cuda.max_memory_allocated() / 1e9 if gpu else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", required=True)
    ns = parser.parse_args()
    spec = json.loads(Path(ns.spec).read_text())
    print("BASELINE_RESULT " + json.dumps(run(spec)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
