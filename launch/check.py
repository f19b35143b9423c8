"""`make check RECIPE=x`: offline preflight of a recipe, before anything expensive runs.

Checks: recipe + meta schema, keys axolotl does not know, axolotl's own validation (explicit
capabilities, no CUDA probe, no hub), dataset files, the end-of-turn token being trained, LoRA targets
against the real architecture, sequence length vs the data, and checkpoints vs free disk.
"""
from __future__ import annotations

import argparse
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from launch import architecture as arch
from launch import axolotl_schema, templates
from launch.errors import UserError, Where
from launch.paths import REPO, outputs_dir
from launch.recipes import Recipe, load_recipe
from launch.resolve import Resolved, resolve


@dataclass
class Finding:
    level: str  # error | warning | ok
    check: str
    message: str
    where: Where | None = None
    hint: str | None = None

    def __str__(self) -> str:
        loc = f"{self.where}: " if self.where and str(self.where) else ""
        hint = f"\n    hint: {self.hint}" if self.hint else ""
        return f"[{self.level}] {self.check}: {loc}{self.message}{hint}"


def target_device(recipe: Recipe) -> str:
    forced = os.environ.get("DEVICE", "").strip().lower()
    if forced:
        return forced
    return "gpu" if recipe.meta.gpu.count > 0 else "cpu"


def dataset_file(ds: dict) -> Path:
    path = Path(ds["path"]).expanduser()
    return path if path.is_absolute() else REPO / path


def dataset_format(ds: dict) -> tuple[str, dict]:
    """(format, field names) axolotl will read this dataset entry as."""
    kind = ds.get("type")
    if isinstance(kind, dict):
        return "prompt-completion", {"prompt": kind.get("field_instruction", "instruction"),
                                     "completion": kind.get("field_output", "output")}
    if kind == "chat_template":
        return "messages", {"field": ds.get("field_messages", "messages")}
    return "other", {}


def dataset_entries(config: dict) -> list[tuple[str, int, dict]]:
    """(section, index, entry) for every training and held-out dataset."""
    return [(section, i, ds) for section in ("datasets", "test_datasets") for i, ds in enumerate(config.get(section) or [])]


def check_datasets(r: Resolved) -> list[Finding]:
    from data.validate import validate_file

    out = []
    for section, i, ds in dataset_entries(r.config):
        key = f"{section}[{i}].path"
        path = dataset_file(ds)
        if not path.is_file():
            out.append(Finding("error", "data", f"dataset file not found: {path}", r.recipe.where(key),
                               "fix the path (relative paths are from the repo root) or override it with ARGS"))
            continue
        fmt, fields = dataset_format(ds)
        if fmt == "other":
            out.append(Finding("warning", "data", f"dataset type {ds.get('type')!r} is not checked offline",
                               r.recipe.where(f"{section}[{i}].type")))
            continue
        report = validate_file(path, fmt, **fields)
        if report.ok:
            out.append(Finding("ok", "data", f"{path.name}: {report.records} {fmt} records, all valid"))
        else:
            shown = "; ".join(str(p) for p in report.problems[:5])
            more = f" (+{len(report.problems) - 5} more)" if len(report.problems) > 5 else ""
            out.append(Finding("error", "data", f"{len(report.problems)} bad records of {report.records}: {shown}{more}",
                               r.recipe.where(key), "make data-check DATA=<file> lists every one"))
    return out


def tokenizer_source(r: Resolved) -> str | None:
    """A folder holding the recipe's tokenizer: tokenizer_config, the local model, or the hub model's cached snapshot."""
    explicit = r.config.get("tokenizer_config")
    if explicit and (Path(explicit) / "tokenizer_config.json").is_file():
        return explicit
    if (Path(r.config["base_model"]) / "tokenizer_config.json").is_file():
        return r.config["base_model"]
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(r.hub_base_model, "tokenizer_config.json")
    return str(Path(cached).parent) if isinstance(cached, str) else None


def check_end_of_turn(r: Resolved) -> list[Finding]:
    cfg, out = r.config, []
    facts = arch.facts_for(r.hub_base_model) or {}
    eos = (cfg.get("special_tokens") or {}).get("eos_token") or facts.get("eos_token")
    for i, ds in enumerate(cfg.get("datasets") or []):
        if isinstance(ds.get("type"), dict):
            ok = tokenizer_source(r) or eos
            out.append(Finding("ok" if ok else "warning", "end of turn",
                               f"prompt/completion: axolotl appends the tokenizer's eos ({eos or 'unknown'}) to each completion"))
            continue
        if ds.get("type") != "chat_template":
            continue
        choice = templates.template_choice(cfg, ds)
        where = r.recipe.where("chat_template")
        if not choice:
            out.append(Finding("error", "end of turn", "chat template is not set", where,
                               "set chat_template (e.g. chatml, llama3, qwen3, gemma3) or tokenizer_default"))
            continue
        try:
            source = tokenizer_source(r)
            if source:
                problem = templates.label_level_problem({**cfg, "tokenizer_config": source}, ds)
                depth = "tokenized through axolotl"
            elif choice == "tokenizer_default":
                out.append(Finding("warning", "end of turn", "tokenizer_default needs the tokenizer, which is on the hub; "
                                   "not checked offline", where, "name the template instead (e.g. chatml)"))
                continue
            else:
                template = templates.named_template(choice, cfg)
                problem = templates.text_level_problem(template, eos, cfg.get("eot_tokens") or [])
                depth = f"rendered template '{choice}'"
        except (ValueError, KeyError, OSError) as exc:
            out.append(Finding("error", "end of turn", f"chat template '{choice}' could not be used: {exc}", where))
            continue
        if problem:
            out.append(Finding("error", "end of turn", problem, r.recipe.where("eot_tokens"),
                               "add the turn terminator to eot_tokens (and keep train_on_eos: turn)"))
        else:
            out.append(Finding("ok", "end of turn", f"assistant turns end with a trained end-of-turn token ({depth})"))
    return out


def check_lora_targets(r: Resolved) -> list[Finding]:
    cfg = r.config
    if cfg.get("adapter") not in ("lora", "qlora"):
        return []
    base = cfg["base_model"] if os.path.exists(cfg["base_model"]) else r.hub_base_model
    try:
        cls, params, _ = arch.architecture(base)
    except UserError as exc:
        return [Finding("warning", "lora targets", exc.message, hint=exc.hint)]
    where = r.recipe.where("lora_target_modules")
    if cfg.get("lora_target_linear"):
        target = ".*"
        hits = [lin for lin in arch.lora_targets(base, target) if "lm_head" not in lin.name]
    else:
        target = cfg.get("lora_target_modules")
        if not target:
            return [Finding("error", "lora targets", "no lora_target_modules (and lora_target_linear is off)", where)]
        if isinstance(target, list):
            missing = arch.missing_targets(base, target)
            if missing:
                return [Finding("error", "lora targets", f"{cls} has no module named {', '.join(missing)}", where,
                                "module names are in the model's transformers class, e.g. q_proj, o_proj, down_proj")]
        hits = arch.lora_targets(base, target)
    if not hits:
        return [Finding("error", "lora targets", f"pattern {target!r} matches no Linear module of {cls}", where)]
    vision = [h.name for h in hits if arch.is_vision(h.name)]
    if vision:
        return [Finding("error", "lora targets", f"{len(vision)} targets are in the vision tower (e.g. {vision[0]}); "
                        "text-only training would put LoRA on SigLIP", where,
                        "use a regex limited to the language model: '.*language_model.*\\.(q_proj|...|down_proj)'")]
    rank = int(cfg.get("lora_r") or 8)
    n = sum(rank * (h.in_features + h.out_features) for h in hits)
    return [Finding("ok", "lora targets", f"{len(hits)} modules of {cls} ({params / 1e9:.2f}B params); "
                    f"LoRA r={rank} trains {n / 1e6:.1f}M params")]


def check_lengths(r: Resolved) -> list[Finding]:
    """How many records exceed sequence_len (axolotl drops them), with the recipe's own tokenizer."""
    source = tokenizer_source(r)
    if not source:
        return [Finding("warning", "sequence length", "the tokenizer is not cached here; lengths not measured offline",
                        hint="run make check once the model is in the HF cache (huggingface-cli download <model>)")]
    from data.stats import tokenize_records

    seq = int(r.config.get("sequence_len") or 2048)
    out = []
    for _, _, ds in dataset_entries(r.config):
        path = dataset_file(ds)
        if not path.is_file():
            continue
        fmt, fields = dataset_format(ds)
        if fmt == "other":
            continue
        lengths = [it["tokens"] for it in tokenize_records({**r.config, "tokenizer_config": source}, ds, path, fmt, **fields)]
        if not lengths:
            continue
        over = sum(n > seq for n in lengths)
        msg = f"{path.name}: max {max(lengths)} tokens, {over} of {len(lengths)} over sequence_len {seq}"
        level = "warning" if over else "ok"
        out.append(Finding(level, "sequence length", msg + (" (axolotl drops them)" if over else ""),
                           r.recipe.where("sequence_len") if over else None))
    return out


def free_bytes(path: Path) -> tuple[int, Path]:
    """Free space on the volume that holds `path` (its nearest existing parent)."""
    probe = next((p for p in [path, *path.parents] if p.exists()), Path("/"))
    return shutil.disk_usage(probe).free, probe


def disk_need(r: Resolved) -> tuple[dict[str, float], float]:
    """(parts in GB, base download in GB) by the plan's formula (launch/estimate.py): what this run and its
    merge + GGUF write under OUTPUTS, and the base model download (into HF_HOME) when it is not local."""
    from launch import estimate as est

    cfg = r.config
    local = os.path.exists(cfg["base_model"])
    try:
        m = est.model_facts(cfg, cfg["base_model"] if local else r.hub_base_model)
    except UserError:  # an architecture without offline facts: parameters from meta, 2 % of them trained
        params = int(r.recipe.meta.params_b * 1e9)
        trained = int(params * 0.02) if cfg.get("adapter") in ("lora", "qlora") else params
        m = est.Model(params, trained, 0, 0, 0, 0, 0, 0)
    parts = est.disk(m, cfg, downloads_base=False).parts
    download = 0.0 if local else m.params * 2.0 / 1e9
    return parts, download


def check_disk(r: Resolved) -> list[Finding]:
    parts, download = disk_need(r)
    need = sum(parts.values()) * 1e9
    free, probe = free_bytes(outputs_dir())
    detail = ", ".join(f"{k} {v:.2f}" for k, v in parts.items())
    msg = f"needs {need / 1e9:.2f} GB under OUTPUTS ({detail}); {free / 1e9:.1f} GB free at {probe}"
    out = []
    if need > free:
        out.append(Finding("error", "disk", msg, r.recipe.where("save_total_limit"),
                           "free space, lower save_total_limit, or set OUTPUTS to a bigger volume"))
    else:
        out.append(Finding("ok", "disk", msg))
    if download:
        hf_home = Path(os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface")
        hf_free, hf_probe = free_bytes(hf_home)
        dl = f"base model download {download:.1f} GB; {hf_free / 1e9:.1f} GB free at {hf_probe} (HF_HOME)"
        out.append(Finding("error" if download * 1e9 > hf_free else "ok", "disk", dl, None,
                           "point HF_HOME at a bigger volume" if download * 1e9 > hf_free else None))
    return out


def run_checks(name: str, args: str | None = None) -> tuple[Resolved | None, list[Finding]]:
    try:
        recipe = load_recipe(name)
    except UserError as exc:
        return None, [Finding("error", "recipe", exc.message, exc.where, exc.hint)]
    device = target_device(recipe)
    r = resolve(recipe, device=device, args=args)
    findings = [Finding("ok", "recipe", f"{recipe.name}: {recipe.meta.description} (checked for {device})")]
    unknown = axolotl_schema.unknown_keys(r.config)
    for key, close in unknown:
        findings.append(Finding("error", "schema", f"axolotl does not know the key '{key}' (it would be ignored)",
                                r.recipe.where(key), f"did you mean {', '.join(close)}?" if close else None))
    try:
        axolotl_schema.validate(r.config, device, recipe.meta.gpu.type, recipe.meta.gpu.count)
        if not unknown:
            findings.append(Finding("ok", "schema", "accepted by axolotl's validate_config"))
    except Exception as exc:  # axolotl raises ValueError and pydantic errors
        key, msg = axolotl_schema.first_error(exc)
        findings.append(Finding("error", "schema", f"axolotl rejects the config: {msg}",
                                r.recipe.where(key) if key else r.recipe.where("")))
    for step in (check_datasets, check_end_of_turn, check_lora_targets, check_lengths, check_disk):
        findings += step(r)
    return r, findings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe")
    parser.add_argument("--args", default=os.environ.get("ARGS"), help="overrides, e.g. '--sequence_len=512'")
    ns = parser.parse_args(argv)
    _, findings = run_checks(ns.recipe, ns.args)
    for f in findings:
        print(f)
    errors = sum(f.level == "error" for f in findings)
    warnings = sum(f.level == "warning" for f in findings)
    print(f"{'FAILED' if errors else 'OK'}: {errors} errors, {warnings} warnings")
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
