"""The recipe's `meta:` block, typed: what the repo needs to know about a recipe beyond axolotl's own keys
(description, family, size, method, suggested GPUs, data format, evaluation suite, sampling, system prompt,
where a local base model comes from). Optional: a plain axolotl config has none. Stripped before axolotl sees the
config."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from core.settings import STRATEGIES

# how a recipe trains: LoRA on a bf16 base, LoRA on an 8-bit (bitsandbytes LLM.int8) base, LoRA on a 4-bit nf4
# base (QLoRA), or every weight
METHODS = ("lora", "lora-8bit", "qlora", "full")
ADAPTER_METHODS = ("lora", "lora-8bit", "qlora")  # a base model frozen under a LoRA adapter


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GpuSuggestion(_Strict):
    type: str = Field(description="GPU model the recipe was sized for, e.g. A40, H100")
    count: int = Field(1, ge=0, description="0 for CPU-only recipes")


class LocalSource(_Strict):
    """A base model shipped inside a PyPI wheel as GGUF, materialized once into an HF folder."""

    package: str
    file: str
    eos_token: str | None = None
    pad_token: str | None = None


class Sampling(_Strict):
    """Recommended generation settings (the Brie cards: temperature 0.75, no top_p)."""

    temperature: float = 0.75
    top_p: float | None = None
    max_new_tokens: int = 512


class StartFromSpec(_Strict):
    """Start from another recipe's latest completed run (FROM_RUN= names a run instead): its adapter is merged
    into its base (verified, tools/export/merge.py) and that merged model is this run's base_model, so a
    preference run's reference model is the SFT model itself."""

    recipe: str
    prefs: bool = Field(
        False, description="train on that run's `make prefs` pairs (its manifest's prefs section), not datasets:"
    )


class Meta(_Strict):
    """Every field is optional: what a recipe does not say is derived from the config and the model's own files
    (resolver/derive.py); what it says overrides and documents."""

    description: str | None = None
    family: str | None = Field(
        None, description="the model's config.json model_type (open: whatever transformers knows)"
    )
    params_b: float | None = Field(None, gt=0, description="parameter count in billions")
    method: Literal[METHODS] | None = None  # type: ignore[valid-type]
    gpu: GpuSuggestion | None = None
    data_format: str | None = Field(None, description="messages, prompt-completion, alpaca, completion, ...")
    eval_suite: str | None = None
    hub_name: str | None = None
    seed: str | None = Field(None, description="which seed document the settings come from")
    local_source: LocalSource | None = None
    sampling: Sampling = Sampling()
    system: str | None = Field(
        None,
        description="the system prompt chat, serve and the Ollama Modelfile use "
        "(default: the one the training conversations use most)",
    )
    start_from: StartFromSpec | None = None
    distributed: Literal[STRATEGIES] = Field(  # type: ignore[valid-type]
        "auto", description="multi-GPU strategy; auto picks from the plan (launch/distributed/strategy.py)"
    )
