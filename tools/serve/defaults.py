"""The recipe's way of talking to its model, for chat, serve and the Ollama Modelfile: its sampling (the manifest's
meta.sampling) and its system prompt (meta.system when the recipe sets one, else the system prompt its training
conversations use most), each overridable (SYSTEM=, TEMPERATURE=, TOP_P=, MAX_NEW_TOKENS=; SYSTEM=none for
none). Also the conversations of a run's datasets, read the way axolotl reads them."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import yaml

from core import manifest
from core.manifest import Sampling
from core.settings import Settings


@dataclass
class ChatDefaults:
    system: str | None
    system_from: str
    temperature: float
    top_p: float | None
    max_new_tokens: int


def conversations(config: dict, section: str = "datasets") -> tuple[list[list[dict]], str]:
    """(conversations, the first file's name) of the config's `section` (datasets or test_datasets)."""
    from data.entries import dataset_file, dataset_format
    from data.formats import to_messages
    from data.validate import read_jsonl

    out, source = [], ""
    for ds in config.get(section) or []:
        path = dataset_file(ds)
        if not path.is_file():
            continue
        fmt, fields = dataset_format(ds)
        source = source or path.name
        for _, rec, err in read_jsonl(path):
            if err or not isinstance(rec, dict):
                continue
            if fmt == "prompt-completion":
                out.append(
                    [
                        {"role": "user", "content": str(rec.get(fields["prompt"], ""))},
                        {"role": "assistant", "content": str(rec.get(fields["completion"], ""))},
                    ]
                )
            elif fmt == "messages" and isinstance(rec.get(fields["field"]), list):
                out.append(to_messages({"messages": rec[fields["field"]]}, "messages"))
    return out, source


def trained_system_prompt(config: dict) -> tuple[str | None, str]:
    convs, source = conversations(config)
    systems = Counter(c[0]["content"] for c in convs if c and c[0].get("role") == "system")
    if not systems:
        return None, f"none (no system prompt in {source or 'the training data'})"
    text, n = systems.most_common(1)[0]
    return text, f"the training data ({source}: {n} of {len(convs)} conversations)"


def resolve(run: Path | None, s: Settings, **given) -> ChatDefaults:
    """`given` (command-line values: system, temperature, top_p, max_new_tokens) win, then the environment,
    then the run's recipe."""
    sampling, meta_system, config = Sampling(), None, {}
    if run is not None:
        m = manifest.read(run)
        sampling, meta_system = m.train.meta.sampling, getattr(m.train.meta, "system", None)
        if (run / "config.yaml").is_file():
            config = yaml.safe_load((run / "config.yaml").read_text()) or {}

    def first(name: str, default):
        for value in (given.get(name), getattr(s, name)):
            if value is not None:
                return value
        return default

    system, where = (given["system"], "--system") if given.get("system") else (s.system, "SYSTEM=")
    if system is None and meta_system:
        system, where = meta_system, "the recipe (meta.system)"
    elif system is None:
        system, where = trained_system_prompt(config) if config else (None, "none (no run)")
    if system is not None and system.strip().lower() == "none":
        system, where = None, "none (SYSTEM=none)"
    return ChatDefaults(
        system=system,
        system_from=where,
        temperature=first("temperature", sampling.temperature),
        top_p=first("top_p", sampling.top_p),
        max_new_tokens=first("max_new_tokens", sampling.max_new_tokens),
    )
