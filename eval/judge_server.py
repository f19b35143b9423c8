"""A local judge served for `make judge`: JUDGES=local with no JUDGE_URL runs llama.cpp's server on 127.0.0.1 for
the judging (the embedded SmolLM2 GGUF unless JUDGE_GGUF names another), stopped after, also on errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from core import settings
from core.errors import UserError, Where
from core.settings import Settings

N_CTX = 4096  # a served judge sees the prompt and two answers


def judge_gguf(s: Settings) -> Path:
    """The GGUF a served judge runs: JUDGE_GGUF, else the SmolLM2 GGUF the embedded recipe ships with."""
    if s.judge_gguf:
        path = Path(s.judge_gguf).expanduser()
        if not path.is_file():
            raise UserError(
                "JUDGE_GGUF names no file", Where(path, key="JUDGE_GGUF"), "a .gguf file of the judge model"
            )
        return path
    from resolver.local_models import gguf_file
    from resolver.registry import load_recipe

    return gguf_file(load_recipe(settings.DEFAULT_RECIPE).meta.local_source)


@contextmanager
def served(specs: dict[str, dict], log: Path, s: Settings, say=print) -> Iterator[dict[str, str]]:
    """{judge: url} for the judges eval/judges.yaml marks `serve` whose address variable is unset: llama.cpp's
    server runs on 127.0.0.1 for them while the block runs, and is stopped after (also on errors)."""
    from tools.serve.llama_server import serve

    names = list(specs)  # {judge: its eval/judges.yaml entry}
    need = [n for n in names if specs[n].get("serve") and not s.raw(specs[n].get("base_url_env") or "")]
    if not need:
        yield {}
        return
    model = judge_gguf(s)
    log.parent.mkdir(parents=True, exist_ok=True)
    say(
        f"{', '.join(need)}: no {specs[need[0]]['base_url_env']}; starting llama.cpp's server for {model.name} (log: {log})"
    )
    try:
        with serve(model, log, alias=specs[need[0]]["model"], n_ctx=N_CTX) as url:
            say(f"judge server: {url}")
            yield dict.fromkeys(need, url)
    except RuntimeError as exc:  # it did not come up: its log says why
        raise UserError(f"the local judge server did not start: {str(exc)[-300:]}", Where(log)) from None
    say("judge server stopped")
