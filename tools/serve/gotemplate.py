"""A jinja chat template as an Ollama (Go text/template) template, found by rendering, not by name.

The template is rendered for probe conversations whose contents are unique markers; the text around the
markers gives what it writes before the first message (per role), between each pair of consecutive roles,
and after the last user message (the generation prompt included). That covers ChatML, Llama 3, Gemma (the
system prompt folded into the first user turn), Mistral-like [INST] templates and default system prompts.
The derived pieces are then checked against the jinja rendering of realistic conversations; a template whose
text depends on anything else (position from the end, tools, today's date...) is refused, naming the
constructs in it that Ollama's template language cannot follow.

A leading BOS is left out when the tokenizer adds it itself (llama.cpp and Ollama both do then)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from core.errors import UserError, Where
from tools.serve.template import TemplateRefused, render

MARK = {"system": "Zs1Qx", "user": "Zu1Qx", "assistant": "Za1Qx", "user2": "Zu2Qx"}
FIRST_ROLES = ("system", "user")
# realistic conversations the derived template must reproduce exactly (multi-line, quotes, braces, unicode)
SYSTEM = "You are a careful assistant.\nAnswer briefly."
U1, A1 = 'What is "wonder"?', "Wonder is surprise at the ordinary {like {{this}}}."
U2, A2, U3 = "And awe?\n\nSay more.", "Awe is wonder with fear in it — vaster.", "Thanks! 谢谢"
CHECKS = [
    [{"role": "user", "content": U1}],
    [{"role": "system", "content": SYSTEM}, {"role": "user", "content": U1}],
    [{"role": "user", "content": U1}, {"role": "assistant", "content": A1}, {"role": "user", "content": U2}],
    [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": U1},
        {"role": "assistant", "content": A1},
        {"role": "user", "content": U2},
    ],
    [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": U1},
        {"role": "assistant", "content": A1},
        {"role": "user", "content": U2},
        {"role": "assistant", "content": A2},
        {"role": "user", "content": U3},
    ],
]
KNOWN_NAMES = {"messages", "bos_token", "eos_token", "add_generation_prompt", "raise_exception"}


@dataclass
class Pieces:
    head: dict[str, str]  # role of the first message -> text before its content
    between: dict[tuple[str, str], str]  # (previous role, role) -> text between their contents
    end: str  # after the last user message: its end of turn and the generation prompt
    system: bool = True  # the template accepts a system message
    trims: bool = False  # the template strips whitespace around contents (Ollama's template cannot)
    notes: list[str] = field(default_factory=list)

    def render(self, messages: list[dict]) -> str:
        """What the Go template below writes for `messages` (the same logic, in Python)."""
        out, prev = [], None
        for m in messages:
            if m["role"] == "system" and not self.system:
                continue
            out.append(
                self.head.get(m["role"], self.head["user"]) if prev is None else self.between.get((prev, m["role"]), "")
            )
            out.append(m["content"])
            prev = m["role"]
        if prev == "user":
            out.append(self.end)
        return "".join(out)


class Untranslatable(UserError):
    pass


def _split(text: str, marks: list[str]) -> list[str] | None:
    """text around each mark, in order; None unless every mark is there exactly once and in order."""
    out, rest = [], text
    for m in marks:
        if text.count(m) != 1 or m not in rest:
            return None
        before, rest = rest.split(m, 1)
        out.append(before)
    return [*out, rest]


def constructs(template: str) -> list[str]:
    """Jinja constructs in `template` that a per-message Ollama template cannot follow."""
    from jinja2 import nodes
    from jinja2.ext import loopcontrols
    from jinja2.meta import find_undeclared_variables
    from jinja2.sandbox import ImmutableSandboxedEnvironment
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    env = ImmutableSandboxedEnvironment(extensions=[Jinja2ChatFormatter.IgnoreGenerationTags, loopcontrols])
    try:
        ast = env.parse(template)
    except Exception as exc:  # noqa: BLE001 - a template jinja cannot parse: say so
        return [f"a jinja syntax error ({exc})"]
    found = []
    for n in ast.find_all(nodes.Getattr):
        if (
            isinstance(n.node, nodes.Name)
            and n.node.name == "loop"
            and n.attr in ("last", "revindex", "revindex0", "length")
        ):
            found.append(f"loop.{n.attr}")
    for n in ast.find_all(nodes.Call):
        if isinstance(n.node, nodes.Name) and n.node.name in ("namespace", "strftime_now"):
            found.append(f"{n.node.name}()")
    for n in ast.find_all(nodes.Getitem):
        if isinstance(n.node, nodes.Name) and n.node.name == "messages":
            arg = n.arg
            if not (isinstance(arg, nodes.Const) and arg.value == 0):
                found.append("messages[...] (a message picked by position)")
    for n in ast.find_all(nodes.Filter):
        if n.name in ("length", "last", "reverse", "selectattr", "rejectattr") and isinstance(n.node, nodes.Name):
            found.append(f"{n.node.name} | {n.name}")
    found += [f"the variable '{v}'" for v in sorted(find_undeclared_variables(ast) - KNOWN_NAMES)]
    return sorted(set(found))


def _refuse(what: str, template: str, where: Where | None) -> Untranslatable:
    named = constructs(template)
    why = f"; constructs in it that Ollama's template language cannot follow: {', '.join(named)}" if named else ""
    return Untranslatable(
        f"the chat template cannot be written as an Ollama template: {what}{why}",
        where,
        "write the Modelfile's TEMPLATE by hand (https://github.com/ollama/ollama/blob/main/docs/template.md), "
        "or train with a plainer chat template (chatml, llama3, gemma3)",
    )


def derive(template: str, bos: str = "", eos: str = "", add_bos: bool = False, where: Where | None = None) -> Pieces:
    def probe(roles: list[str]) -> list[str] | None:
        msgs, marks = [], []
        for r in roles:
            mark = MARK["user2"] if r == "user" and MARK["user"] in marks else MARK[r]
            msgs.append({"role": r, "content": mark})
            marks.append(mark)
        text = render(template, msgs, bos, eos, add_generation_prompt=True)
        if add_bos and bos and text.startswith(bos):
            text = text[len(bos) :]
        return _split(text, marks)

    try:
        plain = probe(["user", "assistant", "user"])
    except TemplateRefused as exc:
        raise _refuse(f"it refuses a plain user/assistant/user conversation ({exc})", template, where) from None
    if plain is None:
        raise _refuse("it does not write each message's content once, in order", template, where)
    head_u, j_ua, j_au, end = plain
    pieces = Pieces(head={"user": head_u}, between={("user", "assistant"): j_ua, ("assistant", "user"): j_au}, end=end)
    try:
        with_system = probe(["system", "user", "assistant", "user"])
    except TemplateRefused as exc:
        pieces.system = False
        pieces.notes.append(f"the chat template refuses system messages ({exc}): system messages are left out")
        with_system = None
    if pieces.system:
        if with_system is None:
            raise _refuse("it does not write a system message's content once, before the rest", template, where)
        pieces.head["system"], pieces.between[("system", "user")] = with_system[0], with_system[1]
    padded = render(template, [{"role": "user", "content": f"  {MARK['user']}  "}], bos, eos)
    if f"  {MARK['user']}  " not in padded:
        pieces.trims = True
        pieces.notes.append("the chat template strips spaces around each message; this template keeps them")
    return pieces


def check(pieces: Pieces, template: str, bos: str, eos: str, add_bos: bool, where: Where | None) -> None:
    for msgs in CHECKS:
        if not pieces.system and any(m["role"] == "system" for m in msgs):
            continue
        want = render(template, msgs, bos, eos, add_generation_prompt=True)
        if add_bos and bos and want.startswith(bos):
            want = want[len(bos) :]
        got = pieces.render(msgs)
        if got != want:
            i = next((k for k, (a, b) in enumerate(zip(got, want, strict=False)) if a != b), min(len(got), len(want)))
            roles = ", ".join(m["role"] for m in msgs)
            raise _refuse(
                f"for a {roles} conversation it writes {want[i : i + 40]!r} at character {i}, where a "
                f"per-message template writes {got[i : i + 40]!r}",
                template,
                where,
            )


def _lit(text: str) -> str:
    """Literal template text; quoted as a Go string when it holds template delimiters or a Modelfile's \"\"\"."""
    if "{{" in text or "}}" in text or '"""' in text:
        return "{{ " + json.dumps(text, ensure_ascii=False) + " }}"
    return text


def go_template(p: Pieces) -> str:
    """The Go template. Literal text is never next to a whitespace-trimming {{- or -}}: trims only join actions."""
    parts: list[tuple[str, str]] = [("act", '$prev := ""'), ("act", "range .Messages")]
    if not p.system:
        parts.append(("act", 'if ne .Role "system"'))
    parts.append(("act", 'if eq $prev ""'))
    if p.system:
        parts += [("act", 'if eq .Role "system"'), ("lit", p.head["system"]), ("act", "else")]
    parts.append(("lit", p.head["user"]))
    if p.system:
        parts.append(("act", "end"))
    for (a, b), text in p.between.items():
        parts += [("act", f'else if and (eq $prev "{a}") (eq .Role "{b}")'), ("lit", text)]
    parts += [("act", "end"), ("act", ".Content"), ("act", "$prev = .Role")]
    if not p.system:
        parts.append(("act", "end"))
    parts += [("act", "end"), ("act", 'if eq $prev "user"'), ("lit", p.end), ("act", "end")]
    out, last = [], None
    for kind, text in parts:
        if kind == "lit":
            if text:
                out.append(_lit(text))
                last = "lit"
            continue
        out.append(("{{ " if last == "lit" else ("\n{{- " if last else "{{- ")) + text + " }}")
        last = "act"
    return "".join(out)


def translate(
    template: str, bos: str = "", eos: str = "", add_bos: bool = False, where: Where | None = None
) -> tuple[str, Pieces]:
    """(Go template, the pieces it was built from) or Untranslatable naming why."""
    pieces = derive(template, bos, eos, add_bos, where)
    check(pieces, template, bos, eos, add_bos, where)
    return go_template(pieces), pieces
