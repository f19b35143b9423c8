"""The f16 GGUF of a model that is not a run's own (a run's base model, or the run a preference run started from):
converted once with `make gguf`'s converter (tools/export/gguf.py), parity-checked as a run's GGUF is
(tools/export/parity.py: the same prompts' token ids and greedy tokens as the HF model), and cached in
<cache>/gguf-base/<model>-<key>/ (cache: AFFINAGE_CACHE). The key hashes every file of the model's folder, the
converter script and llama-cpp-python's version, so a changed model or converter builds a new file and an unchanged
one is never converted twice. On a CPU box `make eval` and `make judge` score a run's base model through it."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from core import atomic, rundir
from core.errors import UserError
from core.hashing import sha256_file

OUTTYPE = "f16"
FOLDER = "gguf-base"


@dataclass(frozen=True)
class BaseGguf:
    path: Path  # the f16 file
    key: str
    parity: str  # "pass" or "fail"
    problems: list[str] = field(default_factory=list)
    built: bool = False  # converted by this call; False: the cached file was reused

    @property
    def passed(self) -> bool:
        return self.parity == "pass" and self.path.is_file()


def model_folder(base: str | Path) -> Path | None:
    """The model's local folder: a path, or a Hub id's snapshot already in the Hugging Face cache (never fetched)."""
    path = Path(base).expanduser()
    if path.is_dir():
        return path
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(str(base), local_files_only=True))
    except (OSError, ValueError):  # not cached here, or not a Hub id
        return None


def converter_identity() -> str:
    """The converter script's sha256 and the llama-cpp-python that ships it."""
    import importlib.metadata as md

    from tools.export.gguf import CONVERTER

    if not CONVERTER.is_file():
        raise UserError(f"llama.cpp's converter is missing ({CONVERTER})", hint="run make setup")
    return f"{sha256_file(CONVERTER)[:16]} (llama-cpp-python {md.version('llama_cpp_python')})"


def cache_key(folder: Path, converter: str) -> str:
    h = hashlib.sha256(f"{converter}\x00{OUTTYPE}".encode())
    for f in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
        h.update(f"\x00{f.name}\x00{sha256_file(f)}".encode())
    return h.hexdigest()[:16]


def cached_f16(base: str | Path, cache: Path, log=print) -> BaseGguf | None:
    """The model's parity-checked f16 GGUF from the cache, built first when the cache has none for this model and
    converter; None when the model has no local folder to convert."""
    folder = model_folder(base)
    if folder is None:
        log(f"{base}: no local folder (nor a Hugging Face cache snapshot) to convert to GGUF")
        return None
    converter = converter_identity()
    key = cache_key(folder, converter)
    name = _slug(Path(str(base)).name or folder.name)
    final = Path(cache) / FOLDER / f"{name}-{key}"
    built = False
    with atomic.locked(final):  # two commands needing the same file: one converts, the other waits and reuses it
        if not (final / "source.json").is_file() or not (final / f"{name}-{OUTTYPE}.gguf").is_file():
            log(f"converting {base} to its f16 GGUF once (cached in {final})")
            _build(str(base), folder, final / f"{name}-{OUTTYPE}.gguf", key, converter)
            built = True
    record = json.loads((final / "source.json").read_text())
    return BaseGguf(final / record["file"], key, record["parity"], record["problems"], built)


def usable_f16(base: str | Path, cache: Path, log=print) -> BaseGguf | None:
    """cached_f16 when the file converts and passes its parity check; None otherwise, the log saying why (the
    caller then runs the model through transformers)."""
    try:
        f16 = cached_f16(base, cache, log)
    except UserError as exc:
        log(f"{base}: no GGUF ({exc}); transformers runs it")
        return None
    if f16 is not None and not f16.passed:
        log(f"{base}: its f16 GGUF failed its parity check ({'; '.join(f16.problems)}); transformers runs it")
        return None
    return f16


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def _build(base: str, folder: Path, target: Path, key: str, converter: str) -> None:
    from tools.export import gguf, parity

    with atomic.folder(target.parent) as tmp:
        out = tmp / target.name
        gguf.convert(folder, out, OUTTYPE, log_file=tmp / "convert.log")
        report = parity.compare(folder, {OUTTYPE: out}, reference=OUTTYPE)
        atomic.write_json(tmp / "parity.json", report)
        atomic.write_json(
            tmp / "source.json",
            {
                "model": base,
                "folder": str(folder),
                "key": key,
                "converter": converter,
                "file": out.name,
                "bytes": out.stat().st_size,
                "parity": report["verdict"],
                "problems": report["problems"],
                "at": rundir.utc_now(),
            },
        )
