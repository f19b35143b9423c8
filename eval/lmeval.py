"""`make eval RUN=...`: the held-out generation task through lm-eval, on the HF model (merged, or base +
adapter) and on each GGUF file of the run (in-process llama.cpp backend). Metrics (the persona seed's):
exact match, Jaccard, ROUGE-1/2/L/Lsum, corpus BLEU. The task is built from the recipe's held-out split
(test_datasets) with the chat template applied as in training (none for prompt/completion recipes)."""

from __future__ import annotations

import argparse
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
from data.entries import dataset_file
from data.formats import to_messages
from data.validate import read_jsonl

TASK = "affinage_heldout"
UTILS = Path(__file__).with_name("tasks") / "utils.py"


def heldout_docs(run: Path) -> tuple[list[dict[str, str]], bool, str]:
    """(docs with prompt/reference, apply chat template?, held-out file) from the run's resolved config."""
    config = yaml.safe_load((run / "config.yaml").read_text())
    entries = config.get("test_datasets") or []
    if not entries:
        raise UserError(
            "the run has no held-out split (test_datasets)",
            Where(run / "config.yaml", key="test_datasets"),
            "give the recipe a test_datasets file (make data-split) and train again",
        )
    ds = entries[0]
    path = dataset_file(ds)
    fmt = "prompt-completion" if isinstance(ds.get("type"), dict) else "messages"
    docs = []
    for _, rec, err in read_jsonl(path):
        if err:
            continue
        if fmt == "messages":
            msgs = to_messages(rec, "messages")
            last = max(i for i, m in enumerate(msgs) if m["role"] == "assistant")
            user = [m for m in msgs[:last] if m["role"] == "user"][-1]
            docs.append({"prompt": user["content"], "reference": msgs[last]["content"]})
        else:
            kind = ds["type"]
            prompt = kind.get("no_input_format", "{instruction}").format(
                instruction=rec[kind.get("field_instruction", "prompt")]
            )
            docs.append({"prompt": prompt, "reference": rec[kind.get("field_output", "completion")]})
    return docs, fmt == "messages", str(path)


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
        batch_size=1,
    )
    raw = res["results"][TASK]
    return {k.split(",")[0]: float(v) for k, v in raw.items() if "," in k and "stderr" not in k}


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def evaluate(
    run: Path, backends: list[str], limit: int | None = None, max_gen_toks: int = 128, log=print
) -> LmEvalSection:
    m = manifest.read(run)
    docs, chat, source = heldout_docs(run)
    folder = run / "eval" / "task"
    hashes = write_task(folder, docs, max_gen_toks)
    results = []
    if "hf" in backends:
        if m.merge is not None:
            args = f"pretrained={run / m.merge.path},dtype=float32"
        else:
            args = f"pretrained={m.train.base_model.path},peft={rundir.final_adapter(run)},dtype=float32"
        log(f"lm-eval (hf): {args}")
        results.append(
            EvalResult(
                task=f"{TASK} (hf)", backend="hf", dataset=source, metrics=score("hf", args, folder, chat, limit)
            )
        )
    if "gguf" in backends and m.gguf is not None:
        from eval.gguf_lm import GGUFLM

        for kind, info in m.gguf.files.items():
            lm = GGUFLM(run / m.gguf.path / info.file)
            log(f"lm-eval (gguf {kind}): {info.file}")
            try:
                scores = score(lm, None, folder, chat, limit)
            finally:
                lm.close()
            results.append(
                EvalResult(task=f"{TASK} (gguf {kind})", backend=f"gguf:{kind}", dataset=source, metrics=scores)
            )
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
    )
    manifest.write_sections(run, lm_eval=section)
    return section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_run_arguments(parser)
    parser.add_argument("--backends", default=None, help="hf,gguf (default: BACKENDS, else both)")
    parser.add_argument("--limit", type=int, default=None, help="documents to score (default: LIMIT, else all)")
    parser.add_argument("--max-gen-toks", type=int, default=None, help="(default: MAX_NEW_TOKENS, else 128)")
    ns = parser.parse_args(argv)

    def body() -> None:
        s = settings.load()
        run = cli.run_from(ns, s)
        section = evaluate(
            run,
            (ns.backends or s.backends or "hf,gguf").split(","),
            ns.limit or s.limit or None,
            ns.max_gen_toks or s.max_new_tokens or 128,
        )
        for r in section.results:
            print(f"{r.task:32s} " + "  ".join(f"{m.label} {m.show(r.metrics.get(m.name))}" for m in metrics.METRICS))

    return cli.main(body)


if __name__ == "__main__":
    sys.exit(main())
