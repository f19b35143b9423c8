"""Preflight: is each assistant turn's end of turn really trained? (EOS never trained exits 0 everywhere else; the
seeds paid for that.)

With the tokenizer at hand (a local model, the HF cache, or fetched by `make check`): every eot_token must be a
token of the tokenizer and appear in the rendered template, the template's own turn terminator is read from
the rendered probe conversation (resolver/turns.py), and a probe turn is tokenized through axolotl's own prompt
strategy: its last trained label must be an end-of-turn id (eos, eot_tokens, generation_config's eos ids).
Without it: axolotl's named template is rendered; every eot_token must appear in it (an entry it never emits would
never be trained: the model would not stop), and the text after the reply is compared with the known eos and
eot_tokens; with no eos known that is a warning naming the command that fetches the tokenizer, never a pass.
"""

from __future__ import annotations

from typing import Any

from jinja2.exceptions import TemplateError

from launch.preflight.findings import Finding
from resolver import facts
from resolver.resolve import Resolved
from resolver.turns import (
    SAMPLE,
    after_reply,
    emitted,
    end_ids,
    named_template,
    render,
    sample_record,
    template_choice,
    terminator,
)

__all__ = [
    "check_end_of_turn",
    "label_level_problem",
    "missing_eot_tokens",
    "named_template",
    "render",
    "template_choice",
    "text_level_problem",
    "SAMPLE",
]


def text_level_problem(template: str, eos: str | None, eot_tokens: list[str]) -> str | None:
    """Offline: does the assistant turn end with a token that axolotl will train?"""
    allowed = [t for t in [*eot_tokens, eos] if t]
    after = after_reply(template, eos or "")
    if not allowed:
        return "no eos token known for this base model, so the end of turn cannot be checked"
    if any(after.lstrip(" ").startswith(t) for t in allowed):
        return None
    shown = after.split("\n")[0] or repr(after)
    return (
        f"assistant turns end with '{shown}', which is neither the eos ({eos}) nor in eot_tokens "
        f"({eot_tokens or 'unset'}); axolotl would never train the end of turn"
    )


EOS_UNKNOWN = "<eos-unknown-here>"  # rendered where the template writes eos_token, when no eos is known


def missing_eot_tokens(template: str, name: str, eos: str | None, eot_tokens: list[str]) -> list[tuple[str, str]]:
    """(level, message) for each eot_tokens entry the rendered template never emits: an error, or a warning when the
    entry may be the eos this machine does not know (the template writes eos_token there)."""
    text = render(template, SAMPLE, eos=eos or EOS_UNKNOWN)
    out = []
    for token in eot_tokens:
        if token in text:
            continue
        level = "warning" if eos is None and EOS_UNKNOWN in text else "error"
        maybe = " (unless it is the eos, not known here)" if level == "warning" else ""
        out.append(
            (
                level,
                f"eot_tokens names '{token}', which the rendered template '{name}' never emits{maybe}: "
                f"{emitted(template, eos or '')}",
            )
        )
    return out


def _tokenizer(config: dict[str, Any]):
    from axolotl.loaders import load_tokenizer
    from axolotl.utils.dict import DictDefault

    return load_tokenizer(
        DictDefault({**config, "tokenizer_config": config.get("tokenizer_config") or config["base_model"]})
    )


def eot_problems(config: dict[str, Any], tokenizer: Any, template: str) -> list[str]:
    """eot_tokens the tokenizer lacks or the template never emits."""
    problems = []
    vocab = tokenizer.get_vocab()
    text = render(template, SAMPLE, eos=tokenizer.eos_token or "", bos=tokenizer.bos_token or "")
    for token in config.get("eot_tokens") or []:
        if token not in vocab:
            problems.append(f"eot_tokens names '{token}', which is not a token of this tokenizer")
        elif token not in text:
            shown = emitted(template, tokenizer.eos_token or "", tokenizer.bos_token or "")
            problems.append(f"eot_tokens names '{token}', which the chat template never emits: {shown}")
    return problems


def label_level_problem(
    config: dict[str, Any], ds: dict[str, Any], generation_config: dict | None = None
) -> str | None:
    """With the real tokenizer: tokenize a probe turn through axolotl and check the trained labels."""
    from axolotl.prompt_strategies.chat_template import load as load_strategy
    from axolotl.utils.dict import DictDefault

    from data.tokens import normalized

    cfg = DictDefault({**config, "tokenizer_config": config.get("tokenizer_config") or config["base_model"]})
    tokenizer = _tokenizer(config)
    strategy = load_strategy(tokenizer, cfg, DictDefault(normalized(ds)))
    out = strategy.tokenize_prompt(sample_record(ds))
    trained = [i for i, label in zip(out["input_ids"], out["labels"], strict=True) if label != -100]
    if not trained:
        return "the sample assistant turn has no trained tokens (check roles_to_train)"
    ends = end_ids(tokenizer, config.get("eot_tokens") or [], generation_config or {})
    if trained[-1] not in ends:
        last = tokenizer.convert_ids_to_tokens(trained[-1])
        return (
            f"the last trained token of an assistant turn is {last!r}, not the end of turn "
            f"({sorted(tokenizer.convert_ids_to_tokens(list(ends)))}); set train_on_eos: turn and eot_tokens"
        )
    return None


def _with_tokenizer(r: Resolved, ds: dict, choice: str, source: str, where) -> list[Finding]:
    from resolver.architecture import tokenizer_config

    cfg = tokenizer_config(r.config, source, cache=r.settings.cache)
    tokenizer = _tokenizer(cfg)
    template = named_template(choice, cfg, tokenizer)
    problems = eot_problems(cfg, tokenizer, template)
    if problems:
        return [
            Finding("error", "end of turn", p, r.where("eot_tokens"), "list tokens the template emits")
            for p in problems
        ]
    found = facts.find(r.config["base_model"], cache=r.settings.cache) or facts.find(
        r.hub_base_model, cache=r.settings.cache
    )
    problem = label_level_problem(cfg, ds, found.generation_config() if found else {})
    if problem:
        return [
            Finding(
                "error",
                "end of turn",
                problem,
                r.where("eot_tokens"),
                "add the turn terminator to eot_tokens (and keep train_on_eos: turn)",
            )
        ]
    end = terminator(tokenizer, template)
    return [
        Finding(
            "ok",
            "end of turn",
            f"assistant turns end with {end or 'the eos'!r}, trained (template {choice}, tokenized through axolotl)",
        )
    ]


def check_end_of_turn(r: Resolved) -> list[Finding]:
    cfg, out = r.config, []
    if cfg.get("rl"):
        return []  # preference data: both sides are checked by launch/preflight/preference.py
    source = r.tokenizer_source()
    row = facts.find(r.hub_base_model, cache=r.settings.cache)
    eos = (cfg.get("special_tokens") or {}).get("eos_token") or (row.eos_token if row else None)
    for i, ds in enumerate(cfg.get("datasets") or []):
        where = r.where(f"datasets[{i}]")
        if ds.get("type") != "chat_template":
            known = source or eos
            out.append(
                Finding(
                    "ok" if known else "warning",
                    "end of turn",
                    f"{ds.get('type') if isinstance(ds.get('type'), str) else 'user-defined'} data: axolotl appends "
                    f"the tokenizer's eos ({eos or 'unknown here'}) to each completion",
                    hint=None if known else facts.fetch_hint(r.hub_base_model),
                )
            )
            continue
        choice = template_choice(cfg, ds)
        try:
            if source:
                out += _with_tokenizer(r, ds, choice, source, where)
                continue
            if choice == "tokenizer_default":
                out.append(
                    Finding(
                        "warning",
                        "end of turn",
                        f"tokenizer_default needs {r.hub_base_model}'s tokenizer, "
                        "which is not available here: the end of turn is not checked",
                        r.where("chat_template"),
                        facts.fetch_hint(r.hub_base_model),
                    )
                )
                continue
            template = named_template(choice, cfg)
            missing = missing_eot_tokens(template, choice, eos, cfg.get("eot_tokens") or [])
            problem = text_level_problem(template, eos, cfg.get("eot_tokens") or [])
        except (ValueError, KeyError, OSError, TemplateError) as exc:
            out.append(
                Finding(
                    "error",
                    "end of turn",
                    f"chat template '{choice}' could not be used: {exc}",
                    r.where("chat_template"),
                )
            )
            continue
        out += [
            Finding(
                level,
                "end of turn",
                msg,
                r.where("eot_tokens"),
                "list only tokens the template emits (its turn terminator), or pick the model's own chat_template"
                if level == "error"
                else facts.fetch_hint(r.hub_base_model),
            )
            for level, msg in missing
        ]
        if missing and any(level == "error" for level, _ in missing):
            continue
        if problem and problem.startswith("no eos token known"):
            out.append(
                Finding(
                    "warning",
                    "end of turn",
                    problem,
                    r.where("chat_template"),
                    facts.fetch_hint(r.hub_base_model),
                )
            )
        elif problem:
            out.append(
                Finding(
                    "error",
                    "end of turn",
                    problem,
                    r.where("eot_tokens"),
                    "add the turn terminator to eot_tokens (and keep train_on_eos: turn)",
                )
            )
        else:
            out.append(
                Finding(
                    "ok",
                    "end of turn",
                    f"assistant turns end with a trained end-of-turn token (rendered template '{choice}')",
                )
            )
    return out
