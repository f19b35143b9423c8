"""Preflight of a preference config (rl: dpo, ipo, simpo, orpo, kto): what axolotl / TRL would refuse or
quietly get wrong, the reference model (stated, never guessed), and, with the tokenizer at hand, each dataset
entry rendered through axolotl's own strategy (data/preference_render.py): the end of turn in BOTH chosen and
rejected (or in KTO's completion) and prompt + side lengths against sequence_len.

Defaults stated where they apply (TRL 1.9-1.14 / axolotl 0.19-0.21): beta 0.1 for DPO, IPO, KTO and SimPO (axolotl takes
trl.beta, then rl_beta; ORPO's lambda is orpo_alpha, default 0.1); SimPO needs simpo_gamma; KTO needs two
completions per batch and remove_unused_columns: false; sample packing is refused for every rl: method.
"""

from __future__ import annotations

from typing import Any

from data import sources
from data.entries import dataset_entries, dataset_file
from data.kinds import kind_of
from launch.preflight.findings import Finding
from resolver import facts
from resolver.resolve import Resolved

PAIRED = ("dpo", "ipo", "simpo", "orpo")
METHODS = (*PAIRED, "kto")
REFERENCE_FREE = ("orpo", "simpo")
DEFAULT_BETA = 0.1
HUB_ROWS = 200
PROBE_ROWS = 20  # rows whose rendered sides are checked for the end of turn


def beta_of(config: dict[str, Any]) -> float:
    """The beta TRL will use, as axolotl picks it (trl.beta, then rl_beta, then orpo_alpha for ORPO)."""
    trl = config.get("trl") or {}
    for value in (trl.get("beta"), config.get("rl_beta"), config.get("dpo_beta")):
        if isinstance(value, int | float):
            return float(value)
    if config.get("rl") == "orpo" and isinstance(config.get("orpo_alpha"), int | float):
        return float(config["orpo_alpha"])
    return DEFAULT_BETA


def reference_of(config: dict[str, Any]) -> str:
    """What plays the reference model: nothing (ORPO, SimPO), the adapter-disabled policy (LoRA: no second copy),
    or a second full copy of the model (a full fine-tune; KTO and DPO load it)."""
    if config.get("rl") in REFERENCE_FREE:
        return "none (reference-free)"
    if config.get("adapter") in ("lora", "qlora"):
        return "adapter-disabled policy (no second copy)"
    return "second model copy"


def _config_problems(config: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(key, message, hint) for settings axolotl/TRL refuse or mistrain under this rl: method."""
    rl, out = config.get("rl"), []
    if config.get("sample_packing"):
        out.append(("sample_packing", f"sample_packing cannot be used with rl: {rl}", "set sample_packing: false"))
    if config.get("val_set_size") and config.get("test_datasets"):
        out.append(("val_set_size", "val_set_size and test_datasets both set (axolotl refuses)", "keep one"))
    if rl == "simpo" and config.get("simpo_gamma") is None:
        out.append(
            (
                "simpo_gamma",
                "rl: simpo needs simpo_gamma (TRL fails without it)",
                "the SimPO paper uses 0.5-1.6 (with beta 2.0-2.5); set cpo_alpha: 0 for pure SimPO",
            )
        )
    if rl == "kto":
        if int(config.get("micro_batch_size") or 1) < 2:
            out.append(
                (
                    "micro_batch_size",
                    "KTO's KL term needs at least 2 completions per batch",
                    "micro_batch_size: 2 or more",
                )
            )
        if config.get("remove_unused_columns") is not False:
            out.append(
                (
                    "remove_unused_columns",
                    "KTO needs remove_unused_columns: false (TRL drops its label column)",
                    "remove_unused_columns: false",
                )
            )
        for key in ("kto_desirable_weight", "kto_undesirable_weight"):
            if config.get(key) == 0:
                out.append((key, f"{key}: 0 is read as 1.0 by axolotl", "use a small positive weight"))
    return out


def check_preference_config(r: Resolved) -> list[Finding]:
    """What axolotl/TRL would refuse in the config, and the reference model (no tokenizer needed)."""
    rl = r.config.get("rl")
    if rl not in METHODS:
        return []
    out = [Finding("error", "preference", msg, r.where(key), hint) for key, msg, hint in _config_problems(r.config)]
    ref = reference_of(r.config)
    start = f"; starts from run {r.start.run.name} of {r.start.recipe}" if r.start else ""
    out.append(Finding("ok", "preference", f"rl: {rl}, beta {beta_of(r.config):g}, reference model: {ref}{start}"))
    spec = r.recipe.meta.start_from
    if spec is not None and r.start is None and "base_model" not in r.overrides:
        out.append(
            Finding(
                "warning",
                "preference",
                f"starts from the latest run of {spec.recipe}, which has none yet: checked with this recipe's own "
                "base model and datasets",
                r.where("meta.start_from"),
                f"make train RECIPE={spec.recipe}" + (", then make judge and make prefs on it" if spec.prefs else ""),
            )
        )
    return out


def check_preference_data(r: Resolved) -> list[Finding]:
    """Each dataset entry rendered through axolotl's strategy with the tokenizer (a heavy check: axolotl)."""
    if r.config.get("rl") not in METHODS:
        return []
    source = r.tokenizer_source()
    if not source:
        return [
            Finding(
                "warning",
                "preference",
                f"the tokenizer of {r.hub_base_model} is not available here: the end of turn in "
                "chosen/rejected and the lengths are not checked",
                hint=facts.fetch_hint(r.hub_base_model),
            ),
        ]
    from launch.preflight.end_of_turn import _tokenizer
    from resolver.architecture import tokenizer_config

    config = tokenizer_config(r.config, source, cache=r.settings.cache)
    tokenizer = _tokenizer(config)
    out = []
    for section, i, ds in dataset_entries(r.config):
        out += _entry(r, config, tokenizer, section, i, ds)
    return out


def _entry(r: Resolved, config: dict, tokenizer: Any, section: str, i: int, ds: dict) -> list[Finding]:
    from data.preference_render import render_rows

    local = sources.is_local(ds)
    if kind_of(ds, rl=r.config.get("rl")).error or (local and not dataset_file(ds).is_file()):
        return []  # the data check reports these
    if not local and not facts.online(r.settings):
        return []
    label = dataset_file(ds).name if local else sources.hub_label(ds)
    try:
        rendered = render_rows(config, ds, tokenizer, sources.rows(ds, None if local else HUB_ROWS))
    except Exception as exc:  # noqa: BLE001 - axolotl's strategies raise many types on data they cannot read
        return [
            Finding(
                "warning",
                "preference",
                f"{label}: axolotl's strategy could not render it here ({type(exc).__name__}: {str(exc)[:200]})",
                r.where(f"{section}[{i}]"),
            )
        ]
    if not rendered:
        return []
    out = [_end_of_turn(r, config, tokenizer, label, rendered[:PROBE_ROWS], f"{section}[{i}]")]
    seq = int(r.config.get("sequence_len") or 2048)
    longest = max(max(x["tokens"].values()) for x in rendered)
    over = sum(any(n > seq for n in x["tokens"].values()) for x in rendered)
    drop = (r.config.get("excess_length_strategy") or "drop") == "drop"
    msg = f"{label}: prompt + side up to {longest} tokens, {over} of {len(rendered)} records over sequence_len {seq}"
    out.append(
        Finding(
            "warning" if over else "ok",
            "sequence length",
            msg + ((" (axolotl drops them)" if drop else " (axolotl truncates them)") if over else ""),
            r.where("sequence_len") if over else None,
        )
    )
    return out


def _end_of_turn(r: Resolved, config: dict, tokenizer: Any, label: str, rendered: list[dict], key: str) -> Finding:
    """Each rendered side, with the eos TRL appends, must end with this model's end of turn (its template's
    terminator, or the eos when the template has none): a strategy that hard-codes another family's markers
    (chatml.* on a Llama tokenizer) trains text that never stops a generation."""
    from resolver.turns import named_template, render, terminator

    template = named_template(str(config.get("chat_template") or "tokenizer_default"), config, tokenizer)
    end = terminator(tokenizer, template) or tokenizer.eos_token
    probe, marks = [{"role": "user", "content": "Hello there"}], (tokenizer.eos_token or "", tokenizer.bos_token or "")
    opened, closed = render(template, probe, *marks, add_generation_prompt=True), render(template, probe, *marks)
    header = opened[len(closed) :].strip() if opened.startswith(closed) else ""
    for x in rendered:
        if header and not x["prompt"].rstrip().endswith(header):
            return Finding(
                "error",
                "end of turn",
                f"{x['line']}: the prompt as axolotl renders it ends with {x['prompt'].rstrip()[-30:]!r}, not "
                f"this model's assistant header {header!r}: the strategy writes another model family's "
                "format",
                r.where(f"{key}.type"),
                "use type: chat_template.default (the model's own template), or the strategy of its family",
            )
        for side, text in x["sides"].items():
            ids = tokenizer(text, add_special_tokens=False)["input_ids"]
            if not ids or ids[-1] != tokenizer.eos_token_id:
                ids = [*ids, tokenizer.eos_token_id]
            tail = tokenizer.convert_ids_to_tokens(ids[-3:])
            if end not in tail:
                shown = tokenizer.decode(ids[-6:-1])
                return Finding(
                    "error",
                    "end of turn",
                    f"{x['line']}: '{side}' as axolotl renders it ends with {shown!r} + eos, not this "
                    f"model's end of turn {end!r}",
                    r.where(f"{key}.type"),
                    "use type: chat_template.default (the model's own template) for this model",
                )
    sides = "completion" if r.config.get("rl") == "kto" else "chosen and rejected"
    return Finding("ok", "end of turn", f"{label}: {sides} end with {end!r}, trained (rendered through axolotl)")
