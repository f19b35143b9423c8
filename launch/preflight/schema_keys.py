"""The key names axolotl's schema knows (its config model and the dataset models of SFT, DPO and KTO), without
importing axolotl in the process that asks: importing its schema imports torch, transformers and peft (seconds),
reading them back from the cache folder takes a millisecond. They are read once per installed axolotl version
and set of plugins, in a child process (`python -m launch.preflight.schema_keys '<plugins as JSON>'`), and kept
in <cache>/axolotl-schema/. A config with a plugin from outside axolotl (its package has a version of its own),
or with one axolotl could not load here, is read each time, never kept."""

from __future__ import annotations

import copy
import hashlib
import importlib.metadata as md
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from core import atomic
from core.childenv import child_env
from core.paths import REPO

DATASET_KINDS = {"dpo": "dpo", "ipo": "dpo", "simpo": "dpo", "kto": "kto"}  # rl: -> schema; others: sft
FAILED = 3  # the child's exit status when a plugin cannot be loaded


class PluginsUnavailable(ImportError):
    """A plugin of the config cannot be loaded here (its package is not installed)."""


@dataclass(frozen=True)
class SchemaKeys:
    config: frozenset[str]
    datasets: dict[str, frozenset[str]]  # sft | dpo | kto -> the dataset entry's keys

    def dataset(self, rl: str | None) -> frozenset[str]:
        return self.datasets[DATASET_KINDS.get(str(rl), "sft")]


def _cache_file(plugins: list[str], cache: Path) -> Any:
    version = md.version("axolotl")
    digest = hashlib.sha256(json.dumps(sorted(plugins)).encode()).hexdigest()[:12]
    return cache / "axolotl-schema" / f"axolotl-{version}-{digest}.json"


def _parse(data: dict[str, Any]) -> SchemaKeys:
    return SchemaKeys(frozenset(data["config"]), {k: frozenset(v) for k, v in data["datasets"].items()})


def schema_keys(plugins: list[str], cache: Path) -> SchemaKeys:
    """The schema's key names for a config with these plugins (axolotl's schema grows with each plugin's args),
    kept under `cache` (AFFINAGE_CACHE)."""
    plugins = list(plugins)
    keep = all(p.startswith("axolotl.") for p in plugins)
    path = _cache_file(plugins, cache)
    if keep and path.is_file():
        try:
            return _parse(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError):
            pass  # a damaged cache file is read again from axolotl
    proc = subprocess.run(
        [sys.executable, "-m", "launch.preflight.schema_keys", json.dumps(plugins)],
        cwd=REPO,
        env=child_env(),
        capture_output=True,
        text=True,
    )
    if proc.returncode == FAILED:
        raise PluginsUnavailable(proc.stdout.strip().splitlines()[-1])
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
        raise RuntimeError(f"reading axolotl's schema failed:\n{tail}")
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    if keep and not data.pop("unloaded"):  # a plugin axolotl skipped here may load once its package is installed
        atomic.write_json(path, data)
    return _parse(data)


def field_names(model: type[BaseModel]) -> set[str]:
    names = set()
    for name, field in model.model_fields.items():
        names.add(name)
        if field.alias:
            names.add(field.alias)
    return names


def config_classes(config: dict[str, Any]):
    """axolotl's (config with capabilities, input config) schema classes, with the config's plugins' args merged."""
    from axolotl.utils.config import prepare_plugins
    from axolotl.utils.schemas.config import AxolotlConfigWCapabilities, AxolotlInputConfig

    if config.get("plugins"):
        from axolotl.utils.config import merge_input_args
        from axolotl.utils.dict import DictDefault

        prepare_plugins(DictDefault(copy.deepcopy(config)))
        return merge_input_args()
    return AxolotlConfigWCapabilities, AxolotlInputConfig


def dataset_class(rl: str | None) -> type[BaseModel]:
    """The schema axolotl validates a dataset entry with: DPO's for dpo/ipo/simpo (it keeps only path, split,
    type, data_files, revision and field_messages/chosen/rejected), KTO's for kto, SFT's otherwise (ORPO too)."""
    from axolotl.utils.schemas.datasets import DPODataset, KTODataset, SFTDataset

    return {"dpo": DPODataset, "ipo": DPODataset, "simpo": DPODataset, "kto": KTODataset}.get(str(rl), SFTDataset)


def _read_in_process(plugins: list[str]) -> dict[str, Any]:
    """The child's work: axolotl's schema classes (merged with the plugins' args) read for their field names."""
    _, input_cls = config_classes({"plugins": plugins} if plugins else {})
    rl_of = {"sft": None, "dpo": "dpo", "kto": "kto"}
    loaded = set()
    if plugins:  # axolotl says a plugin it cannot import and goes on without it (and without its keys)
        from axolotl.integrations.base import PluginManager

        loaded = set(PluginManager.get_instance().plugins)
    return {
        "config": sorted(field_names(input_cls)),
        "datasets": {kind: sorted(field_names(dataset_class(rl))) for kind, rl in rl_of.items()},
        "unloaded": sorted(set(plugins) - loaded),
    }


def main(argv: list[str]) -> int:
    try:
        data = _read_in_process(json.loads(argv[0]) if argv else [])
    except (ImportError, AttributeError) as exc:  # a plugin whose package is not installed here
        print(str(exc).replace("\n", " "))
        return FAILED
    print(json.dumps(data))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
