"""Is each assistant turn's end-of-turn token really trained?

Two depths: with a local tokenizer, tokenize a sample through axolotl's own prompt strategy and look at
the labels; offline for a hub model, render axolotl's named chat template and look at the text that
follows the assistant's words. (EOS never trained exits 0 everywhere else; the seeds paid for that.)
"""

from __future__ import annotations

from typing import Any

from launch.preflight.findings import Finding
from launch.recipe import architecture as arch
from launch.recipe.resolve import Resolved

SENTINEL = "Sentinel-reply-7Q"
SAMPLE = [{"role": "user", "content": "Hello there"}, {"role": "assistant", "content": SENTINEL}]


def template_choice(config: dict, ds: dict) -> str | None:
    return ds.get("chat_template") or config.get("chat_template")


def named_template(choice: str, config: dict) -> str:
    from axolotl.utils.chat_templates import get_chat_template

    return get_chat_template(choice, jinja_template=config.get("chat_template_jinja"))


def render(template: str, messages: list[dict], eos: str = "", bos: str = "") -> str:
    from jinja2.exceptions import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise TemplateError(message)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals.update(raise_exception=raise_exception, strftime_now=lambda fmt: "")
    return env.from_string(template).render(
        messages=messages, eos_token=eos, bos_token=bos, add_generation_prompt=False
    )


def terminator_after_reply(template: str, eos: str) -> str:
    """The text the template puts right after the assistant's words (first 40 chars)."""
    text = render(template, SAMPLE, eos=eos)
    if SENTINEL not in text:
        raise ValueError("the template dropped the assistant turn")
    return text.split(SENTINEL, 1)[1][:40]


def text_level_problem(template: str, eos: str | None, eot_tokens: list[str]) -> str | None:
    """Offline: does the assistant turn end with a token that axolotl will train?"""
    allowed = [t for t in [*eot_tokens, eos] if t]
    after = terminator_after_reply(template, eos or "")
    if not allowed:
        return "no eos token known for this base model, so the end of turn cannot be checked"
    if any(after.lstrip(" ").startswith(t) for t in allowed):
        return None
    shown = after.split("\n")[0] or repr(after)
    return (
        f"assistant turns end with '{shown}', which is neither the eos ({eos}) nor in eot_tokens "
        f"({eot_tokens or 'unset'}); axolotl would never train the end of turn"
    )


def label_level_problem(config: dict[str, Any], ds: dict[str, Any]) -> str | None:
    """With the real tokenizer: tokenize a sample through axolotl and check the trained labels."""
    from axolotl.loaders import load_tokenizer
    from axolotl.prompt_strategies.chat_template import load as load_strategy
    from axolotl.utils.dict import DictDefault

    cfg = DictDefault({**config, "tokenizer_config": config.get("tokenizer_config") or config["base_model"]})
    tokenizer = load_tokenizer(cfg)
    strategy = load_strategy(tokenizer, cfg, DictDefault(ds))
    field = ds.get("field_messages", "messages")
    out = strategy.tokenize_prompt({field: SAMPLE})
    trained = [i for i, label in zip(out["input_ids"], out["labels"], strict=True) if label != -100]
    if not trained:
        return "the sample assistant turn has no trained tokens (check roles_to_train)"
    ends = {tokenizer.convert_tokens_to_ids(t) for t in (config.get("eot_tokens") or [])}
    ends.add(tokenizer.eos_token_id)
    if trained[-1] not in ends:
        last = tokenizer.convert_ids_to_tokens(trained[-1])
        return (
            f"the last trained token of an assistant turn is {last!r}, not the end of turn "
            f"({sorted(tokenizer.convert_ids_to_tokens(list(ends)))}); set train_on_eos: turn and eot_tokens"
        )
    return None


def check_end_of_turn(r: Resolved) -> list[Finding]:
    cfg, out = r.config, []
    facts = arch.facts_for(r.hub_base_model) or {}
    eos = (cfg.get("special_tokens") or {}).get("eos_token") or facts.get("eos_token")
    for ds in cfg.get("datasets") or []:
        if isinstance(ds.get("type"), dict):
            ok = r.tokenizer_source() or eos
            out.append(
                Finding(
                    "ok" if ok else "warning",
                    "end of turn",
                    f"prompt/completion: axolotl appends the tokenizer's eos ({eos or 'unknown'}) to each completion",
                )
            )
            continue
        if ds.get("type") != "chat_template":
            continue
        choice = template_choice(cfg, ds)
        where = r.recipe.where("chat_template")
        if not choice:
            out.append(
                Finding(
                    "error",
                    "end of turn",
                    "chat template is not set",
                    where,
                    "set chat_template (e.g. chatml, llama3, qwen3, gemma3) or tokenizer_default",
                )
            )
            continue
        try:
            source = r.tokenizer_source()
            if source:
                problem = label_level_problem({**cfg, "tokenizer_config": source}, ds)
                depth = "tokenized through axolotl"
            elif choice == "tokenizer_default":
                out.append(
                    Finding(
                        "warning",
                        "end of turn",
                        "tokenizer_default needs the tokenizer, which is on the hub; not checked offline",
                        where,
                        "name the template instead (e.g. chatml)",
                    )
                )
                continue
            else:
                template = named_template(choice, cfg)
                problem = text_level_problem(template, eos, cfg.get("eot_tokens") or [])
                depth = f"rendered template '{choice}'"
        except (ValueError, KeyError, OSError) as exc:
            out.append(Finding("error", "end of turn", f"chat template '{choice}' could not be used: {exc}", where))
            continue
        if problem:
            out.append(
                Finding(
                    "error",
                    "end of turn",
                    problem,
                    r.recipe.where("eot_tokens"),
                    "add the turn terminator to eot_tokens (and keep train_on_eos: turn)",
                )
            )
        else:
            out.append(Finding("ok", "end of turn", f"assistant turns end with a trained end-of-turn token ({depth})"))
    return out
