"""What a base model is, from its own small files: config.json (architecture, sizes), generation_config.json,
the tokenizer files and chat template. Never from a hand table per family or model.

Where the files come from, in order: a local model folder; the Hugging Face cache; the offline facts tables
(resolver/hub_models.yaml, shipped for the repo's recipes, then <AFFINAGE_CACHE>/hub_models.yaml, which
`make check` extends with every model it fetched); and, when the Hub can be reached, `fetch` downloads only the
small files into the HF cache through huggingface_hub (gated models with HF_TOKEN). Offline, a fact that cannot be
found is None and the caller says which command would fetch it: never a silent pass.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict

from core import atomic, settings
from core.errors import UserError, Where
from core.hub_refusal import refusal
from core.retry import http_status

SHIPPED = Path(__file__).with_name("hub_models.yaml")
SMALL_FILES = (
    "config.json",
    "generation_config.json",
    "tokenizer_config.json",
    "tokenizer.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    "chat_template.json",
    "tokenizer.model",
    "vocab.json",
    "merges.txt",
    "preprocessor_config.json",
    "processor_config.json",
)


class ModelFacts(BaseModel):
    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)
    model: str  # the hub id or local path asked for
    source: str  # local | hf-cache | table
    config: dict[str, Any]  # config.json
    folder: Path | None = None  # where the files are (a tokenizer may be loaded from here)
    eos_token: str | None = None
    license: str | None = None

    @property
    def architecture(self) -> str:
        return (self.config.get("architectures") or ["AutoModelForCausalLM"])[0]

    @property
    def model_type(self) -> str:
        return str(self.config.get("model_type") or "unknown")

    @property
    def has_tokenizer(self) -> bool:
        return self.folder is not None and (self.folder / "tokenizer_config.json").is_file()

    def generation_config(self) -> dict[str, Any]:
        path = self.folder / "generation_config.json" if self.folder else None
        return json.loads(path.read_text()) if path and path.is_file() else {}


def fetch_hint(model: str) -> str:
    return (
        f"run make check with network access once (it fetches {model}'s config and tokenizer into the HF cache), "
        f"or: hf download {model} config.json generation_config.json tokenizer_config.json tokenizer.json"
    )


def _read_config(folder: Path) -> dict[str, Any]:
    path = folder / "config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(
            f"config.json is not readable JSON: {exc}",
            Where(path),
            "re-download the model's files (hf download <model> config.json)",
        ) from None
    if not isinstance(config, dict):
        raise UserError("config.json is not a JSON object", Where(path, 1))
    return config


def _eos_of(folder: Path) -> str | None:
    path = folder / "tokenizer_config.json"
    if not path.is_file():
        return None
    try:
        eos = json.loads(path.read_text(encoding="utf-8")).get("eos_token")
    except (OSError, json.JSONDecodeError):
        return None
    return eos.get("content") if isinstance(eos, dict) else eos


def _tables(cache: Path) -> dict[str, Any]:
    """The shipped facts, then the user's cache of fetched ones (newer entries win)."""
    out = dict(_read_table(str(SHIPPED)))
    user = cache / "hub_models.yaml"
    if user.is_file():
        out.update(_read_table(str(user)))
    return out


@lru_cache(maxsize=8)
def _read_table(path: str) -> dict[str, Any]:
    return yaml.safe_load(Path(path).read_text()) or {}


def _from_table(model: str, row: dict[str, Any]) -> ModelFacts:
    config = {"model_type": row["config"]["model_type"], "architectures": [row["architecture"]], **row["config"]}
    return ModelFacts(
        model=model, source="table", config=config, eos_token=row.get("eos_token"), license=row.get("license")
    )


def _cached_folder(model: str) -> Path | None:
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(model, "config.json")
    return Path(found).parent if isinstance(found, str) else None


def is_path(model: str) -> bool:
    """A local folder rather than a Hub id (org/name)."""
    return model.startswith(("/", ".", "~")) or model.count("/") > 1 or Path(model).expanduser().exists()


def find(model: str, *, cache: Path) -> ModelFacts | None:
    """The facts available without the network (`cache`: AFFINAGE_CACHE, which keeps the fetched ones), or
    None."""
    local = Path(model).expanduser()
    if (local / "config.json").is_file():
        return ModelFacts(
            model=model, source="local", config=_read_config(local), folder=local, eos_token=_eos_of(local)
        )
    if is_path(model):
        return None
    folder = _cached_folder(model)
    row = _tables(cache).get(model)
    if folder is not None:
        return ModelFacts(
            model=model,
            source="hf-cache",
            config=_read_config(folder),
            folder=folder,
            eos_token=_eos_of(folder),
            license=row.get("license") if row else None,
        )
    return _from_table(model, row) if row else None


class HubUnreachable(UserError):
    """The Hub could not be reached at all (no network, DNS, proxy): callers that have the offline facts table
    fall back to it instead of failing."""


DEFAULT_ENDPOINT = "https://huggingface.co"
PROBE_TIMEOUT_S = 3.0  # one short request: an answer of any status means the Hub can be reached
_down: set[str] = set()  # endpoints a fetch found unreachable after the probe said yes


def endpoint(s: settings.Settings) -> str:
    return (s.hf_endpoint or DEFAULT_ENDPOINT).rstrip("/")


@lru_cache(maxsize=8)
def reachable(url: str) -> bool:
    """Whether `url` answers one short request (no network, DNS, a refused connection or a timeout: no)."""
    import httpx

    try:
        httpx.head(url, timeout=PROBE_TIMEOUT_S, follow_redirects=False)
    except (httpx.HTTPError, OSError, ValueError):
        return False
    return True


def online(s: settings.Settings) -> bool:
    """Whether to try the Hub: not with HF_HUB_OFFLINE=1, nor when one short probe of the endpoint (HF_ENDPOINT)
    gets no answer; no network then behaves exactly as HF_HUB_OFFLINE=1 does."""
    return not s.hf_hub_offline and endpoint(s) not in _down and reachable(endpoint(s))


def offline_reason(s: settings.Settings) -> str:
    """Why the Hub is not tried, for messages."""
    return "HF_HUB_OFFLINE=1" if s.hf_hub_offline else f"the Hub ({endpoint(s)}) cannot be reached"


def fetch(model: str, s: settings.Settings) -> ModelFacts:
    """Download the model's small files into the HF cache (huggingface_hub, HF_TOKEN for gated models) and
    remember its facts for offline use. Raises UserError when the Hub refuses or does not know the model."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, GatedRepoError, HfHubHTTPError, RepositoryNotFoundError

    token = s.hf_token.get_secret_value() if s.hf_token else None
    try:
        hf_hub_download(model, "config.json", token=token)
    except GatedRepoError:
        raise UserError(
            f"the Hub refused access to {model}: it is gated",
            Where(key="base_model"),
            "accept its licence on huggingface.co, then export HF_TOKEN=<a token of that account>",
        ) from None
    except RepositoryNotFoundError:
        raise UserError(
            f"the Hub knows no model '{model}' (or it is private and HF_TOKEN is not allowed to see it)",
            Where(key="base_model"),
            "check the id, or export HF_TOKEN",
        ) from None
    except HfHubHTTPError as exc:
        refused = refusal(
            exc, f"access to {model}", Where(key="base_model"), "export HF_TOKEN=<a token with access to it>"
        )
        if refused is not None:
            raise refused from None
        status = http_status(exc)
        raise UserError(
            f"fetching {model}'s config.json failed: HTTP {status}",
            Where(key="base_model"),
            "try again, or work offline with HF_HUB_OFFLINE=1",
        ) from None
    except Exception:  # noqa: BLE001 - huggingface_hub raises httpx/OS/runtime errors when the network drops
        _down.add(endpoint(s))  # from now on this process works offline, as with HF_HUB_OFFLINE=1
        raise HubUnreachable(
            f"the Hub ({endpoint(s)}) could not be reached for {model}'s config.json",
            Where(key="base_model"),
            fetch_hint(model),
        ) from None
    for name in SMALL_FILES[1:]:
        try:
            hf_hub_download(model, name, token=token)
        except EntryNotFoundError:
            continue
    facts = find(model, cache=s.cache)
    assert facts is not None and facts.source == "hf-cache", f"{model} was fetched but is not in the HF cache"
    remember(facts, cache=s.cache)
    return facts


def remember(facts: ModelFacts, *, cache: Path) -> None:
    """Add a fetched model to <AFFINAGE_CACHE>/hub_models.yaml, so its facts outlive the HF cache."""
    path = cache / "hub_models.yaml"
    table = _read_table(str(path)) if path.is_file() else {}
    keep = {k: v for k, v in facts.config.items() if isinstance(v, (int, float, str, bool, list, dict)) or v is None}
    row = {"architecture": facts.architecture, "eos_token": facts.eos_token, "config": keep}
    if table.get(facts.model) == row:
        return
    atomic.write_text(path, yaml.safe_dump({**table, facts.model: row}, sort_keys=False))
    _read_table.cache_clear()


def get(model: str, s: settings.Settings, fetch_if_missing: bool = False) -> ModelFacts | None:
    """find(), else fetch() when asked and the Hub can be reached."""
    found = find(model, cache=s.cache)
    if found is not None and (found.source != "table" or not fetch_if_missing):
        return found
    if fetch_if_missing and online(s):
        return fetch(model, s)
    return found
