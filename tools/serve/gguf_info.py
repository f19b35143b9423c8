"""What `make chat`, `make serve` and `make ollama` need from a GGUF file before loading it: its chat template,
BOS/EOS text, control tokens and context length, read from the header with llama.cpp's own gguf-py reader
(no weights are loaded). A file that is not a whole GGUF is refused here, with its name, instead of as a
llama.cpp load failure later. And which GGUF of a run GGUF= means."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from core import manifest
from core.errors import UserError, Where

MAGIC = b"GGUF"
CONTROL, USER_DEFINED = 3, 4  # gguf token types that are special tokens


@dataclass
class GgufInfo:
    path: Path
    chat_template: str | None
    bos: str
    eos: str
    eos_id: int | None
    add_bos: bool
    context_length: int | None
    specials: list[str] = field(default_factory=list)
    ids: dict[str, int] = field(default_factory=dict)  # special token text -> id


def _value(fields, key: str, default=None):
    f = fields.get(key)
    return default if f is None else f.contents()


def read(path: Path) -> GgufInfo:
    """The header of `path`, or a UserError naming the file when it is missing, not GGUF or cut short."""
    path = Path(path)
    if not path.is_file():
        raise UserError("GGUF file not found", Where(path), "run make gguf RUN=<run> first")
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head != MAGIC:
        raise UserError(
            f"not a GGUF file (it starts with {head!r}, not {MAGIC!r})", Where(path), "rebuild it with make gguf"
        )
    from gguf import GGUFReader

    try:
        reader = GGUFReader(path)
    except Exception as exc:  # noqa: BLE001 - gguf-py raises ValueError/IndexError/struct errors on a damaged file
        raise UserError(
            f"the GGUF file is damaged or cut short ({type(exc).__name__}: {str(exc)[:120]})",
            Where(path),
            "rebuild it with make gguf (a partial download or copy leaves such a file)",
        ) from None
    end = max((int(t.data_offset) + int(t.n_bytes) for t in reader.tensors), default=0)
    if end > path.stat().st_size:
        raise UserError(
            f"the GGUF file is cut short: its tensors need {end} bytes, the file has {path.stat().st_size}",
            Where(path),
            "rebuild it with make gguf (a partial download or copy leaves such a file)",
        )
    f = reader.fields
    arch = _value(f, "general.architecture", "")
    tokens = _value(f, "tokenizer.ggml.tokens", []) or []
    types = _value(f, "tokenizer.ggml.token_type", []) or []

    def text(key: str) -> tuple[str, int | None]:
        i = _value(f, key)
        return (tokens[i], int(i)) if i is not None and 0 <= i < len(tokens) else ("", None)

    bos, _ = text("tokenizer.ggml.bos_token_id")
    eos, eos_id = text("tokenizer.ggml.eos_token_id")
    ids = {tokens[i]: i for i, t in enumerate(types) if t in (CONTROL, USER_DEFINED)}
    return GgufInfo(
        path=path,
        chat_template=_value(f, "tokenizer.chat_template"),
        bos=bos,
        eos=eos,
        eos_id=eos_id,
        add_bos=bool(_value(f, "tokenizer.ggml.add_bos_token", False)),
        context_length=_value(f, f"{arch}.context_length"),
        specials=list(ids),
        ids=ids,
    )


def require_template(info: GgufInfo) -> str:
    if not info.chat_template:
        raise UserError(
            "the GGUF has no chat template (tokenizer.chat_template)",
            Where(info.path),
            "build it with make gguf from a merged model whose tokenizer has a chat template",
        )
    return info.chat_template


def is_file_choice(choice: str | None) -> bool:
    """GGUF= names a file (a path) rather than a type of the run's make gguf."""
    return bool(choice) and (choice.endswith(".gguf") or "/" in choice)


def run_of(ns, s, choice: str | None) -> Path | None:
    """The run a serving command works on: none when GGUF= names a file and no RUN= is given."""
    from core import cli

    return None if is_file_choice(choice) and not (ns.run or s.run) else cli.run_from(ns, s)


def choose(run: Path | None, choice: str | None, default: str | None = "Q4_K_M") -> Path:
    """The GGUF that GGUF= names: a path to a .gguf file, or a type the run's make gguf built (Q4_K_M, f16...).
    Without GGUF=, `default` if the run has it, else its reference (f16) file."""
    if is_file_choice(choice):
        return Path(choice).expanduser()
    if run is None:
        raise UserError("GGUF= names a type (Q4_K_M, f16...) but there is no run", Where(key="GGUF"))
    m = manifest.read(run)
    if m.gguf is None or not m.gguf.files:
        raise UserError(
            "the run has no GGUF files yet", Where(run / manifest.MANIFEST, key="gguf"), f"run make gguf RUN={run}"
        )
    files = {k.upper(): v for k, v in m.gguf.files.items()}
    wanted = (choice or (default if default and default.upper() in files else m.gguf.outtype)).upper()
    if wanted not in files:
        raise UserError(
            f"the run has no {choice} GGUF (built: {', '.join(m.gguf.files)})",
            Where(key="GGUF"),
            f'pick one of those, or make gguf RUN={run} QUANTS="{choice}"',
        )
    return run / m.gguf.path / files[wanted].file


def pick(ns, s) -> tuple[Path | None, Path, GgufInfo]:
    """What `make serve` and `make ollama` open: the run (none for a bare file), the GGUF that --gguf or GGUF=
    names, and its header, read and checked before llama.cpp loads anything."""
    choice = ns.gguf or s.gguf
    run = run_of(ns, s, choice)
    path = choose(run, choice)
    return run, path, read(path)
