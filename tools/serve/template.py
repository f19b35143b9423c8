"""A GGUF's chat template rendered the way llama-cpp-python renders it for create_chat_completion (its
Jinja2ChatFormatter: the same sandbox, trim_blocks/lstrip_blocks, raise_exception), and the end-of-turn text
that follows an assistant reply in that template."""

from __future__ import annotations

SENTINEL = "Zq7ReplyEndsHereZq7"


class TemplateRefused(Exception):
    """The template raised (raise_exception) or failed for this conversation."""


def render(
    template: str, messages: list[dict], bos: str = "", eos: str = "", add_generation_prompt: bool = True
) -> str:
    from jinja2.exceptions import TemplateError
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    fmt = Jinja2ChatFormatter(template, eos_token=eos, bos_token=bos, add_generation_prompt=add_generation_prompt)
    try:
        return fmt(messages=messages).prompt
    except (TemplateError, ValueError, TypeError, KeyError, IndexError) as exc:
        raise TemplateRefused(str(exc)) from None


def after_reply(template: str, bos: str = "", eos: str = "") -> str:
    """The text the template writes right after an assistant reply (up to the next user turn)."""
    msgs = [
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": SENTINEL},
        {"role": "user", "content": "Again"},
    ]
    text = render(template, msgs, bos, eos, add_generation_prompt=False)
    if SENTINEL not in text:
        raise TemplateRefused("the template dropped the assistant turn")
    return text.split(SENTINEL, 1)[1].split("Again", 1)[0]


def end_of_turn(template: str, specials: list[str], bos: str = "", eos: str = "") -> str | None:
    """The special token that ends an assistant turn (<|im_end|>, <|eot_id|>, <end_of_turn>, </s>...): the longest
    special token the text after a reply starts with; None when the reply is followed by no special token."""
    after = after_reply(template, bos, eos).lstrip(" ")
    found = [s for s in {*specials, eos} if s and after.startswith(s)]
    return max(found, key=len) if found else None
