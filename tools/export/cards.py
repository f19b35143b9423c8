"""Model cards generated from a run's manifest: YAML front matter the Hub understands, then the recipe,
training settings, data hashes, evaluation tables (metrics named and printed by core/metrics.py) and usage
snippets. Never reads the environment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from core import mdtable, metrics
from core.errors import UserError, Where
from core.manifest import EvalResult, Manifest
from resolver.architecture import facts_for

DROP_FROM_RECIPE = ("output_dir", "dataset_prepared_path")


def _results(m: Manifest) -> list[EvalResult]:
    return m.lm_eval.results if m.lm_eval else []


def _metric_items(r: EvalResult) -> list[tuple[metrics.Metric, float]]:
    """The result's metrics in registry order (unknown names are left out of cards)."""
    return [(metrics.get(k), r.metrics[k]) for k in metrics.BY_NAME if k in r.metrics]


def front_matter(m: Manifest, kind: str) -> dict[str, Any]:
    t = m.train
    base = t.base_model.name
    facts = facts_for(base) or {}
    fm: dict[str, Any] = {
        "base_model": base,
        "library_name": {"adapter": "peft", "merged": "transformers", "gguf": "gguf"}[kind],
        "license": facts.get("license") or "other",  # the Hub wants one; a table row may say none
        "tags": ["affinage", "axolotl", t.meta.method, t.meta.family, "text-generation"]
        + (["gguf"] if kind == "gguf" else []),
        "datasets": [d.path for d in t.datasets],
        "pipeline_tag": "text-generation",
    }
    results = _results(m)
    if results:
        fm["model-index"] = [
            {
                "name": t.meta.hub_name or m.recipe_name,
                "results": [
                    {
                        "task": {"type": "text-generation", "name": r.task},
                        "dataset": {"name": r.dataset or r.task, "type": "custom"},
                        "metrics": [
                            {"type": metric.name, "value": value, "name": metric.label}
                            for metric, value in _metric_items(r)
                        ],
                    }
                    for r in results
                ],
            }
        ]
    return fm


def _table(rows: list[tuple[str, Any]]) -> str:
    return "\n".join(mdtable.table(["setting", "value"], [(k, v) for k, v in rows if v is not None]))


def training_rows(m: Manifest, config: dict[str, Any]) -> list[tuple[str, Any]]:
    t = m.train
    s = t.summary
    targets = config.get("lora_target_modules")
    precision = "bf16" if config.get("bf16") else "fp16" if config.get("fp16") else "fp32"
    return [
        ("recipe", f"`{m.recipe_name}` (sha256 {(t.recipe.sha256 or '')[:12]})"),
        ("base model", t.base_model.name),
        ("method", t.meta.method),
        (
            "LoRA r / alpha / dropout",
            f"{config.get('lora_r')} / {config.get('lora_alpha')} / {config.get('lora_dropout')}"
            if config.get("lora_r")
            else None,
        ),
        ("LoRA targets", ", ".join(targets) if isinstance(targets, list) else targets),
        ("epochs / max steps", f"{config.get('num_epochs')} / {config.get('max_steps', '-')}"),
        ("batch", f"{config.get('micro_batch_size')} x {config.get('gradient_accumulation_steps')} accumulation"),
        ("learning rate", f"{config.get('learning_rate')} {config.get('lr_scheduler', '')}"),
        ("sequence length", config.get("sequence_len")),
        ("precision", precision),
        ("device", t.device),
        ("steps trained", s.global_step if s else None),
        ("loss first / final", f"{s.first_loss} / {s.final_loss}" if s else None),
        ("eval loss", s.eval_loss if s else None),
        ("axolotl", t.packages.get("axolotl")),
    ]


def usage(m: Manifest, kind: str, repo_id: str, modelfile: bool = False) -> str:
    s = m.train.meta.sampling
    extra = f", top_p={s.top_p}" if s.top_p else ""
    base = m.train.base_model.name
    if kind == "gguf":
        files = m.gguf.files if m.gguf else {}
        quant = next((k for k in ("Q4_K_M", "Q8_0") if k in files), "f16")
        top_p = f" --top-p {s.top_p}" if s.top_p else ""
        ollama = (
            "\n\nOllama: download the repo, then `ollama create "
            f"{m.train.meta.hub_name or m.recipe_name} -f Modelfile` (the Modelfile's template was generated from the "
            "GGUF's chat template and checked against it; its stop tokens and parameters are the recipe's)."
            if modelfile
            else ""
        )
        return (
            f"```bash\nllama-cli -hf {repo_id}:{quant} --temp {s.temperature}{top_p} -n {s.max_new_tokens} -cnv\n```\n"
            f"The chat template and end-of-turn token are inside the GGUF (checked by the parity report).{ollama}"
        )
    if kind == "adapter":
        load = (
            f'from peft import PeftModel\nbase = AutoModelForCausalLM.from_pretrained("{base}", device_map="auto")\n'
            f'model = PeftModel.from_pretrained(base, "{repo_id}")\ntok = AutoTokenizer.from_pretrained("{repo_id}")'
        )
    else:
        load = (
            f'model = AutoModelForCausalLM.from_pretrained("{repo_id}", device_map="auto")\n'
            f'tok = AutoTokenizer.from_pretrained("{repo_id}")'
        )
    return (
        "```python\nfrom transformers import AutoModelForCausalLM, AutoTokenizer\n" + load + "\n"
        'msgs = [{"role": "user", "content": "What is the relationship between attention and love?"}]\n'
        'ids = tok.apply_chat_template(msgs, add_generation_prompt=True, return_tensors="pt", return_dict=True).to(model.device)\n'
        f"out = model.generate(**ids, do_sample=True, temperature={s.temperature}{extra}, max_new_tokens={s.max_new_tokens})\n"
        'print(tok.decode(out[0][ids["input_ids"].shape[1]:], skip_special_tokens=True))\n```'
    )


def eval_section(m: Manifest) -> str:
    results = _results(m)
    if not results:
        return "Not evaluated yet."
    rows = [(r.task, metric.label, metric.show(value)) for r in results for metric, value in _metric_items(r)]
    return "\n".join(mdtable.table(["task", "metric", "value"], rows))


def _num(x: float | None, fmt: str) -> str:
    return "-" if x is None else fmt.format(x)


def gguf_section(m: Manifest) -> list[str]:
    g = m.gguf
    if g is None:
        return []
    out = [
        "## Files",
        "",
        f"| type | file | MB | sha256 | mean KL vs {g.outtype} | top-1 agreement | perplexity | greedy agreement with HF |",
        "|---|---|---|---|---|---|---|---|",
    ]
    out += [
        f"| {t} | {i.file} | {(i.bytes or 0) / 1e6:.1f} | `{(i.sha256 or '')[:16]}` | "
        f"{_num(i.mean_kl, '{:.4f}')}{' (broken)' if i.broken else ''} | {_num(i.top1, '{:.1%}')} | "
        f"{_num(i.ppl, '{:.2f}')} | {(i.agreement or 0):.0%} |"
        for t, i in g.files.items()
    ]
    out += ["", f"Parity of the {g.outtype} file with the merged HF model: **{g.parity}**."]
    q = g.quality
    if q is not None:
        out += [
            "",
            f"KL divergence (nats per token) of each quant's next-token distribution from the {g.outtype} file's, "
            f"top-1 agreement and perplexity, measured the way llama.cpp's llama-perplexity does: {q.text}, "
            f"rendered through the chat template, {q.tokens} tokens in {q.chunks} chunks of {q.n_ctx}, the second "
            f"half of each chunk scored ({q.positions} positions). Greedy agreement counts every token after the "
            "first difference from the HF model as wrong, so it understates a quant.",
        ]
    return out + [""]


def render(m: Manifest, config: dict[str, Any], kind: str, repo_id: str, modelfile: bool = False) -> str:
    t = m.train
    recipe_cfg = {k: v for k, v in config.items() if k not in DROP_FROM_RECIPE}
    recipe_cfg["base_model"] = t.base_model.name
    what = {
        "adapter": "LoRA adapter",
        "merged": "merged model (adapter folded into the base weights)",
        "gguf": "GGUF files (llama.cpp)",
    }[kind]
    parts = [
        "---",
        yaml.safe_dump(front_matter(m, kind), sort_keys=False).strip(),
        "---",
        "",
        f"# {t.meta.hub_name or m.recipe_name}",
        "",
        f"{t.meta.description}: {what} of [{t.base_model.name}](https://huggingface.co/{t.base_model.name}), "
        f"trained with the `{m.recipe_name}` recipe (axolotl).",
        "",
        "## Training",
        "",
        _table(training_rows(m, config)),
        "",
        "## Data",
        "",
        "| file | sha256 | bytes |",
        "|---|---|---|",
    ]
    parts += [f"| {d.path} | `{d.sha256}` | {d.bytes} |" for d in t.datasets]
    parts += ["", "## Evaluation", "", eval_section(m), ""]
    if kind == "gguf":
        parts += gguf_section(m)
    parts += [
        "## Usage",
        "",
        usage(m, kind, repo_id, modelfile),
        "",
        "## Recipe",
        "",
        "```yaml",
        yaml.safe_dump(recipe_cfg, sort_keys=False).strip(),
        "```",
        "",
    ]
    return "\n".join(parts)


def load_config(run: Path) -> dict[str, Any]:
    path = run / "config.yaml"
    if not path.is_file():
        raise UserError("the run has no config.yaml (the config it trained with)", Where(path))
    return yaml.safe_load(path.read_text()) or {}
