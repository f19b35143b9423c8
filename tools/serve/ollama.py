"""`make ollama RUN=... [GGUF=Q4_K_M]`: an Ollama Modelfile beside the run's GGUF files (then `ollama create`
when ollama is installed). Its TEMPLATE is the GGUF's chat template translated into Ollama's Go template
language by rendering (tools/serve/gotemplate.py: checked against the jinja template, refused with the reason
when it cannot be expressed), its stop tokens the template's end of turn, SYSTEM and PARAMETERs the recipe's
system prompt and sampling (SYSTEM=, TEMPERATURE=, TOP_P=, MAX_NEW_TOKENS= override them). `make push` uploads
it with the GGUF repo."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

from core import atomic, cli
from core.errors import UserError, Where
from core.settings import Settings
from tools.serve import defaults, gguf_info, gotemplate
from tools.serve.defaults import ChatDefaults
from tools.serve.gguf_info import GgufInfo
from tools.serve.template import end_of_turn

MODELFILE = "Modelfile"


def _quoted(text: str, what: str, where: Where) -> str:
    if '"""' in text:
        raise UserError(f'the {what} holds """, which a Modelfile cannot quote', where)
    return f'"""{text}"""'


def modelfile(info: GgufInfo, d: ChatDefaults, title: str) -> str:
    """The Modelfile's text for the GGUF `info` describes (FROM names it relative to the Modelfile's folder)."""
    where = Where(info.path, key="tokenizer.chat_template")
    template = gguf_info.require_template(info)
    go, pieces = gotemplate.translate(template, info.bos, info.eos, info.add_bos, where)
    eot = end_of_turn(template, info.specials, info.bos, info.eos)
    stops = list(dict.fromkeys(s for s in (eot, info.eos) if s))
    lines = [
        f"# Ollama Modelfile for {title}, written by `make ollama` from the GGUF's chat template.",
        f"# TEMPLATE was derived by rendering that template and checked against it on {len(gotemplate.CHECKS)} "
        "conversations (system prompt, multi-turn).",
    ]
    if info.add_bos and info.bos:
        lines.append(f"# The template's leading {info.bos} is left out: the tokenizer adds it (as llama.cpp does).")
    lines += [f"# Note: {n}." for n in pieces.notes]
    lines += ["", f"FROM ./{info.path.name}", "", f"TEMPLATE {_quoted(go, 'template', where)}", ""]
    if d.system and pieces.system:
        system = _quoted(d.system, "system prompt", Where(key="SYSTEM"))
        lines += [f"# system prompt: {d.system_from}", f"SYSTEM {system}", ""]
    elif d.system:
        lines += [f"# The recipe's system prompt is left out: the chat template takes none ({d.system_from}).", ""]
    lines += [f"PARAMETER stop {json.dumps(s, ensure_ascii=False)}" for s in stops]
    lines.append(f"PARAMETER temperature {d.temperature:g}")
    if d.top_p is not None:
        lines.append(f"PARAMETER top_p {d.top_p:g}")
    lines.append(f"PARAMETER num_predict {d.max_new_tokens}")
    return "\n".join(lines) + "\n"


def create(folder: Path, name: str) -> str | None:
    """`ollama create name -f Modelfile` when ollama is installed; its last line of output, else None."""
    exe = shutil.which("ollama")
    if exe is None:
        return None
    proc = subprocess.run([exe, "create", name, "-f", MODELFILE], cwd=folder, capture_output=True, text=True)
    text = (proc.stdout + proc.stderr).strip()
    if proc.returncode != 0:
        raise UserError(
            f"ollama create failed: {text[-800:]}",
            Where(folder / MODELFILE),
            "is the ollama server running (ollama serve)? The Modelfile is written; re-run or create it by hand",
        )
    return text.splitlines()[-1] if text else "created"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_run_arguments(parser)
    parser.add_argument("--gguf", default=None, help="the GGUF type it runs (default: GGUF, else Q4_K_M) or a file")
    parser.add_argument("--name", default=None, help="the Ollama model name (default: the recipe's hub name)")
    ns = parser.parse_args(argv)

    def body(s: Settings) -> None:
        run, path, info = gguf_info.pick(ns, s)
        d = defaults.resolve(run, s)
        name = ns.name or path.stem
        if run is not None and not ns.name:
            from core import manifest

            m = manifest.read(run)
            name = m.train.meta.hub_name or m.recipe_name
        text = modelfile(info, d, f"{name} ({path.name})")
        atomic.write_text(path.parent / MODELFILE, text)
        print(f"written: {path.parent / MODELFILE} (FROM ./{path.name})")
        tag = name.lower()
        made = create(path.parent, tag)
        print(
            f"ollama: {made}; run it with: ollama run {tag}"
            if made
            else f"ollama is not installed here; elsewhere: cd {path.parent} && ollama create {tag} -f {MODELFILE}"
        )

    return cli.main(body)


if __name__ == "__main__":
    sys.exit(main())
