"""Without a tokenizer, every eot_tokens entry must appear in the rendered named template: an entry the template never
emits is never trained, and the model never stops. Checked on every one of axolotl's named templates (an entry it
never emits is an error naming eot_tokens, the entry and what the template does emit; each marker it does emit
passes), and end to end on the issue's case: a Qwen2.5 recipe with `eot_tokens: ['<|eot_id|>']`, offline."""

from __future__ import annotations

import pytest

from launch.preflight.end_of_turn import missing_eot_tokens
from resolver.turns import MARKER, SAMPLE, named_template, render
from tests.conftest import run_cli

# other families' turn terminators: for each template, the first it does not emit is the wrong entry
FOREIGN = ["<|eot_id|>", "<|im_end|>", "<end_of_turn>", "<|end|>", "<|END_OF_TURN_TOKEN|>"]
EOS = "</s>"


def named_templates() -> list[str]:
    from axolotl.utils.chat_templates import _CHAT_TEMPLATES

    return sorted(_CHAT_TEMPLATES)


def test_the_class_covers_the_templates_the_issue_names():
    assert {"chatml", "qwen_25", "llama3", "gemma3", "mistral_v1", "phi_3", "qwen3"} <= set(named_templates())


@pytest.mark.parametrize("name", named_templates())
def test_an_entry_the_named_template_never_emits_is_an_error(name):
    template = named_template(name, {})
    text = render(template, SAMPLE, eos=EOS)  # offline: the eos from the facts table, no bos
    wrong = next(t for t in FOREIGN if t not in text)
    [(level, message)] = missing_eot_tokens(template, name, EOS, [wrong])
    assert level == "error" and f"eot_tokens names '{wrong}'" in message and f"'{name}' never emits" in message
    emits = list(dict.fromkeys(MARKER.findall(text)))
    assert "assistant turns end with" in message and all(m in message for m in emits), message
    assert missing_eot_tokens(template, name, EOS, emits) == []  # what it does emit passes


def test_an_unknown_eos_is_a_warning_not_a_pass_nor_an_error():
    template = named_template("mistral_v1", {})  # ends a turn with {{ eos_token }}
    [(level, message)] = missing_eot_tokens(template, "mistral_v1", None, ["</s>"])
    assert level == "warning" and "unless it is the eos" in message
    assert missing_eot_tokens(template, "mistral_v1", "</s>", ["</s>"]) == []
    [(level, _)] = missing_eot_tokens(named_template("chatml", {}), "chatml", None, ["<|eot_id|>"])
    assert level == "error"  # chatml never writes the eos: nothing to be unsure about


def test_the_issue_case_fails_make_check_offline(tmp_path):
    """qwen25-05b-instruct-brie (chat_template qwen_25) with Llama's <|eot_id|>, no tokenizer here."""
    proc = run_cli(
        "launch.preflight",
        "qwen25-05b-instruct-brie",
        """--args=--eot_tokens='["<|eot_id|>"]'""",
        env={"HF_HOME": str(tmp_path / "hf"), "AFFINAGE_CACHE": str(tmp_path / "cache"), "OUTPUTS": str(tmp_path)},
        timeout=600,
    )
    said = proc.stdout + proc.stderr
    assert proc.returncode == 2 and "Traceback" not in said, said[-3000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("[error] end of turn"))
    assert "eot_tokens names '<|eot_id|>'" in line and "'qwen_25' never emits" in line, line
    assert "assistant turns end with '<|im_end|>" in line and "<|im_start|>, <|im_end|>" in line, line
    assert "[ok] end of turn" not in proc.stdout
