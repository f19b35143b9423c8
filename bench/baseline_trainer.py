"""The seeds' way of training, as a baseline: a plain TRL SFTTrainer + peft script (no packing, eager attention,
padded batches, no fused kernels), given the same recipe settings as ours by the bench (model, data and its
format, LoRA r/alpha/dropout/targets, micro batch, accumulation, sequence length, learning rate, scheduler,
warmup, gradient checkpointing, seed, steps): what differs is only how it trains, which is what is compared.

Run as its own process (`python -m bench.baseline_trainer --spec spec.json`) so its start-up, peak memory and wall
time are measured like axolotl's. Real tokens, step times and peak memory come from the probe every `make train`
runs (launch/telemetry.py), counted from the batches the training steps receive, exactly as for ours; peak memory
is not reset after loading, as on our side. The same chat template as ours (axolotl's, by the config's
chat_template name) renders conversations. Prints one JSON line of results."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from launch.telemetry import TELEMETRY_FILE, Probe, instrument


def dataset(spec: dict):
    """The recipe's training file in TRL's terms: conversational `messages`, or prompt/completion with the
    recipe's prompt format (the completion is the loss, as axolotl's train_on_inputs: false)."""
    from datasets import load_dataset

    data = load_dataset("json", data_files=spec["data"], split="train")
    if spec.get("format", "messages") == "messages":
        return data.select_columns(["messages"])
    fields = spec.get("fields") or {"prompt": "prompt", "completion": "completion"}
    template = spec.get("prompt_template") or "{instruction}"

    def pc(row):
        return {
            "prompt": template.format(instruction=row[fields["prompt"]]),
            "completion": row[fields["completion"]],
        }

    return data.map(pc, remove_columns=data.column_names)


def run(spec: dict) -> dict:
    import torch
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    seed = spec.get("seed", 42)
    torch.manual_seed(seed)
    gpu = torch.cuda.is_available()
    bf16 = gpu and torch.cuda.is_bf16_supported()
    dtype = torch.bfloat16 if bf16 else (torch.float16 if gpu else torch.float32)
    probe = Probe(Path(spec["output_dir"]) / TELEMETRY_FILE)  # from before loading, as on our side
    tok = AutoTokenizer.from_pretrained(spec["model"])
    template = spec.get("chat_template")
    if template and template != "tokenizer_default" and spec.get("format", "messages") == "messages":
        from axolotl.utils.chat_templates import get_chat_template

        tok.chat_template = get_chat_template(template)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(
        spec["model"], dtype=dtype, attn_implementation="eager", device_map={"": 0} if gpu else None
    )
    # transformers 5 reads a float in [0, 1) as a ratio of the steps (its warmup_ratio is gone)
    warmup = float(spec["warmup_ratio"]) if spec.get("warmup_ratio") else int(spec.get("warmup_steps") or 0)
    args = SFTConfig(
        output_dir=spec["output_dir"],
        max_steps=spec["steps"],
        per_device_train_batch_size=spec["micro_batch"],
        gradient_accumulation_steps=spec["accum"],
        learning_rate=spec["lr"],
        lr_scheduler_type=spec.get("scheduler", "linear"),
        warmup_steps=warmup,
        max_length=spec["sequence_len"],
        packing=False,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        bf16=bf16,
        fp16=gpu and not bf16,
        use_cpu=not gpu,
        gradient_checkpointing=bool(spec.get("gradient_checkpointing")),
        assistant_only_loss=False,
        seed=seed,
        weight_decay=float(spec.get("weight_decay") or 0.0),
        dataloader_num_workers=0,
    )
    peft = LoraConfig(
        r=spec["lora_r"],
        lora_alpha=spec["lora_alpha"],
        lora_dropout=spec.get("lora_dropout", 0.05),
        target_modules=spec["targets"],
        task_type="CAUSAL_LM",
    )
    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset(spec), processing_class=tok, peft_config=peft)
    instrument(trainer, probe)
    start = time.perf_counter()
    out = trainer.train()
    seconds = time.perf_counter() - start
    record = json.loads(probe.out.read_text())
    return {
        "steps": out.global_step,
        "train_seconds": seconds,
        "s_per_step": seconds / max(out.global_step, 1),
        "final_loss": out.training_loss,
        "dtype": str(dtype).removeprefix("torch."),
        "telemetry": record,
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
