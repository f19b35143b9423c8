"""Model cards generated from a run's manifest: YAML front matter the Hub understands, then the recipe,
training settings, data hashes, evaluation tables and usage snippets. Never reads the environment."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from launch.architecture import facts_for

DROP_FROM_RECIPE = ("output_dir", "dataset_prepared_path")


def front_matter(manifest: dict[str, Any], kind: str) -> dict[str, Any]:
    base = manifest["base_model"]["name"]
    meta = manifest["meta"]
    facts = facts_for(base) or {}
    fm: dict[str, Any] = {
        "base_model": base,
        "library_name": {"adapter": "peft", "merged": "transformers", "gguf": "gguf"}[kind],
        "license": facts.get("license", "other"),
        "tags": ["affinage", "axolotl", meta["method"], meta["family"], "text-generation"] + (["gguf"] if kind == "gguf" else []),
        "datasets": [d["path"] for d in manifest.get("datasets", [])],
        "pipeline_tag": "text-generation",
    }
    results = (manifest.get("eval") or {}).get("results") or []
    if results:
        fm["model-index"] = [{"name": meta.get("hub_name") or manifest["recipe"]["name"], "results": [
            {"task": {"type": "text-generation", "name": r["task"]},
             "dataset": {"name": r.get("dataset", r["task"]), "type": r.get("dataset_type", "custom")},
             "metrics": [{"type": k, "value": v, "name": k} for k, v in r["metrics"].items()]} for r in results]}]
    return fm


def _table(rows: list[tuple[str, Any]]) -> str:
    return "| setting | value |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in rows if v is not None)


def training_rows(manifest: dict[str, Any], config: dict[str, Any]) -> list[tuple[str, Any]]:
    train = manifest.get("train") or {}
    targets = config.get("lora_target_modules")
    precision = "bf16" if config.get("bf16") else "fp16" if config.get("fp16") else "fp32"
    return [("recipe", f"`{manifest['recipe']['name']}` (sha256 {manifest['recipe']['sha256'][:12]})"),
            ("base model", manifest["base_model"]["name"]), ("method", manifest["meta"]["method"]),
            ("LoRA r / alpha / dropout", f"{config.get('lora_r')} / {config.get('lora_alpha')} / {config.get('lora_dropout')}"
             if config.get("lora_r") else None),
            ("LoRA targets", ", ".join(targets) if isinstance(targets, list) else targets),
            ("epochs / max steps", f"{config.get('num_epochs')} / {config.get('max_steps', '-')}"),
            ("batch", f"{config.get('micro_batch_size')} x {config.get('gradient_accumulation_steps')} accumulation"),
            ("learning rate", f"{config.get('learning_rate')} {config.get('lr_scheduler', '')}"),
            ("sequence length", config.get("sequence_len")), ("precision", precision),
            ("device", manifest.get("device")), ("steps trained", train.get("global_step")),
            ("loss first / final", f"{train.get('first_loss')} / {train.get('final_loss')}" if train else None),
            ("eval loss", train.get("eval_loss")), ("axolotl", manifest.get("packages", {}).get("axolotl"))]


def usage(manifest: dict[str, Any], kind: str, repo_id: str) -> str:
    s = manifest["meta"]["sampling"]
    extra = f", top_p={s['top_p']}" if s.get("top_p") else ""
    base = manifest["base_model"]["name"]
    if kind == "gguf":
        quant = next((k for k in ("Q4_K_M", "Q8_0") if k in (manifest.get("gguf") or {}).get("files", {})), "f16")
        top_p = f" --top-p {s['top_p']}" if s.get("top_p") else ""
        return (f"```bash\nllama-cli -hf {repo_id}:{quant} --temp {s['temperature']}{top_p} -n {s['max_new_tokens']} -cnv\n```\n"
                f"The chat template and end-of-turn token are inside the GGUF (checked by the parity report).")
    if kind == "adapter":
        load = (f"from peft import PeftModel\nbase = AutoModelForCausalLM.from_pretrained(\"{base}\", device_map=\"auto\")\n"
                f"model = PeftModel.from_pretrained(base, \"{repo_id}\")\ntok = AutoTokenizer.from_pretrained(\"{repo_id}\")")
    else:
        load = (f"model = AutoModelForCausalLM.from_pretrained(\"{repo_id}\", device_map=\"auto\")\n"
                f"tok = AutoTokenizer.from_pretrained(\"{repo_id}\")")
    return ("```python\nfrom transformers import AutoModelForCausalLM, AutoTokenizer\n" + load + "\n"
            "msgs = [{\"role\": \"user\", \"content\": \"What is the relationship between attention and love?\"}]\n"
            "ids = tok.apply_chat_template(msgs, add_generation_prompt=True, return_tensors=\"pt\", return_dict=True).to(model.device)\n"
            f"out = model.generate(**ids, do_sample=True, temperature={s['temperature']}{extra}, max_new_tokens={s['max_new_tokens']})\n"
            "print(tok.decode(out[0][ids[\"input_ids\"].shape[1]:], skip_special_tokens=True))\n```")


def eval_section(manifest: dict[str, Any]) -> str:
    results = (manifest.get("eval") or {}).get("results") or []
    if not results:
        return "Not evaluated yet."
    lines = ["| task | metric | value |", "|---|---|---|"]
    lines += [f"| {r['task']} | {k} | {v} |" for r in results for k, v in r["metrics"].items()]
    return "\n".join(lines)


def render(manifest: dict[str, Any], config: dict[str, Any], kind: str, repo_id: str) -> str:
    meta = manifest["meta"]
    recipe_cfg = {k: v for k, v in config.items() if k not in DROP_FROM_RECIPE}
    recipe_cfg["base_model"] = manifest["base_model"]["name"]
    what = {"adapter": "LoRA adapter", "merged": "merged model (adapter folded into the base weights)",
            "gguf": "GGUF files (llama.cpp)"}[kind]
    parts = ["---", yaml.safe_dump(front_matter(manifest, kind), sort_keys=False).strip(), "---", "",
             f"# {meta.get('hub_name') or manifest['recipe']['name']}", "",
             f"{meta['description']}: {what} of [{manifest['base_model']['name']}](https://huggingface.co/{manifest['base_model']['name']}), "
             f"trained with the `{manifest['recipe']['name']}` recipe (axolotl).", "",
             "## Training", "", _table(training_rows(manifest, config)), "",
             "## Data", "", "| file | sha256 | bytes |", "|---|---|---|"]
    parts += [f"| {d['path']} | `{d['sha256']}` | {d['bytes']} |" for d in manifest.get("datasets", [])]
    parts += ["", "## Evaluation", "", eval_section(manifest), ""]
    gguf = manifest.get("gguf")
    if kind == "gguf" and gguf:
        parts += ["## Files", "", "| type | file | MB | sha256 | greedy agreement with HF |", "|---|---|---|---|---|"]
        parts += [f"| {t} | {i['file']} | {i['bytes'] / 1e6:.1f} | `{i['sha256'][:16]}` | {i['agreement']:.0%} |"
                  for t, i in gguf["files"].items()]
        parts += ["", f"Parity of the {gguf['outtype']} file with the merged HF model: **{gguf['parity']}**.", ""]
    parts += ["## Usage", "", usage(manifest, kind, repo_id), "",
              "## Recipe", "", "```yaml", yaml.safe_dump(recipe_cfg, sort_keys=False).strip(), "```", ""]
    return "\n".join(parts)


def load_config(run: Path) -> dict[str, Any]:
    return yaml.safe_load((run / "config.yaml").read_text()) or {}
