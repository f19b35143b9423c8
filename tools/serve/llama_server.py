"""llama.cpp's OpenAI-compatible server (`python -m llama_cpp.server`) on 127.0.0.1, started and stopped in code:
a local judge for tests and the benchmark, and the server behind `make serve`."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from core import childenv


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# llama_cpp.server reads its settings from environment variables of these names as well as from argv
SERVER_SETTINGS = {
    "MODEL",
    "MODEL_ALIAS",
    "HOST",
    "PORT",
    "CONFIG_FILE",
    "N_CTX",
    "API_KEY",
    "CHAT_FORMAT",
    "N_GPU_LAYERS",
    "HF_MODEL_REPO_ID",
    "HF_PRETRAINED_MODEL_NAME_OR_PATH",
}


@contextmanager
def serve(model: Path, log: Path, alias: str = "local", n_ctx: int = 2048, timeout: float = 180) -> Iterator[str]:
    """Serve `model` (GGUF) on 127.0.0.1; yield the base URL (.../v1)."""
    port = free_port()
    with open(log, "w") as fh:
        env = childenv.without(SERVER_SETTINGS)
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "llama_cpp.server",
                "--model",
                str(model),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--n_ctx",
                str(n_ctx),
                "--model_alias",
                alias,
            ],
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=env,
        )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.time() + timeout
        while True:
            try:
                urllib.request.urlopen(f"{url}/models", timeout=5).read()
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"llama_cpp.server did not start: {log.read_text()[-2000:]}") from None
                time.sleep(1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
