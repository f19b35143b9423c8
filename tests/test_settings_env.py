"""The environment is read once, typed (core/settings.py): a bad DEVICE, GPUS, NODES, CPU_PROCS or STRATEGY is the
same clear error, naming the variable, exit status 2 and no traceback, in every command that reads it; a
malformed ARGS override is one message too."""

from __future__ import annotations

import pytest

from core import settings
from core.errors import UserError
from tests.conftest import run_cli

# every command that reads the machine settings (directly, or through the recipe's device and topology)
COMMANDS = [
    ("launch.preflight", "smollm2-135m-cpu"),
    ("resolver.show", "smollm2-135m-cpu"),
    ("launch.preflight.plan", "llama31-8b-instruct"),
    ("launch.train", "smollm2-135m-cpu"),
    ("launch.cloud.commands", "up"),
    ("data.tools.data_check", "data/samples/philosophy_chat.val.jsonl"),
    ("tools.export.merge",),
    ("tools.export.gguf",),
    ("eval.lmeval",),
    ("eval.judge",),
]
BAD = [
    ("DEVICE", "gpux", "DEVICE must be one of cpu, gpu, not 'gpux'"),
    ("GPUS", "two", "GPUS must be a whole number >= 0, not 'two'"),
    ("NODES", "0", "NODES must be a whole number >= 1, not '0'"),
    ("CPU_PROCS", "2.5", "CPU_PROCS must be a whole number >= 1, not '2.5'"),
    ("STRATEGY", "zero4", "STRATEGY: unknown distributed strategy 'zero4'"),
]


@pytest.mark.parametrize("name, value, message", BAD, ids=[b[0] for b in BAD])
def test_settings_refuse_a_bad_value_naming_the_variable(name, value, message):
    with pytest.raises(UserError) as exc:
        settings.load({name: value})
    assert message in str(exc.value)


def test_settings_parse_what_is_given():
    s = settings.load(
        {
            "DEVICE": "CPU",
            "GPUS": "2",
            "NODES": "3",
            "STRATEGY": "zero3",
            "FORCE": "1",
            "RESUME": "0",
            "HF_TOKEN": "hf_secret_value_for_the_test",
            "OUTPUTS": "/tmp/x",
        }
    )
    assert (s.device, s.gpus, s.nodes, s.strategy, s.force, s.resume) == ("cpu", 2, 3, "zero3", True, False)
    assert s.hf_token.get_secret_value() == "hf_secret_value_for_the_test" and "hf_secret" not in repr(s)
    assert str(s.outputs) == "/tmp/x" and s.recipe_or_default == settings.DEFAULT_RECIPE
    with pytest.raises(UserError, match="FORCE must be 1 or 0"):
        settings.load({"FORCE": "maybe"})


@pytest.mark.parametrize("cmd", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_every_command_refuses_a_bad_device_and_gpu_count(cmd, tmp_path):
    for name, value, message in (BAD[0], BAD[1]):
        proc = run_cli(
            *cmd, env={name: value, "OUTPUTS": str(tmp_path), "RECIPE": "", "RUNPOD_API_KEY": "x"}, timeout=300
        )
        assert proc.returncode == 2, (cmd, name, proc.stdout[-1500:] + proc.stderr[-1500:])
        assert message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-1500:]


@pytest.mark.parametrize(
    "cmd",
    [
        ("launch.preflight", "smollm2-135m-cpu"),
        ("resolver.show", "smollm2-135m-cpu"),
        ("launch.train", "smollm2-135m-cpu"),
    ],
    ids=lambda c: c[0],
)
def test_a_malformed_override_is_one_message(cmd, tmp_path):
    proc = run_cli(*cmd, "--args=lora_r=8", env={"OUTPUTS": str(tmp_path)})
    said = proc.stdout + proc.stderr
    assert proc.returncode == 2 and "must look like --key=value" in said and "Traceback" not in said, said[-1500:]


BOUNDED = [(var, low, rest[0] if rest else None) for _, var, low, *rest in (*settings.INTS, *settings.FLOATS)]


@pytest.mark.parametrize("variable, low, high", BOUNDED, ids=[b[0] for b in BOUNDED])
def test_every_number_is_checked_against_its_range(variable, low, high):
    whole = any(var == variable for _, var, *_ in settings.INTS)
    below = str(int(low) - 1) if whole else str(low - 0.5)
    with pytest.raises(UserError, match=f"^{variable} must be a (whole )?number"):
        settings.load({variable: below})
    assert getattr(settings.load({variable: str(low)}), settings_field(variable)) == low
    if high is not None:
        above = str(int(high) + 1) if whole else str(high + 0.5)
        with pytest.raises(UserError, match=f"{variable} must be a (whole )?number from {low:g} to {high:g}"):
            settings.load({variable: above})
    with pytest.raises(UserError, match=f"^{variable} must be"):
        settings.load({variable: "nan" if not whole else "1e3x"})


def settings_field(variable: str) -> str:
    return next(f for f, var, *_ in (*settings.INTS, *settings.FLOATS) if var == variable)


# every command-line flag that stands for a variable, through the CLI's own main(): the same rule, exit status 2
FLAGS = [
    ("tools.serve.chat", "--top-p=1.5", "TOP_P must be a number from 0 to 1, not '1.5'"),
    ("tools.serve.chat", "--temperature=-0.1", "TEMPERATURE must be a number from 0 to 2"),
    ("tools.serve.chat", "--max-new-tokens=0", "MAX_NEW_TOKENS must be a whole number >= 1"),
    ("tools.serve.serve", "--port=70000", "PORT must be a whole number from 1 to 65535, not '70000'"),
    ("eval.lmeval", "--limit=-1", "LIMIT must be a whole number >= 0"),
    ("eval.lmeval", "--max-gen-toks=0", "MAX_NEW_TOKENS must be a whole number >= 1"),
    ("eval.judge", "--concurrency=0", "CONCURRENCY must be a whole number >= 1"),
    ("eval.judge", "--seed=x", "SEED must be a whole number >= 0, not 'x'"),
    ("eval.judge", "--max-cost=-1", "MAX_COST must be a number >= 0"),
    ("tools.serve.serve", "--n-ctx=0", "argument --n-ctx: must be a whole number >= 1, not '0'"),
    ("data.tools.split", "--val=0", "VAL must be a whole number >= 1"),
    ("bench.run", "--repeats=0", "REPEATS must be a whole number >= 1"),
]


@pytest.mark.parametrize("module, flag, message", FLAGS, ids=[f"{m}{f.split('=')[0]}" for m, f, _ in FLAGS])
def test_every_numeric_flag_is_checked_as_its_variable(module, flag, message, capsys):
    import importlib

    with pytest.raises(SystemExit) as ended:
        importlib.import_module(module).main([flag])
    err = capsys.readouterr().err
    assert ended.value.code == 2 and message in err and "Traceback" not in err, err


def test_no_cli_takes_a_bare_number_flag():
    """A new numeric flag gets its variable's rule (settings.flag_type), or a check of its own named here."""
    import re

    from core.paths import REPO

    own = {"bench/gpu_check.py", "bench/gpu_device.py"}  # run on the GPU machine, where pydantic may be absent
    for path in REPO.glob("*/**/*.py"):
        rel = path.relative_to(REPO).as_posix()
        if rel.startswith((".venv/", "tests/")) or rel in own:
            continue
        assert not re.search(r"add_argument\([^)]*type=(int|float)\b", path.read_text()), rel


def test_settings_are_declared_by_concern_and_each_concern_loads_alone():
    """pydantic-settings models per concern (launch, cloud, export, eval, study, data, bench, and what every command
    shares); Settings is all of them, and every variable is declared by exactly one."""
    sections = (
        settings.CommonSettings,
        settings.LaunchSettings,
        settings.CloudSettings,
        settings.ExportSettings,
        settings.EvalSettings,
        settings.StudySettings,
        settings.DataSettings,
        settings.BenchSettings,
    )
    own = [set(cls.model_fields) - set(settings._Section.model_fields) for cls in sections]
    assert sum(len(f) for f in own) == len(set().union(*own)) == len(settings.Settings.model_fields)
    env = {"RECIPE": "r", "CLOUD": "runpod", "GPUS": "2", "PORT": "8080", "LIMIT": "3", "STUDY": "s.yaml"}
    cloud = settings.load(env, section=settings.CloudSettings)
    assert cloud.cloud == "runpod" and not hasattr(cloud, "recipe")
    assert settings.load(env, section=settings.LaunchSettings).gpus == 2
    assert settings.load(env, section=settings.ExportSettings).port == 8080
    everything = settings.load(env)
    assert (everything.recipe, everything.limit, everything.study, everything.env["GPUS"]) == ("r", 3, "s.yaml", "2")
    with pytest.raises(UserError, match="PORT must be a whole number from 1 to 65535"):
        settings.load({"PORT": "99999"}, section=settings.ExportSettings)
    assert settings.load({"recipe": "lower case is not RECIPE"}).recipe is None  # names are exact
