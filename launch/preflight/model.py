"""Preflight: the base model's facts (config.json and tokenizer, fetched into the HF cache when the Hub can be
reached, resolver/facts.py), what was derived from them, a meta block that contradicts them, the kind of
training the config asks for, and whether llama.cpp's converter supports the architecture (so `make gguf` does
not fail after the GPU hours)."""

from __future__ import annotations

from pathlib import Path

from core.errors import UserError
from launch.preflight.findings import Finding
from resolver import facts
from resolver.resolve import Resolved
from tools.export.gguf_support import converter_architectures

SFT_ONLY_RL = ("gdpo", "ebft")  # axolotl rl: values this repo does not train (grpo: launch/preflight/grpo.py)
SOURCE_WORDS = {"local": "a local folder", "hf-cache": "the HF cache", "table": "the offline facts table"}


def ensure_facts(r: Resolved) -> list[Finding]:
    """Fetch the model's small files when they are not here and the Hub can be reached; say what is missing."""
    base = r.config["base_model"]
    if facts.is_path(base) and not Path(base).expanduser().exists():
        src = r.recipe.meta.local_source
        if src is not None:
            return [
                Finding(
                    "ok",
                    "model",
                    f"{r.hub_base_model}: materialized from the {src.package} wheel when it first "
                    "trains (offline facts until then)",
                )
            ]
        return [
            Finding(
                "error",
                "model",
                f"base_model folder not found: {base}",
                r.where("base_model"),
                "a local model is a folder with config.json; a Hub model is org/name",
            )
        ]
    found = facts.find(base, cache=r.settings.cache)
    if found is not None and found.folder is not None:
        ok = Finding(
            "ok",
            "model",
            f"{r.hub_base_model}: {found.architecture} ({found.model_type}), files from {SOURCE_WORDS[found.source]}",
        )
        return [ok]
    if facts.online(r.settings):
        try:
            got = facts.fetch(base, r.settings)
        except facts.HubUnreachable:  # the network dropped after the probe: offline from here on
            return [
                _table_only(r, base, found, f"{facts.offline_reason(r.settings)} and ") if found else _no_facts(r, base)
            ]
        except UserError as exc:
            return [Finding("error", "model", exc.message, r.where("base_model"), exc.hint)]
        return [
            Finding(
                "ok",
                "model",
                f"{base}: {got.architecture} ({got.model_type}), config and tokenizer fetched into the HF cache",
            )
        ]
    if found is not None:
        return [_table_only(r, base, found)]
    return [_no_facts(r, base)]


def _no_facts(r: Resolved, base: str) -> Finding:
    """No network behaves as HF_HUB_OFFLINE=1: a warning naming the command that fetches the facts."""
    return Finding(
        "warning",
        "model",
        f"no facts for {base} here (not a local folder, not in the HF cache, not in "
        f"the facts tables) and {facts.offline_reason(r.settings)}: family, size, LoRA targets, end of turn and lengths are "
        "not checked",
        r.where("base_model"),
        facts.fetch_hint(base),
    )


def check_meta(r: Resolved, counted: bool = False) -> list[Finding]:
    """A meta value that contradicts what is derived (resolver/derive.py contradictions) is an error: the
    plan, the cards, the table and the study would report the wrong model or method. counted=True: params_b
    alone, against the parameters counted on the module tree (a heavy check)."""
    import copy

    from resolver import derive
    from resolver import overrides as ov

    config = ov.apply(copy.deepcopy(r.recipe.config), r.overrides)  # as the recipe writes it, before a profile
    base = r.config["base_model"] if facts.find(r.config["base_model"], cache=r.settings.cache) else r.hub_base_model
    return [
        Finding(
            "error",
            "meta",
            f"{key} says {said!r}, but {derived!r} is derived ({source})",
            r.where(key),
            f"correct {key}, or remove it (it is derived)",
        )
        for key, said, derived, source in derive.contradictions(
            r.stated or r.recipe.meta, config, base, r.settings.cache, counted
        )
        if not counted or key == "meta.params_b"
    ]


def check_buildable(r: Resolved) -> list[Finding]:
    """A model with files here: can transformers build it? (a heavy check: the module tree, resolver/architecture.py)"""
    base = r.config["base_model"]
    found = facts.find(base, cache=r.settings.cache)
    if found is None or found.folder is None:
        return []
    problem = buildable(r, base)
    return [problem] if problem else []


def buildable(r: Resolved, base: str) -> Finding | None:
    """An error when transformers cannot build the architecture config.json names (nothing would train)."""
    from resolver import architecture

    try:
        architecture.tree(base, cache=r.settings.cache)
    except UserError as exc:
        return Finding("error", "model", exc.message, exc.where or r.where("base_model"), exc.hint)
    return None


def check_kind(r: Resolved) -> list[Finding]:
    rl = r.config.get("rl")
    if rl in SFT_ONLY_RL:
        return [
            Finding(
                "error",
                "kind",
                f"rl: {rl} is not trained by this repo (SFT, preference tuning and GRPO only)",
                r.where("rl"),
            )
        ]
    return []


def check_gguf_support(r: Resolved) -> list[Finding]:
    found = facts.find(r.config["base_model"], cache=r.settings.cache) or facts.find(
        r.hub_base_model, cache=r.settings.cache
    )
    if found is None:
        return []
    known = converter_architectures(r.settings.cache)
    if known is None:
        return []
    if found.architecture in known:
        return [Finding("ok", "gguf", f"llama.cpp's converter supports {found.architecture}")]
    return [
        Finding(
            "warning",
            "gguf",
            f"llama.cpp's converter (llama-cpp-python's) does not support "
            f"{found.architecture}: make gguf will refuse this model (training, merge and eval work)",
            r.where("base_model"),
        )
    ]


def _table_only(r: Resolved, base: str, found: facts.ModelFacts, why: str = "") -> Finding:
    return Finding(
        "warning",
        "model",
        f"{base}: {why}only the offline facts table knows it (no tokenizer here): the "
        "end of turn is checked on the named template and lengths are not measured",
        r.where("base_model"),
        facts.fetch_hint(base),
    )
