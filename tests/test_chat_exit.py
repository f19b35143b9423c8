"""`make chat`'s Ctrl-C at its dangerous moments, made deterministic instead of left to timing: one that no system
call of the chat's main thread sees (what a Ctrl-C landing between the prompt's write and the read leaves: the cause of
a chat that outlived its Ctrl-C under load), one at each point of a turn, and an HF reply thread that fails or is
stopped."""

from __future__ import annotations

import io
import os
import pty
import signal
import threading

import pytest

from tests.test_chat import PROMPT, Terminal, gguf_env, smollm2_gguf


class CtrlCElsewhere:
    """A SIGINT the chat's main thread is never woken by: another thread of the same process takes it, so no system
    call of the main thread returns EINTR. That is what a Ctrl-C landing between the prompt's write and the read()
    leaves behind (Python's handler has run, the read has not begun); here it comes at a moment the test chooses."""

    def __init__(self):
        self.read_end, self.write_end = os.pipe()
        os.set_inheritable(self.read_end, True)

    def child_code(self) -> str:  # what the child runs before the chat: a thread that waits for the word
        return (
            "import os, signal, sys, threading\n"
            "def take(): os.read(int(sys.argv[1]), 1); signal.pthread_kill(threading.get_ident(), signal.SIGINT)\n"
            "threading.Thread(target=take, daemon=True).start()\n"
            "from tools.serve import chat\n"
            "sys.exit(chat.main(sys.argv[2:]))\n"
        )

    def press(self) -> None:
        os.write(self.write_end, b"!")


def test_the_chat_leaves_on_a_ctrl_c_that_no_read_sees(tmp_path):
    """The cause of `make chat` outliving its Ctrl-C at the prompt under load: input() blocked in read() after the
    signal had already been handled. The chat must leave on such a Ctrl-C, whenever it lands."""
    gguf, env = gguf_env(tmp_path)
    ctrl_c = CtrlCElsewhere()
    term = Terminal([], env, python=["-c", ctrl_c.child_code(), str(ctrl_c.read_end), f"--gguf={gguf}"])
    os.close(ctrl_c.read_end)
    term.until(PROMPT, 0, timeout=300)
    ctrl_c.press()
    assert term.exit_status() == 0
    os.close(ctrl_c.write_end)
    assert term.text().rstrip().endswith("bye") and "Traceback" not in term.text()


def tty_pair():
    """(the terminal's side, a file reading the chat's side, a file writing to it): a real pseudo-terminal."""
    master, slave = pty.openpty()
    return master, open(slave, encoding="utf-8"), open(os.dup(slave), "w", encoding="utf-8")


def test_the_prompt_ends_on_a_ctrl_c_that_no_read_sees():
    """The prompt alone, in process: the SIGINT comes once the prompt is on the terminal, taken by another thread.
    If the read never ends, the other thread types a line after a minute so that the test fails instead of hanging."""
    from tools.serve.terminal import read_line

    master, stdin, out = tty_pair()
    done, typed = threading.Event(), threading.Event()

    def ctrl_c_once_the_prompt_shows() -> None:
        seen = b""
        while PROMPT.encode() not in seen:
            seen += os.read(master, 1024)
        signal.pthread_kill(threading.get_ident(), signal.SIGINT)
        if not done.wait(60):
            typed.set()
            os.write(master, b"a line\n")

    other = threading.Thread(target=ctrl_c_once_the_prompt_shows)
    other.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            read_line(PROMPT, stdin, out)
    finally:
        done.set()
        other.join()
    assert not typed.is_set(), "the prompt waited for a line after its Ctrl-C"
    os.write(master, "une ligne: é\n".encode())
    assert read_line(PROMPT, stdin, out) == "une ligne: é"
    os.write(master, b"\x04")  # Ctrl-D at the start of a line
    with pytest.raises(EOFError):
        read_line(PROMPT, stdin, out)
    for f in (stdin, out):
        f.close()
    os.close(master)


def test_a_reply_of_no_tokens_is_refused_before_the_model_loads(tmp_path, capsys, monkeypatch):
    from tools.serve import chat

    gguf, env = gguf_env(tmp_path)
    monkeypatch.setenv("OUTPUTS", env["OUTPUTS"])
    with pytest.raises(SystemExit) as ended:  # argparse: the flag is checked as MAX_NEW_TOKENS is
        chat.main([f"--gguf={gguf}", "--max-new-tokens=0"])
    err = capsys.readouterr().err
    assert ended.value.code == 2 and "MAX_NEW_TOKENS must be a whole number >= 1, not '0'" in err, err


@pytest.fixture(scope="module")
def tiny_hf_run(tiny_model, tmp_path_factory):
    """A run whose merged model is the session's tiny random Llama (SmolLM2's tokenizer and chat template)."""
    from core import manifest
    from core.manifest import RecipeRef, TrainSection
    from core.sections import MergeSection

    run = tmp_path_factory.mktemp("tiny-hf-run")
    manifest.create(run, TrainSection(recipe=RecipeRef(name="smollm2-135m-cpu")))
    manifest.write_sections(run, merge=MergeSection(path=str(tiny_model("llama"))))
    return run


QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.mark.timeout(300)  # the defect was a wait without end: fail instead of hanging the suite
def test_an_hf_generation_that_fails_in_its_thread_raises_in_the_chat(tiny_hf_run):
    from tools.serve.defaults import ChatDefaults
    from tools.serve.engines import HfEngine

    engine = HfEngine(tiny_hf_run)
    with pytest.raises(ValueError, match="max_new_tokens"):  # transformers refuses 0 new tokens, in generate's thread
        list(engine.stream(QUESTION, ChatDefaults(None, "", 0.0, None, max_new_tokens=0)))
    engine.close()


def test_an_hf_reply_stopped_mid_way_leaves_no_generation_running(tiny_hf_run):
    """What Chat.turn does on Ctrl-C (close the reply's generator): generation stops at the next token, its thread
    has ended when close() returns, and the next reply starts clean."""
    from tools.serve.defaults import ChatDefaults
    from tools.serve.engines import HfEngine

    engine = HfEngine(tiny_hf_run)
    long = ChatDefaults(None, "", 0.0, None, max_new_tokens=900)  # a random model does not end its turn
    stream = engine.stream(QUESTION, long)
    next(stream)
    stream.close()
    assert not engine._worker.is_alive()
    pieces = list(engine.stream(QUESTION, ChatDefaults(None, "", 0.0, None, max_new_tokens=4)))
    assert pieces and engine.finish == "length"
    engine.close()
    assert not engine._worker.is_alive()


class CtrlCAt(io.StringIO):
    """The chat's terminal, where Ctrl-C lands (once, when armed) the instant a write matching `moment` happens."""

    def __init__(self, moment):
        super().__init__()
        self.moment, self.armed, self.landed = moment, False, False

    def write(self, text: str) -> int:
        n = super().write(text)
        if self.armed and not self.landed and self.moment(text):
            self.landed = True
            raise KeyboardInterrupt
        return n


@pytest.fixture(scope="module")
def gguf_engine():
    from tools.serve.engines import GgufEngine

    engine = GgufEngine(smollm2_gguf())
    yield engine
    engine.close()


@pytest.mark.parametrize(
    "moment",
    [
        lambda text: text == "model> ",  # before the first token: the prompt is being evaluated
        lambda text: text not in ("model> ", "\n", "") and not text.startswith("["),  # the first piece
        lambda text: text == "\n",  # the reply has just ended
        lambda text: text.startswith("[cut at"),  # the reply is in, its notice is being written
    ],
    ids=["prompt", "first-piece", "reply-ended", "cut-notice"],
)
def test_a_ctrl_c_anywhere_in_a_turn_stops_it_and_keeps_the_conversation(moment, gguf_engine, tmp_path):
    from tools.serve.chat import Chat
    from tools.serve.defaults import ChatDefaults

    d = ChatDefaults("You answer in one short sentence.", "SYSTEM=", 0.0, None, max_new_tokens=6)
    out = CtrlCAt(moment)
    chat = Chat(gguf_engine, d, tmp_path / "chat.jsonl", out=out)
    chat.turn("What is the capital of France?")
    before = [dict(m) for m in chat.messages]
    out.armed = True
    try:
        chat.turn("And of Italy?")
    except KeyboardInterrupt:
        pytest.fail(f"the Ctrl-C left the turn: {out.getvalue()}")
    assert out.landed and out.getvalue().endswith(" [stopped: the reply is not kept]\n")
    assert chat.messages == before
    chat.turn("And of Italy?")  # the stopped reply's generator is closed: the next one runs from the start
    assert [m["role"] for m in chat.messages] == ["system", "user", "assistant", "user", "assistant"]
    assert chat.messages[-1]["content"].strip()
