"""`make chat` driven through a pseudo-terminal, as a person uses it: scripted turns, the reply seen arriving in
pieces (streaming), /prompt equal to transformers' apply_chat_template for the conversation so far (the model's
own chat template, system prompt included), /save writing the transcript, Ctrl-C stopping a reply and then
leaving cleanly. Once on a GGUF (llama.cpp) and once on the HF model (base + the default run's adapter).
tests/test_chat_exit.py puts the Ctrl-C at its dangerous moments."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import sys
import time
from pathlib import Path

import pytest

from core import settings
from core.paths import REPO
from tests.conftest import OFFLINE

PROMPT = "you> "


class Terminal:
    """A CLI on a pseudo-terminal; output kept as (arrival time, bytes) reads. `python` is what follows
    `python -X faulthandler` (default: the chat with `args`)."""

    def __init__(self, args: list[str], env: dict, python: list[str] | None = None):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: the chat, with the pty as its terminal
            os.chdir(REPO)
            argv = python or ["-m", "tools.serve.chat", *args]
            os.execve(sys.executable, [sys.executable, "-X", "faulthandler", *argv], env)
        self.reads: list[bytes] = []

    def text(self, start: int = 0) -> str:
        return b"".join(self.reads[start:]).decode(errors="replace").replace("\r\n", "\n")

    def until(self, marker: str, start: int, timeout: float = 240) -> str:
        deadline = time.time() + timeout
        while marker not in self.text(start):
            if time.time() > deadline:
                raise AssertionError(f"no {marker!r} after: {self.text(start)[-2000:]}")
            ready, _, _ = select.select([self.fd], [], [], 1)
            if ready:
                try:
                    self.reads.append(os.read(self.fd, 4096))
                except OSError:  # the child closed the terminal
                    raise AssertionError(f"exited before {marker!r}: {self.text(start)[-2000:]}") from None
        return self.text(start)

    def send(self, data: str) -> int:
        mark = len(self.reads)
        os.write(self.fd, data.encode())
        return mark

    def turn(self, line: str) -> tuple[str, int]:
        """Send a line; (what came back up to the next prompt, how many separate reads carried it)."""
        mark = self.send(line + "\n")
        return self.until(PROMPT, mark), len(self.reads) - mark

    def exit_status(self, timeout: float = 60) -> int:
        deadline = time.time() + timeout
        while time.time() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                return os.waitstatus_to_exitcode(status)
            try:  # keep draining so the child never blocks on a full terminal
                if select.select([self.fd], [], [], 0.2)[0]:
                    self.reads.append(os.read(self.fd, 4096))
            except OSError:
                time.sleep(0.2)
        os.kill(self.pid, signal.SIGABRT)  # faulthandler shows where each thread of the chat is
        end, reaped = time.time() + 10, False
        while time.time() < end and not reaped:
            reaped = bool(os.waitpid(self.pid, os.WNOHANG)[0])
            try:
                if select.select([self.fd], [], [], 0.2)[0]:
                    self.reads.append(os.read(self.fd, 65536))
            except OSError:
                time.sleep(0.2)
        if not reaped:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        raise AssertionError(f"still running: {self.text()[-6000:]}")


def reply_of(echo: str) -> str:
    """The model's words in what the terminal showed for a turn (without a MAX_NEW_TOKENS notice)."""
    return echo.split("model> ", 1)[1].rsplit(PROMPT, 1)[0].split("\n[cut at MAX_NEW_TOKENS=", 1)[0].strip()


def chat_session(args: list[str], env: dict, tok, tmp_path, first: str, second: str, must_end: bool = True):
    """Two turns, /prompt, /save, Ctrl-C during a reply and at the prompt. With `must_end` both replies must end
    at the end of turn; without (a barely trained model may ramble), a reply the chat says it cut must be
    MAX_NEW_TOKENS long, and one it does not must be shorter."""
    term = Terminal(args, env)
    term.until(PROMPT, 0, timeout=300)
    header = term.text()
    one, reads_one = term.turn(first)
    two, _ = term.turn(second)
    prompt_echo, _ = term.turn("/prompt")
    transcript = tmp_path / "chat.jsonl"
    saved, _ = term.turn(f"/save {transcript}")
    assert f"saved 1 conversation(s) to {transcript}" in saved
    [line] = transcript.read_text().splitlines()
    messages = json.loads(line)["messages"]
    # streaming: the first reply reached the terminal in several pieces, not at once
    assert reads_one >= 4, (reads_one, one)
    assert [m["role"] for m in messages][-4:] == ["user", "assistant", "user", "assistant"]
    assert messages[-4]["content"] == first and messages[-2]["content"] == second
    assert reply_of(one) == messages[-3]["content"].strip() != ""
    assert reply_of(two) == messages[-1]["content"].strip() != ""
    limit = int(env["MAX_NEW_TOKENS"])
    for echo in (one, two):
        cut = "[cut at MAX_NEW_TOKENS" in echo
        assert not (cut and must_end), echo  # the reply ended at the template's end of turn
        n = len(tok(reply_of(echo), add_special_tokens=False)["input_ids"])
        assert n >= limit - 8 if cut else n < limit, (n, echo)
    # the second reply's input: the model's chat template over the conversation so far
    want = tok.apply_chat_template(messages[:-1], tokenize=False, add_generation_prompt=True)
    shown = prompt_echo.split("/prompt\n", 1)[1].split("\n[end of prompt]", 1)[0]
    assert shown == want
    # Ctrl-C during a reply stops it (the reply is not kept); Ctrl-C at the prompt leaves
    mark = term.send("Write a very long story about a lighthouse keeper, in many chapters.\n")
    term.until("model> ", mark)
    time.sleep(0.5)
    term.send("\x03")
    term.until("[stopped: the reply is not kept]", mark)
    while PROMPT not in term.text(mark).split("[stopped", 1)[1]:
        term.until(PROMPT, len(term.reads))
    term.send("\x03")
    assert term.exit_status() == 0
    assert "bye" in term.text() and "Traceback" not in term.text()
    return header, messages


@pytest.fixture(scope="module")
def smollm2_tokenizer():
    from transformers import AutoTokenizer

    from tools.tiny_models import smollm2_dir

    return AutoTokenizer.from_pretrained(smollm2_dir(settings.load().cache))


def smollm2_gguf() -> Path:
    from resolver.local_models import gguf_file
    from resolver.registry import load_recipe

    return gguf_file(load_recipe("smollm2-135m-cpu").meta.local_source)


def gguf_env(tmp_path) -> tuple[str, dict]:
    env = {**os.environ, **OFFLINE, "PYTHONPATH": str(REPO), "OUTPUTS": str(tmp_path / "outputs")}
    for name in ("RUN", "SYSTEM", "GGUF"):
        env.pop(name, None)
    return str(smollm2_gguf()), env


@pytest.mark.slow
def test_chat_on_a_gguf_through_a_terminal(smollm2_tokenizer, tmp_path):
    gguf, env = gguf_env(tmp_path)
    env.update(TEMPERATURE="0", MAX_NEW_TOKENS="200", SYSTEM="You answer in one short sentence.")
    header, messages = chat_session(
        [f"--gguf={gguf}"], env, smollm2_tokenizer, tmp_path, "What is the capital of France?", "And of Italy?"
    )
    assert "end of turn: <|im_end|>" in header and "from SYSTEM=" in header
    assert messages[0] == {"role": "system", "content": "You answer in one short sentence."}
    assert "Paris" in messages[2]["content"]


@pytest.mark.slow
def test_chat_on_the_hf_adapter_through_a_terminal(default_run, smollm2_tokenizer, tmp_path):
    run, _ = default_run
    env = {**os.environ, **OFFLINE, "PYTHONPATH": str(REPO), "TEMPERATURE": "0", "MAX_NEW_TOKENS": "96"}
    for name in ("RUN", "SYSTEM", "GGUF"):
        env.pop(name, None)
    header, messages = chat_session(
        [f"--run={run}", "--adapter"],
        env,
        smollm2_tokenizer,
        tmp_path,
        "What is the capital of France?",
        "And of Italy?",
        must_end=False,  # 3 training steps: its greedy replies may loop until MAX_NEW_TOKENS
    )
    # the recipe's system prompt: the one its training conversations use
    assert "from the training data (philosophy_chat.train.jsonl" in header and "+ adapter" in header
    assert messages[0]["role"] == "system" and "writing companion" in messages[0]["content"]
