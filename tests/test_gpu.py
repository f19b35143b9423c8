"""GPU-only tests (marked gpu): skipped, with the reason printed, where torch sees no CUDA device; on a GPU machine
they run in child processes that get the machine's own CUDA visibility back (tests/conftest.py gpu_env), while the
rest of the suite stays on the CPU. What they check is what the CPU tests cannot: the set-up's fast path imports and
fits this GPU, `make train` measures itself here (GPU memory and MFU), and generation runs batched in bf16."""

from __future__ import annotations

import subprocess
import sys

import pytest

from core.paths import REPO
from tests.conftest import gpu_env

pytestmark = pytest.mark.gpu


def child(*args: str, timeout: int = 1800, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=REPO, env=gpu_env(**env), capture_output=True, text=True, timeout=timeout
    )


def test_the_fast_path_of_make_setup_works_on_this_gpu():
    proc = child("-m", "launch.preflight.kernels")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "GPU fast path on" in proc.stdout and "[error]" not in proc.stdout


def test_make_train_measures_itself_on_this_gpu(tiny_model, tmp_path):
    """tokens/s, peak GPU memory (allocated and reserved) and an MFU (or the GPU named as not in the table)."""
    from core import manifest, rundir

    args = (
        f"--base_model={tiny_model('llama')} --max_steps=4 --save_steps=4 --sequence_len=512 --test_datasets=null "
        "--eval_steps=null --eval_strategy=no --logging_steps=1"
    )
    proc = child("-m", "launch.train", "qwen25-3b-instruct-brie", "--force", f"--args={args}", OUTPUTS=str(tmp_path))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    pointer = tmp_path / "runs" / "qwen25-3b-instruct-brie" / rundir.LATEST
    t = manifest.read(pointer.parent / pointer.read_text().strip()).train.telemetry
    assert t.device != "cpu" and t.tokens_per_s > 0 and t.peak_gpu_allocated_gib > 0
    assert t.peak_gpu_reserved_gib >= t.peak_gpu_allocated_gib and t.plan.vram_gib > 0
    assert t.mfu is not None or "not in launch/preflight/gpus.yaml" in t.mfu_note


def test_generation_on_the_gpu_is_batched_in_bf16(tmp_path):
    code = (
        "from core import settings; from eval.generate import Generator; from tools.tiny_models import smollm2_dir; "
        "s = settings.load(); g = Generator(str(smollm2_dir(s.cache)), None, 0, s=s); "
        "items = [{'prompt': p, 'temperature': 0.0, 'top_p': None, 'max_tokens': 8, 'item': p} for p in ('Hi.', 'Bye.')]; "
        "r = g.generate_many(items); print('GEN', g.backend_key, [x['batch'] for x in r])"
    )
    proc = child("-c", code, OUTPUTS=str(tmp_path), timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "GEN hf:cuda:" in proc.stdout and "[2, 2]" in proc.stdout
