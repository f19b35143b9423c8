"""The repo's export formats (tools/export/formats.py): the LoRA adapter (REPO), the merged model (REPO-merged) and
the GGUF files (REPO-GGUF, with make ollama's Modelfile when there is one), each with what `make push` uploads and
what its model card shows."""

from __future__ import annotations

from pathlib import Path

from core import rundir
from core.manifest import Manifest
from core.mdtable import cell
from tools.export.formats import Format, register

ADAPTER_FILES = (
    "adapter_model.safetensors",
    "adapter_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    "processor_config.json",
    "preprocessor_config.json",
)


def adapter_files(run: Path, m: Manifest) -> list[Path]:
    adapter = rundir.final_adapter(run)
    return [adapter / f for f in ADAPTER_FILES if (adapter / f).is_file()]


def merged_files(run: Path, m: Manifest) -> list[Path] | None:
    if m.merge is None:
        return None
    return sorted(p for p in rundir.merged_model(run, hashes=True).iterdir() if p.is_file())


def gguf_files(run: Path, m: Manifest) -> list[Path] | None:
    if m.gguf is None:
        return None
    folder = run / m.gguf.path
    files = [folder / i.file for i in m.gguf.files.values()] + [folder / "parity.json"]
    if (folder / "Modelfile").is_file():  # make ollama's, beside the GGUF it names (FROM ./<file>)
        files.append(folder / "Modelfile")
    return files


def _hf_usage(m: Manifest, repo_id: str, adapter: bool) -> str:
    s = m.train.meta.sampling
    extra = f", top_p={s.top_p}" if s.top_p else ""
    base = m.train.base_model.name
    if adapter:
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


def adapter_usage(m: Manifest, repo_id: str, modelfile: bool = False) -> str:
    return _hf_usage(m, repo_id, adapter=True)


def merged_usage(m: Manifest, repo_id: str, modelfile: bool = False) -> str:
    return _hf_usage(m, repo_id, adapter=False)


def gguf_usage(m: Manifest, repo_id: str, modelfile: bool = False) -> str:
    s = m.train.meta.sampling
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
        f"| {cell(t)} | {cell(i.file)} | {(i.bytes or 0) / 1e6:.1f} | `{(i.sha256 or '')[:16]}` | "
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


register(Format("adapter", "", "peft", "LoRA adapter", adapter_files, adapter_usage))
register(
    Format(
        "merged",
        "-merged",
        "transformers",
        "merged model (adapter folded into the base weights)",
        merged_files,
        merged_usage,
    )
)
register(Format("gguf", "-GGUF", "gguf", "GGUF files (llama.cpp)", gguf_files, gguf_usage, gguf_section, ("gguf",)))
