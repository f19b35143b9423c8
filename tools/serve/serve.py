"""`make serve RUN=... [GGUF=Q4_K_M] [PORT=8080]`: the run's GGUF behind llama.cpp's OpenAI-compatible server
(llama-cpp-python's) on 127.0.0.1, with the GGUF's own chat template. It says ready once the server answers;
Ctrl-C (or SIGTERM) stops it. One request at a time: llama-cpp-python's server runs one model behind one lock,
so concurrent requests queue (none is cut short). GGUF=<path.gguf> serves any file."""

from __future__ import annotations

import argparse
import signal
import sys
import time

from core import cli, settings
from core.errors import UserError
from core.settings import Settings
from tools.serve import defaults, gguf_info
from tools.serve.llama_server import PARALLEL, Server

DEFAULT_PORT = 8080
N_CTX = 4096


def _stop_on_sigterm(*_) -> None:
    raise KeyboardInterrupt


def positive(raw: str) -> int:
    """--n-ctx: a context of at least one token (0 would make llama.cpp take the model's whole context)."""
    if not raw.strip().isdigit() or int(raw) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, not '{raw}'")
    return int(raw)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_run_arguments(parser)
    parser.add_argument("--gguf", default=None, help="a GGUF type of the run (default: GGUF, else Q4_K_M) or a file")
    parser.add_argument(
        "--port", type=settings.flag_type("PORT"), default=None, help=f"(default: PORT, else {DEFAULT_PORT})"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine)")
    parser.add_argument(
        "--n-ctx", type=positive, default=None, help=f"context size (default: the model's, at most {N_CTX})"
    )
    ns = parser.parse_args(argv)

    def body(s: Settings) -> int:
        run, path, info = gguf_info.pick(ns, s)
        gguf_info.require_template(info)
        d = defaults.resolve(run, s)
        alias = path.stem
        log = (run / "logs" if run else s.outputs / "serve") / f"serve-{alias}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        n_ctx = ns.n_ctx or min(info.context_length or N_CTX, N_CTX)
        server = Server(path, log, alias=alias, n_ctx=n_ctx, port=ns.port or s.port or DEFAULT_PORT, host=ns.host)
        print(f"loading {path} (log: {log})", flush=True)
        signal.signal(signal.SIGTERM, _stop_on_sigterm)
        signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started with SIGINT ignored (&)
        try:
            try:
                server.start()
            except RuntimeError as exc:
                raise UserError(str(exc)[-1500:], hint=f"see {log}") from None
            top_p = f", top_p {d.top_p}" if d.top_p is not None else ""
            print(f"ready: {server.url} (OpenAI-compatible; model '{alias}', the GGUF's own chat template)")
            print(
                f"parallel requests: {PARALLEL} (llama-cpp-python's server answers one at a time; others wait)\n"
                f"the recipe's sampling: temperature {d.temperature}{top_p}, max_tokens {d.max_new_tokens}"
                + (f"; its system prompt: {d.system!r}" if d.system else "")
                + f"\ntry: curl {server.url}/chat/completions -H 'Content-Type: application/json' "
                f'-d \'{{"model": "{alias}", "messages": [{{"role": "user", "content": "Hello"}}]}}\''
                "\nCtrl-C stops the server",
                flush=True,
            )
            while server.alive():
                time.sleep(0.5)
            print(f"the server stopped by itself; see {log}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return 0
        finally:
            server.stop()
            print("server stopped", flush=True)

    return cli.main(body)


if __name__ == "__main__":
    sys.exit(main())
