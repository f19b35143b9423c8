"""`make chat RUN=... [GGUF=Q4_K_M]`: a multi-turn chat with the run's model in the terminal, streamed, with the
recipe's system prompt and sampling (SYSTEM=, TEMPERATURE=, TOP_P=, MAX_NEW_TOKENS= override them).

Without GGUF= it runs the HF model (the merged one, or base + adapter before make merge / with --adapter);
GGUF=<type> runs that file of make gguf (GGUF=<path.gguf> any file) through llama.cpp with the GGUF's own chat
template. A reply ends at the template's end of turn; when MAX_NEW_TOKENS comes first the chat says so.
Commands: /reset (a new conversation), /save [file] (the session's conversations as JSONL, in the `messages`
training format), /prompt (the exact text the model was given for its last reply), /quit. Ctrl-C stops a reply;
at the prompt it leaves, as does Ctrl-D.
"""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

from core import atomic, cli, settings
from core.errors import UserError, Where
from core.settings import Settings
from tools.serve import defaults, gguf_info
from tools.serve.defaults import ChatDefaults
from tools.serve.engines import ContextFull, GgufEngine, HfEngine
from tools.serve.terminal import read_line

HELP = "/reset new conversation · /save [file] · /prompt the last reply's input · /quit (Ctrl-C stops a reply)"


class Chat:
    def __init__(self, engine, d: ChatDefaults, save_to: Path, out=sys.stdout):
        self.engine, self.d, self.save_to, self.out = engine, d, save_to, out
        self.done: list[list[dict]] = []  # conversations ended with /reset
        self.messages = self._fresh()
        self.last_prompt: str | None = None

    def _fresh(self) -> list[dict]:
        return [{"role": "system", "content": self.d.system}] if self.d.system else []

    def say(self, text: str = "", end: str = "\n") -> None:
        self.out.write(text + end)
        self.out.flush()

    def header(self) -> None:
        d = self.d
        self.say(f"model: {self.engine.name}")
        self.say(f"end of turn: {self.engine.end_of_turn or '(the eos token)'}")
        self.say(
            f"system prompt, from {d.system_from}: {d.system!r}" if d.system else f"system prompt: {d.system_from}"
        )
        top_p = f" top_p {d.top_p}" if d.top_p is not None else ""
        self.say(f"sampling: temperature {d.temperature}{top_p}, at most {d.max_new_tokens} new tokens")
        self.say(HELP)

    def save(self, arg: str) -> None:
        path = Path(arg).expanduser() if arg else self.save_to
        if arg:
            self.save_to = path
        convs = [c for c in [*self.done, self.messages] if any(m["role"] == "user" for m in c)]
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_text(path, "".join(json.dumps({"messages": c}, ensure_ascii=False) + "\n" for c in convs))
        self.say(f"saved {len(convs)} conversation(s) to {path}")

    def command(self, line: str) -> bool:
        """Handle a /command; False when the chat should end."""
        name, _, arg = line.partition(" ")
        if name in ("/quit", "/exit", "/q"):
            return False
        if name == "/reset":
            if any(m["role"] == "user" for m in self.messages):
                self.done.append(self.messages)
            self.messages = self._fresh()
            self.say("(new conversation)")
        elif name == "/save":
            self.save(arg.strip())
        elif name == "/prompt":
            self.say(self.last_prompt + "\n[end of prompt]" if self.last_prompt else "(no reply yet)")
        else:
            self.say(HELP)
        return True

    def turn(self, text: str) -> None:
        """One exchange. Ctrl-C anywhere in it, the instant the reply ends included, stops it: the conversation is
        left as it was before the turn, and the reply's generator is closed before the next prompt."""
        before = list(self.messages)
        try:
            self.messages.append({"role": "user", "content": text})
            self.last_prompt = self.engine.prompt(self.messages)
            self.say("model> ", end="")
            pieces: list[str] = []
            with closing(self.engine.stream(self.messages, self.d)) as stream:
                for piece in stream:
                    pieces.append(piece)
                    self.say(piece, end="")
            self.say()
            self.messages.append({"role": "assistant", "content": "".join(pieces)})
            if self.engine.finish == "length":
                self.say(
                    f"[cut at MAX_NEW_TOKENS={self.d.max_new_tokens} before the end of turn "
                    f"({self.engine.end_of_turn or 'eos'}); MAX_NEW_TOKENS=<n> allows longer replies]"
                )
        except KeyboardInterrupt:
            self.messages = before
            self.say(" [stopped: the reply is not kept]")
        except ContextFull as exc:
            self.messages = before
            self.say(f"[{exc}: /reset starts a new conversation]")

    def loop(self, read=read_line) -> None:
        """Until /quit, Ctrl-D or Ctrl-C at the prompt; a Ctrl-C that comes while a stopped reply is still being
        put away (a second one, pressed quickly) leaves too."""
        self.header()
        try:
            while True:
                line = read("you> ").strip()
                if not line:
                    continue
                if line.startswith("/"):
                    if not self.command(line):
                        self.say("bye")
                        return
                    continue
                self.turn(line)
        except (EOFError, KeyboardInterrupt):
            self.say("\nbye")


def open_engine(run: Path | None, gguf: str | None, adapter: bool):
    if gguf:
        return GgufEngine(gguf_info.choose(run, gguf))
    if run is None:
        raise UserError("no run to chat with", Where(key="RUN"), "make chat RUN=<run>, or GGUF=<file.gguf>")
    return HfEngine(run, adapter=adapter)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_run_arguments(parser)
    parser.add_argument(
        "--gguf", default=None, help="a GGUF type of the run (Q4_K_M, f16...) or a .gguf file (default: GGUF)"
    )
    parser.add_argument("--adapter", action="store_true", help="base model + adapter even when a merged model exists")
    parser.add_argument("--system", default=None, help="system prompt (default: SYSTEM, else the recipe's; 'none')")
    parser.add_argument(
        "--temperature",
        type=settings.flag_type("TEMPERATURE"),
        default=None,
        help="(default: TEMPERATURE, else the recipe's)",
    )
    parser.add_argument(
        "--top-p", type=settings.flag_type("TOP_P"), default=None, help="(default: TOP_P, else the recipe's)"
    )
    parser.add_argument(
        "--max-new-tokens",
        type=settings.flag_type("MAX_NEW_TOKENS"),
        default=None,
        help="(default: MAX_NEW_TOKENS, else the recipe's)",
    )
    parser.add_argument(
        "--save", default=None, help="transcript file for /save (default: <run>/chats/chat-<time>.jsonl)"
    )
    ns = parser.parse_args(argv)

    def body(s: Settings) -> None:
        gguf = ns.gguf or s.gguf
        run = gguf_info.run_of(ns, s, gguf)
        d = defaults.resolve(
            run, s, system=ns.system, temperature=ns.temperature, top_p=ns.top_p, max_new_tokens=ns.max_new_tokens
        )
        if d.max_new_tokens < 1:  # transformers refuses 0; llama.cpp reads it as "until the context is full"
            raise UserError(
                f"at most {d.max_new_tokens} new tokens: a reply needs at least one",
                Where(key="MAX_NEW_TOKENS"),
                "MAX_NEW_TOKENS=<n> (or --max-new-tokens) with n >= 1",
            )
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        save_to = Path(ns.save) if ns.save else (run / "chats" if run else s.outputs / "chats") / f"chat-{stamp}.jsonl"
        engine = open_engine(run, gguf, ns.adapter)
        try:
            Chat(engine, d, save_to).loop()
        finally:
            engine.close()

    return cli.main(body)


if __name__ == "__main__":
    sys.exit(main())
