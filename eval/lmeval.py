"""`make eval RUN=...`: the held-out generation task through lm-eval, on the HF model (merged, or base +
adapter), on each GGUF file of the run (in-process llama.cpp backend) and on the base model alone (the row
every result is compared with). Metrics (the persona seed's): exact match, Jaccard, ROUGE-1/2/L/Lsum, corpus
BLEU. The task is built from the recipe's held-out split (test_datasets) with the chat template applied as in
training (none for prompt/completion recipes). Per-document scores (lm-eval's logged samples) are kept in
<run>/eval/samples/<backend>.jsonl and named in the manifest's lm_eval section: intervals and paired tests
resample documents (eval/stats.py). Without BACKENDS, a CPU box scores a run that has a parity-checked GGUF through
llama.cpp only: its GGUF files and the base model's own cached f16 GGUF (default_backends); every row records the
engine that produced it."""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata as md
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import yaml

from core import atomic, cli, manifest, metrics, rundir, settings
from core.errors import UserError, Where
from core.hashing import sha256_file
from core.manifest import EvalResult, LmEvalSection
from core.settings import Settings
from tools.export import base_gguf

TASK = "affinage_heldout"
BACKENDS = ("hf", "gguf", "base")
UTILS = Path(__file__).with_name("tasks") / "utils.py"


def heldout_docs(run: Path) -> tuple[list[dict[str, str]], bool, str]:
    """(docs with prompt/reference, apply chat template?, held-out file) from the run's resolved config; a
    preference run started from an SFT run is scored on that run's held-out split, as the whole chain is."""
    from eval.chain import heldout_run

    source = heldout_run(run)
    config = yaml.safe_load((source / "config.yaml").read_text())
    entries = config.get("test_datasets") or []
    if not entries:
        raise UserError(
            "the run has no held-out split (test_datasets)",
            Where(source / "config.yaml", key="test_datasets"),
            "give the recipe a test_datasets file (make data-split) and train again",
        )
    from eval.heldout import docs

    return docs(entries[0], Where(source / "config.yaml", key="test_datasets[0]"))


def write_task(folder: Path, docs: list[dict], max_gen_toks: int) -> dict[str, str]:
    """The task YAML + utils.py + data in `folder`; returns their sha256s."""
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "heldout.jsonl"
    atomic.write_text(data, "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs))
    shutil.copyfile(UTILS, folder / "utils.py")
    metric_list = "\n".join(
        f"  - {{metric: {m.name}, aggregation: {'mean' if m.aggregation == 'mean' else '!function utils.corpus_' + m.name}, "
        f"higher_is_better: {str(m.higher_is_better).lower()}}}"
        for m in metrics.METRICS
    )
    (folder / f"{TASK}.yaml").write_text(f"""task: {TASK}
dataset_path: json
dataset_kwargs:
  data_files: {{test: {data}}}
test_split: test
output_type: generate_until
doc_to_text: "{{{{prompt}}}}"
doc_to_target: "{{{{reference}}}}"
generation_kwargs: {{until: [], max_gen_toks: {max_gen_toks}, do_sample: false}}
process_results: !function utils.process_results
metric_list:
{metric_list}
metadata: {{version: 1.0}}
""")
    return {p.name: sha256_file(p) for p in sorted(folder.iterdir()) if p.is_file()}


def score(model: Any, model_args: str | None, folder: Path, chat: bool, limit: int | None) -> dict[str, float]:
    return score_docs(model, model_args, folder, chat, limit)[0]


def score_docs(
    model: Any, model_args: str | None, folder: Path, chat: bool, limit: int | None
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """(aggregate metrics, one row per document: its key, prompt, reference, prediction and per-document
    metrics) from lm-eval's logged samples; the statistics resample the rows (eval/stats.py)."""
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    res = simple_evaluate(
        model=model,
        model_args=model_args,
        tasks=[TASK],
        task_manager=TaskManager(include_path=str(folder)),
        apply_chat_template=chat,
        limit=limit,
        random_seed=0,
        numpy_random_seed=0,
        torch_random_seed=0,
        device="cuda" if _cuda() else "cpu",
        batch_size=batch_size(model),
        log_samples=True,
    )
    raw = res["results"][TASK]
    scores = {k.split(",")[0]: float(v) for k, v in raw.items() if "," in k and "stderr" not in k}
    per_doc = [m.name for m in metrics.per_document()]
    rows = [
        {
            "doc": doc_key(s["doc"]),
            "doc_id": s["doc_id"],
            "prompt": s["doc"]["prompt"],
            "reference": s["doc"]["reference"],
            "prediction": s["filtered_resps"][0],
            "metrics": {k: float(s[k]) for k in per_doc if k in s},
        }
        for s in sorted(res.get("samples", {}).get(TASK, []), key=lambda s: s["doc_id"])
    ]
    return scores, rows


def doc_key(doc: dict[str, str]) -> str:
    """A document's identity across runs and backends: the same prompt and reference are the same document."""
    return hashlib.sha256(f"{doc['prompt']}\x00{doc['reference']}".encode()).hexdigest()[:16]


def write_samples(run: Path, backend: str, rows: list[dict[str, Any]]) -> str:
    path = run / "eval" / "samples" / (backend.replace(":", "-") + ".jsonl")
    atomic.write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return rundir.relpath(path, run)


def read_samples(run: Path, rel: str) -> list[dict[str, Any]]:
    path = Path(run) / rel
    if not path.is_file():
        raise UserError("per-document scores are missing", Where(path), f"run make eval RUN={run} again")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def batch_size(model: Any) -> int | str:
    """lm-eval's HF backend on a GPU finds the largest batch that fits ("auto"); elsewhere one document at a time."""
    return "auto" if model == "hf" and _cuda() else 1


def hf_dtype(run: Path) -> str:
    """The HF backend's dtype: the recipe's on a GPU (bf16 where the recipe and the GPU have it, else fp16), so a
    27B/32B model fits and runs at speed; float32 on CPU, where bf16 matmuls are slow."""
    import torch

    if not torch.cuda.is_available():
        return "float32"
    config = yaml.safe_load((Path(run) / "config.yaml").read_text()) or {}
    return "bfloat16" if config.get("bf16") in (True, "auto") and torch.cuda.is_bf16_supported() else "float16"


def default_backends(run: Path) -> tuple[list[str], str, str]:
    """(backends, how the base model is scored, why) when BACKENDS is not given. On a CPU box, for a run whose
    `make gguf` passed its parity check: its GGUF files (the reference f16 file scores as the HF model does,
    greedy token for token) and the base model through its own parity-checked f16 GGUF, since float32 transformers
    generation costs seconds a document there. On a GPU, or without a passing GGUF: transformers, as asked for."""
    from eval.generate import run_gguf

    if _cuda():
        return list(BACKENDS), "hf", "default on a GPU: transformers in the recipe's dtype, and each GGUF"
    if run_gguf(run) is None:
        return list(BACKENDS), "hf", "default on a CPU for a run without a parity-checked GGUF (make gguf)"
    return ["gguf", "base"], "gguf", "default on a CPU for a run with a parity-checked GGUF: llama.cpp only"


def primary(section: LmEvalSection | None) -> EvalResult | None:
    """The row that stands for the fine-tune: transformers' when scored, else its reference (unquantized) GGUF's."""
    results = section.results if section else []
    return next((r for r in results if r.backend == "hf"), None) or next(
        (r for r in results if r.backend.split(":")[-1] in ("f16", "bf16", "f32")), None
    )


def evaluate(
    run: Path,
    backends: list[str],
    limit: int | None = None,
    max_gen_toks: int = 128,
    log=print,
    base_via: str = "hf",
    cache: Path | None = None,
    choice: str = "BACKENDS",
) -> LmEvalSection:
    """Score the run's model on its held-out documents with each backend: hf (the fine-tune), gguf (each GGUF
    file) and base (the base model alone: the row every result is compared with), the base through transformers
    or (base_via="gguf") through its cached, parity-checked f16 GGUF (tools/export/base_gguf.py, in `cache`,
    AFFINAGE_CACHE: required then)."""
    if base_via == "gguf" and cache is None:
        raise ValueError("base_via='gguf' needs the cache folder its f16 GGUF is kept in")
    unknown = sorted(set(backends) - set(BACKENDS))
    if unknown:
        raise UserError(
            f"unknown backend(s): {', '.join(unknown)}", Where(key="BACKENDS"), f"one of: {', '.join(BACKENDS)}"
        )
    m = manifest.read(run)
    docs, chat, source = heldout_docs(run)
    folder = run / "eval" / "task"
    hashes = write_task(folder, docs, max_gen_toks)
    results, samples, base, base_record = [], {}, None, None

    def scored(backend: str, model: Any, args: str | None) -> dict[str, float]:
        scores, rows = score_docs(model, args, folder, chat, limit)
        samples[backend] = write_samples(run, backend, rows)
        return scores

    def scored_gguf(backend: str, path: Path) -> dict[str, float]:
        from eval.gguf_lm import GGUFLM

        lm = GGUFLM(path)
        try:
            return scored(backend, lm, None)
        finally:
            lm.close()

    dtype = hf_dtype(run)
    hf_engine = f"hf:{'cuda' if _cuda() else 'cpu'}:{dtype}"
    if "hf" in backends:
        if m.merge is not None:
            args = f"pretrained={rundir.merged_model(run)},dtype={dtype}"
        else:
            args = f"pretrained={m.train.base_model.path},peft={rundir.final_adapter(run)},dtype={dtype}"
        log(f"lm-eval (hf): {args}")
        results.append(
            EvalResult(
                task=f"{TASK} (hf)", backend="hf", dataset=source, metrics=scored("hf", "hf", args), engine=hf_engine
            )
        )
    if "gguf" in backends and m.gguf is not None:
        for kind, info in m.gguf.files.items():
            log(f"lm-eval (gguf {kind}): {info.file}")
            scores = scored_gguf(f"gguf:{kind}", run / m.gguf.path / info.file)
            results.append(
                EvalResult(
                    task=f"{TASK} (gguf {kind})",
                    backend=f"gguf:{kind}",
                    dataset=source,
                    metrics=scores,
                    engine=f"llama.cpp:{info.file}",
                )
            )
    if "base" in backends:
        from eval.chain import origin_base

        # the chain's root model: for a DPO run on an SFT run, the original base, not the SFT weights it loads
        base_path = origin_base(run)[1]
        f16 = base_gguf.usable_f16(base_path, cache, log) if base_via == "gguf" else None
        if f16 is not None:
            log(f"lm-eval (base model, same documents): {f16.path}")
            base = EvalResult(
                task=f"{TASK} (base, gguf {base_gguf.OUTTYPE})",
                backend="base",
                dataset=source,
                metrics=scored_gguf("base", f16.path),
                engine=f"llama.cpp:{f16.path.name}",
            )
            base_record = {"path": str(f16.path), "key": f16.key, "parity": f16.parity, "built": f16.built}
        else:
            args = f"pretrained={base_path},dtype={dtype}"
            log(f"lm-eval (base model, same documents): {args}")
            metrics_ = scored("base", "hf", args)
            base = EvalResult(task=f"{TASK} (base)", backend="base", dataset=source, metrics=metrics_, engine=hf_engine)
    elif m.lm_eval and m.lm_eval.base and m.lm_eval.task_files == hashes and m.lm_eval.limit == limit:
        base, samples["base"] = m.lm_eval.base, m.lm_eval.samples.get("base", "")  # same documents: still valid
        base_record = m.lm_eval.base_gguf
    section = LmEvalSection(
        results=results,
        version=md.version("lm_eval"),
        task=TASK,
        task_files=hashes,
        docs=len(docs),
        limit=limit,
        chat_template=chat,
        sampling={"do_sample": False, "max_gen_toks": max_gen_toks},
        seed=0,
        at=rundir.utc_now(),
        base=base,
        samples={k: v for k, v in samples.items() if v},
        choice=choice,
        base_gguf=base_record,
    )
    manifest.write_sections(run, lm_eval=section)
    return section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_run_arguments(parser)
    parser.add_argument(
        "--backends",
        default=None,
        help="hf,gguf,base (default: BACKENDS, else on a CPU box for a run with a parity-checked GGUF gguf,base "
        "with the base through its own f16 GGUF, elsewhere all three)",
    )
    parser.add_argument(
        "--limit", type=settings.flag_type("LIMIT"), default=None, help="documents to score (default: LIMIT, else all)"
    )
    parser.add_argument(
        "--max-gen-toks",
        type=settings.flag_type("MAX_NEW_TOKENS"),
        default=None,
        help="(default: MAX_NEW_TOKENS, else 128)",
    )
    ns = parser.parse_args(argv)

    def body(s: Settings) -> None:
        run = cli.run_from(ns, s)
        asked = ns.backends or s.backends
        if asked:
            backends, base_via, choice = [b.strip() for b in asked.split(",") if b.strip()], "hf", "BACKENDS"
        else:
            backends, base_via, choice = default_backends(run)
        print(f"backends: {','.join(backends)} ({choice})")
        section = evaluate(
            run,
            backends,
            ns.limit or s.limit or None,
            ns.max_gen_toks or s.max_new_tokens or 128,
            base_via=base_via,
            cache=s.cache,
            choice=choice,
        )
        for r in [*section.results, *([section.base] if section.base else [])]:
            shown = "  ".join(f"{m.label} {m.show(r.metrics.get(m.name))}" for m in metrics.METRICS)
            print(f"{r.task:32s} {shown}  [{r.engine}]")

    return cli.main(body)


if __name__ == "__main__":
    sys.exit(main())
