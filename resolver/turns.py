"""Chat templates and the end of a turn, for any tokenizer: render the model's own template (or axolotl's named
one) on a probe conversation and read what follows the assistant's words; the first token of that text is the
turn terminator, whatever the family calls it (<|im_end|>, <|eot_id|>, <end_of_turn>, </s>, ...)."""

from __future__ import annotations

import re
from typing import Any

SENTINEL = "Sentinel-reply-7Q"
SAMPLE = [{"role": "user", "content": "Hello there"}, {"role": "assistant", "content": SENTINEL}]


def template_choice(config: dict, ds: dict) -> str | None:
    """The chat template a chat_template dataset entry trains with (axolotl: the entry's, then the config's,
    then the tokenizer's own)."""
    choice = ds.get("chat_template") or config.get("chat_template")
    if choice:
        return str(choice)
    return "tokenizer_default" if ds.get("type") == "chat_template" else None


def named_template(choice: str, config: dict, tokenizer: Any = None) -> str:
    """The jinja text of a template choice: axolotl's named one, a jinja string, or the tokenizer's own."""
    from axolotl.utils.chat_templates import get_chat_template

    return get_chat_template(choice, jinja_template=config.get("chat_template_jinja"), tokenizer=tokenizer)


def render(
    template: str, messages: list[dict], eos: str = "", bos: str = "", add_generation_prompt: bool = False
) -> str:
    """Render like transformers' apply_chat_template does (sandboxed jinja, trim/lstrip blocks)."""
    from jinja2.exceptions import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise TemplateError(message)

    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols", _generation_extension()]
    )
    env.globals.update(raise_exception=raise_exception, strftime_now=lambda fmt: "")
    return env.from_string(template).render(
        messages=messages, eos_token=eos, bos_token=bos, add_generation_prompt=add_generation_prompt
    )


def _generation_extension():
    """transformers' {% generation %}...{% endgeneration %} tag (it marks the assistant's tokens; phi_4, llava):
    rendered as its body, as apply_chat_template renders it."""
    from jinja2 import nodes
    from jinja2.ext import Extension

    class Generation(Extension):
        tags = {"generation"}

        def parse(self, parser):
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return nodes.CallBlock(self.call_method("_body"), [], [], body).set_lineno(lineno)

        def _body(self, caller):
            return caller()

    return Generation


def after_reply(template: str, eos: str = "", bos: str = "") -> str:
    """The text the template puts right after the assistant's words (first 40 characters)."""
    text = render(template, SAMPLE, eos=eos, bos=bos)
    if SENTINEL not in text:
        raise ValueError("the template dropped the assistant turn")
    return text.split(SENTINEL, 1)[1][:40]


# what a template emits that looks like a special token: <|im_end|>, <end_of_turn>, </s>, [INST], [/INST]
MARKER = re.compile(
    r"<\|[^<>|\s]{1,40}\|>|</?[A-Za-z_][^<>\s]{0,38}>|\[/?[A-Z][A-Z_]{1,20}\]|\[\|[^\[\]|\s]{1,40}\|\]"
    r"|<\uff5c[^<>\uff5c]{1,40}\uff5c>"  # DeepSeek's full-width bars: <｜end▁of▁sentence｜>
)


def emitted(template: str, eos: str = "", bos: str = "") -> str:
    """What a template emits, for a message: the text after the assistant's words and every special-looking
    marker of the rendered probe conversation, e.g. "assistant turns end with '<|im_end|>\\n'; it emits
    <|im_start|>, <|im_end|>"."""
    text = render(template, SAMPLE, eos=eos, bos=bos)
    markers = list(dict.fromkeys(MARKER.findall(text)))
    after = text.split(SENTINEL, 1)[1][:40] if SENTINEL in text else ""
    return f"assistant turns end with {after!r}; it emits {', '.join(markers) or 'no special-looking markers'}"


def terminator(tokenizer: Any, template: str) -> str | None:
    """The token that ends an assistant turn in `template` rendered with this tokenizer, or None when the reply is
    followed by plain text (or nothing) rather than a single special token."""
    after = after_reply(template, tokenizer.eos_token or "", tokenizer.bos_token or "").lstrip(" ")
    if not after:
        return None
    ids = tokenizer(after, add_special_tokens=False)["input_ids"]
    if not ids:
        return None
    first = tokenizer.convert_ids_to_tokens(ids[0])
    special = set(tokenizer.all_special_tokens) | set(getattr(tokenizer, "added_tokens_encoder", {}))
    return first if first in special else None


def end_ids(tokenizer: Any, eot_tokens: list[str], generation_config: dict) -> set[int]:
    """Every id that ends a turn: the tokenizer's eos, the configured eot_tokens, generation_config's eos ids."""
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    ids |= {tokenizer.convert_tokens_to_ids(t) for t in eot_tokens}
    gen = generation_config.get("eos_token_id")
    ids |= set(gen if isinstance(gen, list) else [gen] if gen is not None else [])
    return {i for i in ids if isinstance(i, int)}


def sample_record(ds: dict) -> dict[str, Any]:
    """SAMPLE in the dataset entry's own shape (field_messages, message_property_mappings, role names)."""
    field = ds.get("field_messages") or "messages"
    mapping = dict(ds.get("message_property_mappings") or {})
    role_key = mapping.get("role") or ds.get("message_field_role") or "role"
    content_key = mapping.get("content") or ds.get("message_field_content") or "content"
    roles = ds.get("roles") or {}

    def source_name(target: str) -> str:
        names = roles.get(target)
        return (names[0] if isinstance(names, list) and names else names) or target

    return {field: [{role_key: source_name(m["role"]), content_key: m["content"]} for m in SAMPLE]}
