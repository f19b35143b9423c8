"""The library messages known to be harmless (core/quiet.py sends them to the command's log, not the terminal):
each with where it comes from, why a user can ignore it, and how it is matched. An entry is matched precisely: a
logging record by its logger and whole message, a Python warning by its category, the end of its file's path and
its whole message, llama.cpp's own log by its level and text. docs/run-directory.md lists them for users
(tests/test_quiet.py keeps the two in step). Nothing here imports a library."""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Harmless:
    source: str  # the package that prints it, and what makes it
    why: str  # why a user can ignore it
    message: str  # regex for the whole message
    logger: str = ""  # logging: the logger that emits it
    category: str = ""  # warnings: the category's name
    module: str = ""  # warnings: regex for the end of the warning's file path
    native: str = ""  # llama.cpp's own log: its level (INFO, WARN)
    printed: tuple[str, ...] = ()  # what else a child's log line names it by (a formatter's file name)
    pattern: re.Pattern = field(init=False, repr=False, compare=False)
    printed_line: re.Pattern = field(init=False, repr=False, compare=False)  # how a child prints it

    def __post_init__(self):
        object.__setattr__(self, "pattern", re.compile(self.message, re.S))
        where = f".*?(?:{self.module}):\\d+: {self.category}: " if self.category else ".*?"  # Python's warning format
        object.__setattr__(self, "printed_line", re.compile(f"(?P<before>{where})(?:{self.message})\\s*$", re.S))


KNOWN: tuple[Harmless, ...] = (
    Harmless(
        source="torch (torch/utils/_pytree.py), when torchao registers its Enums with register_constant()",
        why="a deprecation notice to torchao about an API it calls; Enums already work as constants",
        message=r"<enum '\w+'> is an Enum subclass and is now natively supported by torch\.compile as an opaque "
        r"value type\. Calling register_constant\(\) on Enum subclasses is deprecated and will be an error in a "
        r"future release\.",
        logger="torch.utils._pytree",
    ),
    Harmless(
        source="torchao (its __init__), loading its CUDA kernel libraries (_C_cutlass_90a, _C_mxfp8)",
        why="those kernels serve fp8 / MX-format training on recent NVIDIA GPUs, which no recipe uses; torchao's "
        "Python API works without them",
        message=r"Failed to load \S*/torchao/_C\S*\.so: .*",
        logger="torchao",
    ),
    Harmless(
        source="bitsandbytes (backends/cpu/ops.py), fetching an optional CPU 4-bit kernel from kernels-community",
        why="bitsandbytes falls back to its own CPU implementation; CPU recipes do not load in 4 bit",
        message=r"Failed to load CPU gemm_4bit_forward from kernels-community: .*\. Please make sure you already "
        r"`pip install kernels` and the kernels >= [\d.]+",
        logger="bitsandbytes.backends.cpu.ops",
    ),
    Harmless(
        source="kernels (hf_hub.py), bitsandbytes' optional CPU kernel with HF_HUB_OFFLINE=1",
        why="the same optional kernel (see the bitsandbytes line); offline is the user's own setting",
        message=r"Skipping publisher trust check for 'kernels-community/quantization-bitsandbytes' because Hugging "
        r"Face Hub is in offline mode\.",
        logger="kernels.hf_hub",
    ),
    Harmless(
        source="deepspeed (accelerator/real_accelerator.py), imported by transformers/accelerate/axolotl",
        why="on a machine without a GPU, CPU is the right accelerator; a GPU machine never prints it",
        message=r"Setting accelerator to CPU\. If you have GPU or other accelerator, we were unable to detect it\.",
        logger="DeepSpeed",
        printed=("real_accelerator.py",),
    ),
    Harmless(
        source="torch (utils/data/dataloader.py), axolotl's dataloader_pin_memory on a CPU run",
        why="pinned memory only speeds copies to a GPU; there is none",
        message=r"'pin_memory' argument is set as true but no accelerator is found, then device pinned memory "
        r"won't be used\.",
        category="UserWarning",
        module=r"torch/utils/data/dataloader\.py",
    ),
    Harmless(
        source="axolotl (utils/data/sft.py), at the start of every training run",
        why="axolotl tokenizes into the run's prepared/ folder before loading the model: `axolotl preprocess`'s work",
        message=r"Processing datasets during training can lead to VRAM instability\. Please pre-process your "
        r"dataset using `axolotl preprocess path/to/config\.yml`\.",
        logger="axolotl.utils.data.sft",
    ),
    Harmless(
        source="axolotl (utils/schemas/config.py), validating a GPU LoRA config (make check, make train)",
        why="axolotl's documented default for LoRA on a GPU; make show prints the config as it runs",
        message=r"Auto-enabling LoRA kernel optimizations for faster training\. Please explicitly set "
        r"`lora_\*_kernel` config values to `false` to disable\. See \S+ for more info\.",
        logger="axolotl.utils.schemas.config",
    ),
    Harmless(
        source="transformers (tokenization_utils_tokenizers.py), decoding with SmolLM2's BPE tokenizer",
        why="transformers skips a clean-up that would strip spaces from BPE text: the output is right",
        message=r"Ignoring clean_up_tokenization_spaces=True for BPE tokenizer \w+\. The clean_up_tokenization "
        r"post-processing step is designed for WordPiece tokenizers and is destructive for BPE .*",
        logger="transformers.tokenization_utils_tokenizers",
        printed=("[transformers]",),
    ),
    Harmless(
        source="lm-eval (evaluator.py), every evaluation with a chat template",
        why="it concerns loglikelihood and multiple-choice tasks; make eval's task is generate_until",
        message=r"Chat template formatting change affects loglikelihood and multiple-choice tasks\. See "
        r"docs/chat-template-readme\.md for details\.",
        logger="lm_eval.evaluator",
    ),
    Harmless(
        source="llama.cpp's INFO log (llama-cpp-python's log callback): make gguf's per-tensor quantization report",
        why="a progress report; what make gguf made is checked by its parity report",
        message=r".*",
        native="INFO",
    ),
    Harmless(
        source="llama.cpp (llama_model_quantize), each tensor whose rows do not divide into 256-value K-quant blocks "
        "(SmolLM2's 576 columns)",
        why="that tensor gets the nearest legacy type; make gguf's parity and quality report measure the file",
        message=r"warning: \S+\s+- ncols\s+\d+ not divisible by \d+ \(required for type\s+\w+\) -> falling back to"
        r"\s+\w+\s*",
        native="WARN",
    ),
    Harmless(
        source="llama.cpp (llama_model_quantize), the count of those tensors at the end",
        why="as above",
        message=r"llama_model_quantize_impl: WARNING: \d+ of \d+ tensor\(s\) required fallback quantization\s*",
        native="WARN",
    ),
)


def warning_entry(category: type, filename: str, message: str) -> Harmless | None:
    path = str(filename).replace("\\", "/")
    for e in KNOWN:
        if e.category == category.__name__ and re.search(f"(?:{e.module})$", path) and e.pattern.fullmatch(message):
            return e
    return None


def text_entry(text: str) -> Harmless | None:
    """The entry whose message ends this printed line, in a form that names its source (a log line's header, a
    warning's file and category), or alone on the line (Python's last-resort handler prints the bare message)."""
    for e in KNOWN:
        m = None if e.native else e.printed_line.match(text)
        before = m["before"] if m else ""
        marks = (e.logger, e.logger.replace(".", "/") + ".py", *e.printed) if e.logger else e.printed
        if m and (e.category or not before.strip() or any(mark in before for mark in marks)):
            return e
    return None
