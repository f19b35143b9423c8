"""What the README and the docs pages state, read against the files and code that hold it: counts of the test
corpora and samples, the stack's versions and supported range, the default pod image and the volume's mount, the
retry budgets, and the constants of the plan, the parity check and the study. Each fact must be stated at least
once (so a reworded page cannot pass vacuously), and every statement of it must agree with the code."""

from __future__ import annotations

import json
import re
import tomllib

import pytest
import yaml

from core import settings
from core.paths import REPO

DOCS = {p.relative_to(REPO).as_posix(): p.read_text() for p in [REPO / "README.md", *(REPO / "docs").glob("*.md")]}


def stated(pattern: str) -> list[tuple[str, str]]:
    """(page, first group) of every match of `pattern` in every page; whitespace in the pattern matches any run of
    whitespace, so a statement broken over two lines is still found."""
    rx = re.compile(re.sub(r"(\\ | )+", r"\\s+", pattern))
    return [(page, m.group(1)) for page, text in DOCS.items() for m in rx.finditer(text)]


def agree(pattern: str, expected) -> None:
    found = stated(pattern)
    assert found, f"no page states /{pattern}/"
    wrong = [(page, value) for page, value in found if value != str(expected)]
    assert not wrong, f"/{pattern}/ should be {expected}: {wrong}"


def lock() -> dict[str, str]:
    pins = re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)$", (REPO / "constraints.txt").read_text(), re.M)
    return {re.sub(r"[-_.]+", "-", n).lower(): v for n, v in pins}


def lines(path: str) -> int:
    return sum(1 for line in (REPO / path).read_text().splitlines() if line.strip())


def test_the_fact_reader_sees_through_line_breaks_and_finds_a_contradiction():
    DOCS["(probe)"] = "`tests/bad_inputs.yaml` holds\n  42 cases"
    try:
        assert ("(probe)", "42") in stated(r"`tests/bad_inputs.yaml` holds (\d+) cases")
        with pytest.raises(AssertionError, match="should be 95"):
            agree(r"`tests/bad_inputs.yaml` holds (\d+) cases", 95)
    finally:
        del DOCS["(probe)"]


def test_corpus_counts_are_counted_from_the_corpora():
    cases = yaml.safe_load((REPO / "tests" / "bad_inputs.yaml").read_text())
    agree(r"`tests/bad_inputs.yaml` holds (\d+) cases", len(cases))
    replies = yaml.safe_load((REPO / "tests" / "judge_replies.yaml").read_text())
    agree(r"`tests/judge_replies.yaml` holds (\d+) cases", len(replies))


def test_sample_and_suite_counts_are_counted_from_the_files():
    agree(r"(\d+) original conversations; \d+ more", lines("data/samples/philosophy_chat.train.jsonl"))
    agree(r"original conversations; (\d+) more", lines("data/samples/philosophy_chat.val.jsonl"))
    agree(r"\((\d+) \+ \d+ original pairs", lines("data/samples/preferences.train.jsonl"))
    agree(r"\(\d+ \+ (\d+) original pairs", lines("data/samples/preferences.val.jsonl"))
    suite = [json.loads(x) for x in (REPO / "eval/suites/brie.jsonl").read_text().splitlines() if x.strip()]
    agree(r"(\d+) in-domain prompts", sum(r["suite"] == "in_domain" for r in suite))
    agree(r"and (\d+) out-of-domain prompts", sum(r["suite"] == "out_of_domain" for r in suite))


def test_the_stack_is_the_lock():
    v = lock()
    agree(r"axolotl (\d[\d.]*) \(transformers", v["axolotl"])
    agree(r"\(transformers (\d[\d.]*), trl", v["transformers"])
    agree(r", trl (\d[\d.]*), peft \d", v["trl"])
    agree(r", peft (\d[\d.]*), accelerate", v["peft"])
    agree(r", accelerate (\d[\d.]*), datasets", v["accelerate"])
    agree(r", datasets (\d[\d.]*)\)", v["datasets"])
    agree(r"\) on torch (\d[\d.]*), the registry's build", v["torch"])
    table = DOCS["docs/setup.md"]
    for row in (
        f"| axolotl | {v['axolotl']} |",
        f"| transformers, trl, peft | {v['transformers']}, {v['trl']}, {v['peft']} |",
        f"| accelerate, datasets | {v['accelerate']}, {v['datasets']} |",
        f"| torch | {v['torch']} |",
        f"| lm_eval | {v['lm-eval']} |",
        f"| llama-cpp-python | {v['llama-cpp-python']} |",
        f"| runpod | {v['runpod']} |",
    ):
        assert row in table, row


def test_python_and_the_supported_range_are_launch_stack():
    from core import stack

    python = stack.SUPPORTED["python"][0]
    agree(r"need only Python (3\.\d+)", python)
    agree(r"\| Python \| (3\.\d+) \(", python)
    for name in stack.SUPPORTED:
        agree(rf"\| (?i:{name}) \| [^|]*?`(>=[^`]+)`", stack.range_text(name))
    low, high = stack.SUPPORTED["axolotl"]
    last = f"{high.split('.')[0]}.{int(high.split('.')[1]) - 1}.x"
    assert f"axolotl | {low} to {last} " in DOCS["docs/setup.md"]


def test_the_default_image_and_the_volume_are_the_codes():
    from launch.cloud import image

    expected = image.official(lock()["axolotl"])
    agree(r"(axolotlai/axolotl-cloud:[\w.-]*\w)", expected)
    agree(r"`(/workspace/[\w-]+)`", image.IMAGE_PYTHON.split("/bin/")[0])
    project = tomllib.loads((REPO / "runpod.toml").read_text())["project"]
    mount = project["volume_mount_path"]
    agree(r"(?:OUTPUTS|HF_HOME)=(/[\w-]+)/", mount)
    agree(r"mounted at `(/[\w-]+)`", mount)
    agree(r"`(/[\w-]+)/outputs/pods/<pod id>\.log`", mount)
    agree(r"container disk (?:is )?(\d+) GB", project["container_disk_size_gb"])


def test_retry_budgets_are_the_codes():
    from eval.judge_client import RETRIES, TIMEOUT_S
    from eval.study.hub import ATTEMPTS as STUDY_HUB
    from launch.cloud.runpod import api
    from tools.export.push import RETRIES as PUSH

    agree(r"`JUDGE_RETRIES(?:=|` \()(\d+)", RETRIES)
    agree(r"\((\d+) attempts in all", RETRIES + 1)
    agree(r"`JUDGE_TIMEOUT_S(?:=|`, )(\d+)", int(TIMEOUT_S))
    agree(r"Hub uploads \(`tools/export/push.py`\): (\d+) attempts", PUSH)
    agree(r"Hub calls \(`eval/study/hub.py`\): (\d+) attempts", STUDY_HUB)
    agree(r"RunPod \(`launch/cloud/runpod/api.py`\): (\d+) attempts", api.ATTEMPTS)
    agree(r"are tried (\d+) times in all", api.ATTEMPTS)
    agree(r"exponential backoff\s+\((\d+), \d+, \d+ s", int(api.BACKOFF_S))


def test_the_judge_clients_own_retries_are_off_as_the_docs_say(monkeypatch):
    from eval.judge_client import Judge

    monkeypatch.setenv("JUDGE_TEST_KEY", "not-a-real-key")
    spec = {"base_url": "http://127.0.0.1:9/v1", "model": "m", "key_env": "JUDGE_TEST_KEY", "structured": "none"}
    judge = Judge("probe", {**spec, "price": {"input": 0, "output": 0}}, settings.load())
    assert judge.client.max_retries == 0
    assert stated(r"client's\s+own retries are (off)") and stated(r"(`max_retries=0`)")


def test_plan_constants_are_the_estimators():
    from launch.preflight import estimate, plan

    table = yaml.safe_load((REPO / "launch/preflight/gpus.yaml").read_text())
    agree(r"MFU (0\.\d+)\)", f"{table['mfu']:.2f}")
    agree(r"base download at (\d[\d.]*) GB/s", table["download_gb_per_s"])
    agree(r"tokens = characters\s+/ (\d[\d.]*) of", estimate.CHARS_PER_TOKEN)
    agree(r"GPU's memory less (\d[\d.]*) GiB", estimate.RESERVED_GIB)
    agree(r"container disk is (\d+) GB", plan.CONTAINER_DISK_GB)
    flat = " ".join(" ".join(DOCS.values()).split())
    assert f"({estimate.FLOPS_FORMULA})" in flat


def test_preflight_and_training_constants_are_the_codes():
    from core.heartbeat import BEAT_S, STALE_S
    from launch.preflight.datasets import HUB_ROWS
    from launch.train import CPU_MAX_PARAMS_B
    from resolver.derive import PARAMS_TOLERANCE

    agree(r"`params_b` more than (\d+) % from the count", f"{PARAMS_TOLERANCE * 100:g}")
    agree(r"streams the dataset's first (\d+) rows", HUB_ROWS)
    agree(r"touches\s+it every (\d+) s", f"{BEAT_S:g}")
    agree(r"no heartbeat for (\d+) s", f"{STALE_S:g}")
    agree(r"A model over (\d+)B parameters is refused on CPU", f"{CPU_MAX_PARAMS_B:g}")


def test_export_and_judging_constants_are_the_codes():
    from eval.prefs import MIN_PAIRS
    from eval.stats import MIN_CONSISTENCY
    from eval.study.pods import POLL_S
    from tools.export import parity, quality

    agree(r"first (\d+) generated ids", parity.N_TOKENS)
    for bits, name in ((8, "Q8_0"), (6, "Q6_K"), (5, "Q5"), (4, "Q4")):
        agree(rf"{name} (\d[\d.]*)[,.]", f"{quality.LIMITS[bits]:g}")
    agree(r"`JUDGE_MIN_CONSISTENCY`?, default (\d+) %", f"{MIN_CONSISTENCY * 100:g}")
    agree(r"`STUDY_POLL_S` \((\d+) s\)", f"{POLL_S:g}")
    agree(r"fewer than (\d+) pairs", MIN_PAIRS)
