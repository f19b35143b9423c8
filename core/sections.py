"""The manifest's sections written after training, one per step (merge, gguf, lm_eval, judge, push, prefs), and
the base every manifest record shares. core/manifest.py assembles them into the Manifest and reads/writes it."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict


class Record(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class MergeSection(Record):
    path: str
    dtype: str | None = None
    lora_modules: int | None = None
    changed_tensors: int | None = None
    logits_max_abs_diff: float | None = None
    chat_template: bool | None = None
    eos_token: str | None = None
    files: dict[str, str] = {}
    adapter_sha256: str | None = None
    merged_at: str | None = None


class GgufFile(Record):
    file: str
    bytes: int | None = None
    sha256: str | None = None
    agreement: float | None = None  # greedy tokens equal to the HF model's, up to the first difference
    prompt_ids_match: bool | None = None
    # vs the reference (f16) file on the held-out text (tools/export/quality.py); ppl for the reference too
    mean_kl: float | None = None  # nats per token
    kl_p99: float | None = None
    top1: float | None = None  # share of positions with the same most likely next token
    ppl: float | None = None
    kl_limit: float | None = None  # the quant type's limit above which the file is broken
    broken: bool | None = None


class GgufQuality(Record):
    """How the quant quality figures were measured (llama-perplexity's method)."""

    text: str = ""  # which file's conversations, rendered through the chat template
    reference: str = ""
    n_ctx: int
    chunks: int
    tokens: int
    positions: int  # scored next-token positions (the second half of each chunk)
    reference_ppl: float | None = None


class GgufSection(Record):
    path: str
    outtype: str = "f16"
    files: dict[str, GgufFile] = {}
    parity: str | None = None
    problems: list[str] = []
    chat_template: bool | None = None
    eos_token_id: int | None = None
    quality: GgufQuality | None = None
    at: str | None = None


class EvalResult(Record):
    task: str
    backend: str
    dataset: str | None = None
    metrics: dict[str, float]
    # what produced the row: "hf:<device>:<dtype>" (transformers) or "llama.cpp:<GGUF file>" (None: an older run)
    engine: str | None = None


class LmEvalSection(Record):
    results: list[EvalResult] = []
    version: str | None = None
    task: str | None = None
    task_files: dict[str, str] = {}
    docs: int | None = None
    limit: int | None = None
    chat_template: bool | None = None
    sampling: dict[str, Any] = {}
    seed: int | None = None
    at: str | None = None
    # the base model on the same documents (the row every result is compared with), and per-document
    # scores: backend -> a JSONL file in the run directory (the statistics resample documents)
    base: EvalResult | None = None
    samples: dict[str, str] = {}
    # how the backends were chosen: "BACKENDS" (asked for), or the machine's default (eval/lmeval.py
    # default_backends); base_gguf: the cached f16 GGUF the base row was scored on (tools/export/base_gguf.py)
    choice: str | None = None
    base_gguf: dict[str, Any] | None = None


class HeldoutRecord(Record):
    """Judging a run trained on `make prefs` pairs (its own or those of a run in its chain): only the suite prompts
    no pair was drawn from are judged, for the pairs' own suite its held-out part (eval/prefs_split.py)."""

    n: int  # prompts judged
    of: int  # prompts of the suite
    excluded: int  # prompts in the training part of those pairs
    sources: list[str] = []  # the pairs files, each with the run that trained on it


class JudgeSection(Record):
    suite: str | None = None
    seed: int | None = None
    baseline: str = "base model"
    files: list[str] = []
    agreement: dict[str, Any] | None = None
    judges: dict[str, dict[str, Any]] = {}
    at: str | None = None
    # both models' answers per prompt (a JSONL file in the run directory) and the position-consistency floor
    generations: str | None = None
    min_consistency: float | None = None
    backends: dict[str, str] = {}  # how each side's answers were generated (eval/generate.py backend_key)
    heldout: HeldoutRecord | None = None  # set when the run trained on make prefs pairs: only their held-out part


class PushedRepo(Record):
    repo_id: str
    commit: str | None = None
    url: str | None = None
    files: list[str] = []


class PushSection(Record):
    repo: str
    private: bool = True
    complete: bool = False
    repos: dict[str, PushedRepo] = {}
    at: str | None = None


class PrefsSection(Record):
    """`make prefs`: preference pairs built from this run's judged generations (eval/prefs.py)."""

    path: str  # pairs-messages JSONL in the run directory, one provenance record per pair
    val_path: str | None = None
    sha256: str | None = None
    judges: list[str] = []
    agree: Literal["any", "all"] = "any"
    pairs: int = 0
    val_pairs: int = 0
    dropped: dict[str, int] = {}
    chosen_longer_share: float | None = None
    forced: bool = False
    at: str | None = None
    # the judged prompts the pairs were drawn from (training part) and those kept back for judging the tuned run
    suite: str | None = None
    train_prompts: int = 0
    heldout_prompts: int = 0
    heldout_path: str | None = None  # JSONL of the held-out suite lines, in the run directory


class PlanMemory(Record):
    """`make plan`'s GPU memory estimate for the run's own config on the machine that trained it."""

    total_gib: float
    parts_gib: dict[str, float] = {}
    strategy: str = "none"
    gpus: int = 1
    vram_gib: float | None = None  # the GPU's memory (None on CPU: the estimate is of a GPU's memory)


class TrainTelemetry(Record):
    """What the training process measured about itself (launch/telemetry.py), beside the plan's estimate."""

    device: str  # the GPU's name, or "cpu"
    file: str | None = None  # the raw per-step record, relative to the run directory
    steps: int = 0
    timed_steps: int = 0  # the steps after the first few (kernel compilation, allocator warm-up)
    timed_seconds: float | None = None
    tokens: int = 0  # real tokens over every step (attention_mask != 0: padding excluded)
    slots: int = 0  # token positions the batches held, padding included
    timed_tokens: int = 0
    tokens_per_s: float | None = None  # per GPU (rank 0's batches) over the timed steps
    peak_gpu_allocated_gib: float | None = None
    peak_gpu_reserved_gib: float | None = None
    peak_rss_gib: float | None = None  # the training process and its children, sampled
    matmul_frozen: int | None = None
    matmul_trained: int | None = None
    flops_per_token: float | None = None  # 4 x frozen + 6 x trained matmul weights
    attention_flops: float | None = None  # over the timed steps, from the samples' real lengths
    mfu: float | None = None
    mfu_note: str | None = None  # why there is no MFU (CPU, a GPU not in the table), or the peak used
    gpu_peak_tflops: float | None = None
    plan: PlanMemory | None = None
    plan_note: str | None = None  # why there is no plan (no offline facts for the model)


class RewardJudgeRecord(Record):
    """A GRPO judge reward's judge, measured before training: its agreement with itself on the calibration pairs
    (eval/reward_judge.py measure). make judge refuses this judge for the run and its chain."""

    judge: str
    mode: str  # score | pairwise
    model: str
    endpoint: str | None = None
    n: int
    agreed: int
    consistency: float
    floor: float
    failed_requests: int = 0
    calibration: str | None = None
    at: str | None = None


class GrpoRecord(Record):
    """How a GRPO run generated and was rewarded (launch/grpo.py): the trl block's settings, where generation ran,
    and each judge reward's measured judge (by reward function path)."""

    num_generations: int | None = None
    max_completion_length: int | None = None
    beta: float | None = None
    reward_funcs: list[str] = []
    reward_weights: list[float] | None = None
    generation: str = ""
    judges: dict[str, RewardJudgeRecord] = {}


class RewardStep(Record):
    """One logged step of a GRPO run, from TRL's log: the weighted reward, its spread, each reward function's mean,
    and what the reward functions logged themselves (a judge's failed share, its position consistency)."""

    step: int
    reward: float | None = None
    reward_std: float | None = None
    functions: dict[str, float | None] = {}
    metrics: dict[str, float] = {}
