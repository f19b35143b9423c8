"""llama.cpp's OpenAI-compatible server (`python -m llama_cpp.server`) on 127.0.0.1, started and stopped in code:
a local judge for tests and the benchmark, and the server behind `make serve`.

The server is started with the GGUF's own chat template (chat_format chat_template.default: llama-cpp-python
would otherwise swap a template for a built-in one it thinks equal) and interrupt_requests off, so a second
request waits for the first instead of cutting its stream short: llama-cpp-python's server runs one model behind
one lock, one request at a time. It is ready when /v1/models answers (the port opens after the model loads)."""

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
from core.errors import UserError, Where

PARALLEL = 1  # requests llama-cpp-python's server answers at once


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


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
    "INTERRUPT_REQUESTS",
}


class Server:
    def __init__(
        self,
        model: Path,
        log: Path,
        alias: str = "local",
        n_ctx: int = 2048,
        port: int | None = None,
        host: str = "127.0.0.1",
    ):
        from tools.serve import gguf_info

        if port is not None and not port_free(host, port):
            raise UserError(f"port {port} on {host} is in use", Where(key="PORT"), "pick another PORT=")
        self.model, self.log, self.alias, self.n_ctx, self.host = Path(model), Path(log), alias, n_ctx, host
        self.port = port or free_port()
        self.chat_template = bool(gguf_info.read(self.model).chat_template)
        self.url = f"http://{host}:{self.port}/v1"
        self.proc: subprocess.Popen | None = None

    def argv(self) -> list[str]:
        args = [sys.executable, "-m", "llama_cpp.server", "--model", str(self.model), "--host", self.host]
        args += ["--port", str(self.port), "--n_ctx", str(self.n_ctx), "--model_alias", self.alias]
        args += ["--interrupt_requests", "false"]
        if self.chat_template:
            args += ["--chat_format", "chat_template.default"]
        return args

    def start(self, timeout: float = 180) -> str:
        with open(self.log, "w") as fh:
            self.proc = subprocess.Popen(
                self.argv(), stdout=fh, stderr=subprocess.STDOUT, env=childenv.without(SERVER_SETTINGS)
            )
        deadline = time.time() + timeout
        while True:
            try:
                urllib.request.urlopen(f"{self.url}/models", timeout=5).read()
                return self.url
            except OSError:
                if not self.alive() or time.time() > deadline:
                    tail = self.log.read_text(errors="replace")[-2000:]
                    self.stop()
                    raise RuntimeError(f"llama_cpp.server did not start: {tail}") from None
                time.sleep(0.5)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@contextmanager
def serve(
    model: Path, log: Path, alias: str = "local", n_ctx: int = 2048, timeout: float = 180, port: int | None = None
) -> Iterator[str]:
    """Serve `model` (GGUF) on 127.0.0.1; yield the base URL (.../v1)."""
    server = Server(model, log, alias=alias, n_ctx=n_ctx, port=port)
    server.start(timeout)
    try:
        yield server.url
    finally:
        server.stop()
