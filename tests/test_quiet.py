"""Quiet terminals (core/quiet.py, core/harmless.py): the library messages known to be harmless go to the command's
log; everything else, the same loggers' and warning categories' other messages included, stays on the terminal."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from core import child
from core.harmless import KNOWN, text_entry
from core.paths import REPO
from tests.conftest import run_cli

PYTREE = "is an Enum subclass and is now natively supported by torch.compile"
GEMM = "Failed to load CPU gemm_4bit_forward from kernels-community"


def test_make_check_shows_its_own_output_and_logs_the_library_noise(outputs):
    """`make check` imports torch, torchao and bitsandbytes as a user runs it; the noise they print on a CPU (torch's
    pytree deprecation about torchao's Enums, bitsandbytes' optional kernel) lands in the log, not the terminal."""
    # FORCE=1: the checks through axolotl run (and import the libraries) even where an earlier check kept its findings
    r = run_cli("launch.preflight", "smollm2-135m-cpu", env={"OUTPUTS": str(outputs), "FORCE": "1"}, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    terminal = (r.stdout + r.stderr).splitlines()
    assert terminal[0].startswith("[ok] recipe: smollm2-135m-cpu"), terminal[:5]  # the command's own line first
    assert not [line for line in terminal if text_entry(line)], terminal
    assert not [line for line in terminal if PYTREE in line or GEMM in line], terminal
    log = outputs / "logs" / "preflight.log"
    assert f"went to {log}" in r.stderr.splitlines()[-1]
    logged = log.read_text()
    assert "known-harmless library messages of: preflight smollm2-135m-cpu" in logged
    assert f"torch.utils._pytree WARNING: <enum 'KernelPreference'> {PYTREE}" in logged
    assert f"bitsandbytes.backends.cpu.ops WARNING: {GEMM}" in logged


PROGRAM = textwrap.dedent(
    """
    import logging, sys, warnings
    from core import cli

    warnings.simplefilter("always")  # DeprecationWarning too

    DATALOADER = "/venv/lib/python3.12/site-packages/torch/utils/data/dataloader.py"
    PIN = ("'pin_memory' argument is set as true but no accelerator is found, then device pinned memory won't be "
           "used.")
    ENUM = ("<enum 'Mode'> is an Enum subclass and is now natively supported by torch.compile as an opaque value "
            "type. Calling register_constant() on Enum subclasses is deprecated and will be an error in a future "
            "release.")

    def body(s):
        pytree = logging.getLogger("torch.utils._pytree")
        pytree.warning(ENUM)  # listed
        pytree.warning("register_constant() was given a class it cannot hash")  # same logger, another message
        logging.getLogger("someone.else").warning(ENUM)  # the listed message from another logger
        warnings.warn_explicit(PIN, UserWarning, DATALOADER, 1102)  # listed
        warnings.warn_explicit("pin_memory is odd today", UserWarning, DATALOADER, 1103)  # another message
        warnings.warn_explicit(PIN, UserWarning, "/elsewhere/loader.py", 7)  # the listed message, another file
        warnings.warn_explicit(PIN, DeprecationWarning, DATALOADER, 1104)  # another category
        print("the command's own line")

    sys.exit(cli.main(body))
    """
)


def _run(code: str, outputs) -> subprocess.CompletedProcess:
    """`code` as a command of its own, outputs/noisy_cmd.py (its log: OUTPUTS/logs/noisy_cmd.log)."""
    script = outputs.parent / "noisy_cmd.py"
    script.write_text(code)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OUTPUTS": str(outputs)}
    return subprocess.run([sys.executable, str(script)], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def test_unknown_messages_stay_on_the_terminal_known_ones_go_to_the_log(outputs):
    r = _run(PROGRAM, outputs)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "the command's own line\n"
    err = r.stderr
    assert "register_constant() was given a class it cannot hash" in err
    assert err.count("is an Enum subclass") == 1  # someone.else's, not torch.utils._pytree's
    assert "dataloader.py:1103: UserWarning: pin_memory is odd today" in err
    assert "/elsewhere/loader.py:7: UserWarning: 'pin_memory' argument" in err
    assert "dataloader.py:1104: DeprecationWarning: 'pin_memory' argument" in err
    assert "dataloader.py:1102" not in err
    log = outputs / "logs" / "noisy_cmd.log"
    assert err.splitlines()[-1] == f"note: 2 known-harmless library message(s) went to {log}"
    logged = log.read_text()
    assert "torch.utils._pytree WARNING: <enum 'Mode'> is an Enum subclass" in logged
    assert "UserWarning /venv/lib/python3.12/site-packages/torch/utils/data/dataloader.py:1102: 'pin_memory'" in logged
    assert "cannot hash" not in logged and "pin_memory is odd" not in logged


def test_a_failing_command_ends_on_its_error_not_on_the_note(outputs):
    failing = PROGRAM.replace(
        'print("the command\'s own line")', 'from core.errors import UserError; raise UserError("bad input")'
    )
    r = _run(failing, outputs)
    assert r.returncode == 2
    assert r.stderr.splitlines()[-1] == "error: bad input"
    assert "torch.utils._pytree WARNING" in (outputs / "logs" / "noisy_cmd.log").read_text()  # kept, not said


TRAIN_LINES = [
    "W1207 15:35:38.157000 16076 torch/utils/_pytree.py:630] <enum 'KernelPreference'> is an Enum subclass and is "
    "now natively supported by torch.compile as an opaque value type. Calling register_constant() on Enum subclasses "
    "is deprecated and will be an error in a future release.",
    "[2026-12-07 15:35:38,881] [WARNING] [kernels.hf_hub] Skipping publisher trust check for "
    "'kernels-community/quantization-bitsandbytes' because Hugging Face Hub is in offline mode.",
    "[2026-12-07 15:35:38,881] [WARNING] [bitsandbytes.backends.cpu.ops] Failed to load CPU gemm_4bit_forward from "
    "kernels-community: Version 1 is not available. Please make sure you already `pip install kernels` and the "
    "kernels >= 0.11.1",
    "[2026-12-07 15:35:45,685] [WARNING] [axolotl.utils.data.sft] Processing datasets during training can lead to "
    "VRAM instability. Please pre-process your dataset using `axolotl preprocess path/to/config.yml`.",
    "[rank0]: [2026-12-07 15:36:42,351] [WARNING] [real_accelerator.py:213:get_accelerator] Setting accelerator to "
    "CPU. If you have GPU or other accelerator, we were unable to detect it.",
    "[2026-12-07 15:36:46,324] [WARNING] [py.warnings] /venv/lib/python3.12/site-packages/torch/utils/data/"
    "dataloader.py:1102: UserWarning: 'pin_memory' argument is set as true but no accelerator is found, then device "
    "pinned memory won't be used.",
    "  super().__init__(loader)",  # the warning's source line
]
KEPT_LINES = [
    "[2026-12-07 15:35:42,257] [INFO] [axolotl.integrations.base] Plugin loaded successfully: launch.seed_plugin",
    "[2026-12-07 15:35:45,685] [WARNING] [axolotl.utils.data.sft] Dataset philosophy has 3 records over sequence_len",
    "[2026-12-07 15:35:45,685] [WARNING] [axolotl.other] Processing datasets during training can lead to VRAM "
    "instability. Please pre-process your dataset using `axolotl preprocess path/to/config.yml`.",
    "W1207 15:35:38.157000 16076 torch/utils/_pytree.py:630] register_constant() failed for <class 'Mode'>",
    "[2026-12-07 15:36:46,324] [WARNING] [py.warnings] /venv/lib/python3.12/site-packages/torch/utils/data/"
    "dataloader.py:1102: UserWarning: num_workers is larger than the number of CPUs",
    "  super().__init__(loader)",  # the source line of a warning that is shown: shown too
    "{'loss': '3.872', 'grad_norm': '0.8903'}",
    "  0%|          | 0/3 [00:00<?, ?it/s]",
]


def test_child_output_loses_only_the_listed_lines_from_the_screen_and_nothing_from_the_log(tmp_path):
    """child.run on a real child: the screen gets every line but the listed ones; the log gets them all."""
    lines = [KEPT_LINES[0], *TRAIN_LINES, *KEPT_LINES[1:], "Traceback (most recent call last):"]
    lines += ['  File "x.py", line 1, in <module>', "RuntimeError: the real failure"]
    script = tmp_path / "noisy.py"
    script.write_text(
        f"import sys\nfor line in {lines!r}:\n    print(line, file=sys.stderr, flush=True)\nsys.exit(1)\n"
    )
    shown: list[str] = []
    outcome = child.run([sys.executable, str(script)], tmp_path / "logs" / "train.log", show=shown.append)
    screen = [s.rstrip("\n") for s in shown]
    assert screen[: len(KEPT_LINES)] == KEPT_LINES
    assert not [line for line in screen if line in TRAIN_LINES[:-1]]
    assert screen[-1].startswith("  RuntimeError: the real failure  (traceback in ")
    assert outcome.errors == ["RuntimeError: the real failure"]
    assert (tmp_path / "logs" / "train.log").read_text().splitlines() == lines


def test_every_listed_entry_names_its_source_and_reason_and_one_way_to_match():
    for e in KNOWN:
        assert e.source and e.why, e
        assert sum(bool(x) for x in (e.logger, e.category, e.native)) == 1, e
        assert not e.category or e.module, e  # a warning is matched by its file as well as its category


def test_the_docs_list_every_logger_and_warning_file_of_the_table():
    section = (REPO / "docs" / "run-directory.md").read_text().split("## Quiet terminals", 1)[1]
    for e in KNOWN:
        named = e.logger or e.module.replace("\\", "") or f"level {e.native}"
        assert named in section, (named, e.source)


def test_llama_cpp_log_lines_are_sorted_by_ggml_level_and_text(outputs, capsys):
    """llama.cpp's log through our callback (what llama_log_set gets): ggml's levels as numbered now (2 INFO, 3 WARN,
    5 continues a line), a line printed or not as llama-cpp-python's own callback would, a listed line to the log."""
    import logging

    from core import quiet

    lib = logging.getLogger("llama-cpp-python")
    before = lib.level
    quiet.begin("gguf")
    try:
        lib.setLevel(logging.NOTSET)  # make gguf: nothing has called set_verbose
        quiet.llama_log(2, b"llama_model_loader: - kv   0: general.architecture str = llama\n")
        quiet.llama_log(3, b"warning: blk.0.attn_k.weight                  - ncols    576 not divisible by 256 ")
        quiet.llama_log(5, b"(required for type    q4_K) -> falling back to    q5_0\n")
        quiet.llama_log(3, b"warning: blk.0.attn_k.weight has NaN values\n")  # WARN, not listed
        quiet.llama_log(4, b"llama_model_load: error loading model\n")  # ERROR
        lib.setLevel(logging.ERROR)  # Llama(verbose=False)
        quiet.llama_log(2, b"load_tensors: layer 0 assigned to device CPU\n")  # the library prints no INFO then
        quiet.llama_log(3, b"llama_context: n_ctx_seq (512) < n_ctx_train (8192)\n")  # but it does print WARN
    finally:
        quiet.end(outputs)
        lib.setLevel(before)
    err = capsys.readouterr().err
    assert "has NaN values" in err and "error loading model" in err and "n_ctx_seq (512)" in err
    assert "general.architecture" not in err and "falling back" not in err and "assigned to device" not in err
    logged = (outputs / "logs" / "gguf.log").read_text()
    assert "llama.cpp INFO: llama_model_loader: - kv   0: general.architecture" in logged
    assert "llama.cpp WARN: warning: blk.0.attn_k.weight" in logged and "falling back to    q5_0" in logged
    assert "NaN" not in logged and "assigned to device" not in logged
