"""`make gguf RUN=... QUANTS="Q8_0 Q4_K_M"`: merged model -> f16 GGUF (llama.cpp's own converter from the
pinned llama-cpp-python sdist) -> quantized files (llama-cpp-python's llama_model_quantize) -> parity report
(greedy tokens vs the HF model; each quant's KL divergence, top-1 agreement and perplexity vs the f16 file on the
held-out split: tools/export/quality.py).
"""

from __future__ import annotations

import argparse
import ctypes
import importlib.util
import json
import re
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from core import atomic, child, cli, manifest, rundir
from core.errors import UserError, Where
from core.hashing import sha256_file
from core.manifest import GgufSection
from core.settings import Settings
from tools.export import parity, quality

CONVERTER = Path(sys.prefix) / "llama.cpp" / "convert_hf_to_gguf.py"
FTYPE = "LLAMA_FTYPE_MOSTLY_"
OUTTYPES = ("f16", "bf16", "f32")


@lru_cache(maxsize=1)
def ftypes() -> dict[str, int]:
    """llama.cpp's quant types (LLAMA_FTYPE_MOSTLY_<name> = <value>), read from llama-cpp-python's own source:
    importing llama_cpp loads its shared library (seconds), and a QUANTS= typo is refused before that."""
    spec = importlib.util.find_spec("llama_cpp")
    source = Path(spec.origin).with_name("llama_cpp.py") if spec and spec.origin else None
    if source is None or not source.is_file():  # laid out otherwise: ask the module itself
        import llama_cpp

        return {n.removeprefix(FTYPE): getattr(llama_cpp, n) for n in dir(llama_cpp) if n.startswith(FTYPE)}
    text = source.read_text(encoding="utf-8")
    return {m[1]: int(m[2]) for m in re.finditer(rf"^{FTYPE}(\w+) = (\d+)\s*$", text, re.MULTILINE)}


def ftype(quant: str) -> int:
    value = ftypes().get(quant.upper())
    if value is None:
        known = sorted(ftypes())
        raise UserError(f"unknown quant type '{quant}'", Where(key="QUANTS"), f"one of: {' '.join(known)}")
    return value


def convert(merged: Path, out: Path, outtype: str, log_file: Path | None = None) -> None:
    """llama.cpp's converter in its own process; its output goes to `log_file` (default: logs/gguf.log of the run
    that holds the GGUF folder), a failure is its last error lines (core/child.py)."""
    if not CONVERTER.is_file():
        raise UserError(f"llama.cpp's converter is missing ({CONVERTER})", hint="run make setup")
    log_file = log_file or out.parent.parent / "logs" / "gguf.log"
    ended = child.run(
        [sys.executable, str(CONVERTER), str(merged), "--outfile", str(out), "--outtype", outtype],
        log_file,
        show=lambda line: None,  # the converter's progress is the log's
    )
    if ended.returncode != 0:
        text = "\n".join(ended.tail)
        if "pre-tokenizer was not recognized" in text or "BPE pre-tokenizer" in text:
            raise UserError(
                "llama.cpp does not recognize this tokenizer's BPE pre-tokenizer",
                Where(merged / "tokenizer.json"),
                "use the base model's original tokenizer files (a retrained BPE tokenizer has an unknown hash), "
                "or add its hash to get_vocab_base_pre() in llama.cpp's convert_hf_to_gguf.py",
            )
        raise ended.error("convert_hf_to_gguf.py", f"the converter's full output is in {log_file}")


def quantize(src: Path, dst: Path, quant: str) -> None:
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype(quant)
    rc = llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(params))
    if rc != 0 or not dst.is_file():
        raise UserError(f"quantizing to {quant} failed (llama_model_quantize returned {rc})", Where(src))


def export(
    merged: Path,
    out: Path,
    name: str,
    quants: list[str],
    outtype: str = "f16",
    log=print,
    conversations: list[list[dict]] | None = None,
    source: str = "",
) -> dict[str, Any]:
    """Convert + quantize `merged` into the folder `out` (atomically) and compare each file with it; with
    `conversations` (the held-out split), each quant's KL divergence, top-1 agreement and perplexity too."""
    for q in quants:
        ftype(q)  # refuse an unknown quant before any work
    if outtype not in OUTTYPES:
        raise UserError(f"OUTTYPE must be one of {', '.join(OUTTYPES)}", Where(key="OUTTYPE"))
    files: dict[str, dict[str, Any]] = {}
    with atomic.folder(out) as tmp:
        base_file = tmp / f"{name}-{outtype}.gguf"
        log(f"converting {merged} -> {base_file.name}")
        convert(merged, base_file, outtype)
        files[outtype] = {"file": base_file.name}
        for q in quants:
            target = tmp / f"{name}-{q}.gguf"
            log(f"quantizing -> {target.name}")
            quantize(base_file, target, q)
            files[q] = {"file": target.name}
        log("parity: HF merged model vs each GGUF, greedy")
        report = parity.compare(merged, {k: tmp / v["file"] for k, v in files.items()}, reference=outtype)
        if conversations and quants:
            log(f"quality: KL divergence, top-1 agreement and perplexity vs {outtype} on {source}")
            q = quality.compare(
                base_file, {k: tmp / files[k]["file"] for k in quants}, quality.render_text(merged, conversations)
            )
            q["text"] = source
            report["quality"] = q
            report["problems"] += quality.problems(q)
            report["verdict"] = "fail" if report["problems"] else "pass"
            files[outtype].update(ppl=q["reference_ppl"])
            for k in quants:
                files[k].update(q["files"][k])
        for kind, info in files.items():
            path = tmp / info["file"]
            info.update(bytes=path.stat().st_size, sha256=sha256_file(path), **report["files"][kind])
            info.pop("generated", None)
            info.pop("nonfinite", None)
        atomic.write_json(tmp / "parity.json", report)
    return {
        "outtype": outtype,
        "files": files,
        "parity": report["verdict"],
        "problems": report["problems"],
        "chat_template": report.get("chat_template"),
        "eos_token_id": report.get("eos_token_id"),
        "quality": {k: v for k, v in report["quality"].items() if k != "files"} if "quality" in report else None,
    }


def refuse_unconvertible(merged: Path, cache: Path) -> None:
    """llama.cpp's converter knows a fixed list of architectures: say so before converting, not as its traceback
    (the list is kept under `cache`, AFFINAGE_CACHE)."""
    from tools.export.gguf_support import converter_architectures

    known = converter_architectures(cache)
    config = merged / "config.json"
    if known is None or not config.is_file():
        return
    archs = json.loads(config.read_text()).get("architectures") or []
    if archs and not any(a in known for a in archs):
        raise UserError(
            f"llama.cpp's converter (llama-cpp-python's) does not support {', '.join(archs)}",
            Where(config, key="architectures"),
            "the merged model in the run directory still works with transformers (make eval BACKENDS=hf)",
        )


def build(run: Path, quants: list[str], outtype: str = "f16", log=print, *, cache: Path) -> GgufSection:
    for q in quants:
        ftype(q)
    if outtype not in OUTTYPES:  # before a merge that may come first
        raise UserError(f"OUTTYPE must be one of {', '.join(OUTTYPES)}", Where(key="OUTTYPE"))
    m = manifest.read(run)
    if m.merge is None:
        from tools.export.merge import merge

        log("no merged model yet: merging first")
        merge(run, log)
        m = manifest.read(run)
    merged = rundir.merged_model(run, hashes=True)
    refuse_unconvertible(merged, cache)
    conversations, source = quality.held_out_conversations(yaml.safe_load((run / "config.yaml").read_text()) or {})
    result = export(merged, run / "gguf", m.recipe_name, quants, outtype, log, conversations, source)
    section = GgufSection.model_validate({"path": "gguf", **result, "at": rundir.utc_now()})
    manifest.write_sections(run, gguf=section)
    if result["parity"] != "pass":
        raise UserError(f"GGUF parity failed: {result['problems']}", Where(run / "gguf" / "parity.json"))
    return section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_run_arguments(parser)
    parser.add_argument("--quants", default=None, help='quant types (default: QUANTS, else "Q8_0 Q4_K_M")')
    parser.add_argument("--outtype", default=None, help="f16 | bf16 | f32 (default: OUTTYPE, else f16)")
    ns = parser.parse_args(argv)

    def body(s: Settings) -> None:
        run = cli.run_from(ns, s)
        quants = (ns.quants or s.quants or "Q8_0 Q4_K_M").split()
        section = build(run, quants, ns.outtype or s.outtype or "f16", cache=s.cache)
        for kind, info in section.files.items():
            kl = f"KL {info.mean_kl:.4f}  top-1 {info.top1:.1%}" if info.mean_kl is not None else " " * 23
            ppl = f"PPL {info.ppl:7.2f}" if info.ppl is not None else " " * 11
            print(f"{kind:8s} {info.bytes / 1e6:8.1f} MB  {kl}  {ppl}  greedy {info.agreement:.0%}  {info.file}")
        print(f"parity: {section.parity} (report: {run / 'gguf' / 'parity.json'})")

    return cli.main(body)


if __name__ == "__main__":
    sys.exit(main())
