"""The Ollama Modelfile's template against the chat template it came from: the Go template is rendered by an
independent Go text/template implementation (gotpl) with the data Ollama gives a template (.Messages, .System),
and compared with transformers' apply_chat_template for the same conversations: SmolLM2's own template (ChatML
with a default system prompt) and axolotl's llama3 template on the real Llama 3.2 tokenizer. Untranslatable
templates are refused naming the construct; the CLI writes a Modelfile beside the GGUF and runs `ollama create`
when ollama is there (a stand-in executable on PATH). A recipe's meta.system reaches, through the manifest, the
system prompt that chat, serve and the Modelfile use."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import gotpl  # a test dependency (requirements.txt): without it the equivalence tests must fail, not skip
import pytest

from core import settings
from core.errors import UserError
from core.paths import REPO
from tests.conftest import OFFLINE, run_cli, write_recipe
from tools.serve import gguf_info, gotemplate

CONVERSATIONS = {
    "user": [{"role": "user", "content": "Hello, how are you?"}],
    "system-user": [
        {"role": "system", "content": "You answer in one sentence."},
        {"role": "user", "content": "Why do we keep diaries?"},
    ],
    "user-assistant-user": [
        {"role": "user", "content": "Hello, how are you?"},
        {"role": "assistant", "content": "I'm doing great. How can I help you today?"},
        {"role": "user", "content": "I'd like to show off how chat templating works!"},
    ],
    "system-user-assistant-user-assistant-user": [
        {"role": "system", "content": "You are a thoughtful writing companion.\nBe brief."},
        {"role": "user", "content": 'What is "wonder"?'},
        {"role": "assistant", "content": "Surprise at the ordinary {{ like this }}."},
        {"role": "user", "content": "And awe?\n\nSay more."},
        {"role": "assistant", "content": "Wonder with fear in it — vaster."},
        {"role": "user", "content": "Thanks! 谢谢"},
    ],
}


def ollama_render(go: str, messages: list[dict]) -> str:
    """What Ollama passes a messages template: .Messages (Role, Content) and .System (all system messages)."""
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    data = {"System": system, "Messages": [{"Role": m["role"], "Content": m["content"]} for m in messages]}
    return gotpl.render(go, data)


@pytest.fixture(scope="module")
def smollm2():
    from transformers import AutoTokenizer

    from resolver.local_models import gguf_file
    from resolver.registry import load_recipe
    from tools.tiny_models import smollm2_dir

    return gguf_info.read(gguf_file(load_recipe("smollm2-135m-cpu").meta.local_source)), AutoTokenizer.from_pretrained(
        smollm2_dir(settings.load().cache)
    )


def test_smollm2_template_equals_the_hf_chat_template(smollm2):
    info, tok = smollm2
    assert info.chat_template == tok.chat_template  # the GGUF carries the HF template
    go, pieces = gotemplate.translate(info.chat_template, info.bos, info.eos, info.add_bos)
    assert "SmolLM" in pieces.head["user"] and "SmolLM" not in pieces.head["system"]  # its default system prompt
    for name, msgs in CONVERSATIONS.items():
        want = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        assert ollama_render(go, msgs) == want, name


def test_llama3_template_equals_the_hf_chat_template():
    from transformers import AutoTokenizer

    from launch.preflight.end_of_turn import named_template
    from tools.tiny_models import llama3_tokenizer_dir

    tok = AutoTokenizer.from_pretrained(llama3_tokenizer_dir())
    tok.chat_template = named_template("llama3", {})
    go, pieces = gotemplate.translate(tok.chat_template, tok.bos_token, "<|eot_id|>", add_bos=True)
    assert tok.bos_token == "<|begin_of_text|>" and tok.bos_token not in go  # the runtime adds BOS itself
    for name, msgs in CONVERSATIONS.items():
        want = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        assert want.startswith(tok.bos_token), name
        assert ollama_render(go, msgs) == want[len(tok.bos_token) :], name
    # Ollama's own llama3-instruct template gives this text for its golden conversation (ollama/template/testdata)
    golden = (
        "<|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nHello, how are you?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nI'm doing great. How can I help you today?<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nI'd like to show off how chat templating works!<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )
    msgs = [{"role": "system", "content": "You are a helpful assistant."}, *CONVERSATIONS["user-assistant-user"]]
    assert ollama_render(go, msgs) == golden
    assert pieces.trims  # llama3 strips contents; said in the Modelfile
    from tools.serve.template import end_of_turn

    assert end_of_turn(tok.chat_template, tok.all_special_tokens + list(tok.get_added_vocab()), tok.bos_token) == (
        "<|eot_id|>"
    )


def test_gemma3_system_prompt_folded_into_the_first_user_turn():
    from launch.preflight.end_of_turn import named_template
    from tools.serve.template import render

    template = named_template("gemma3", {})
    go, pieces = gotemplate.translate(template, "<bos>", "<eos>", add_bos=True)
    assert pieces.between[("system", "user")] == "\n\n"
    for name, msgs in CONVERSATIONS.items():
        want = render(template, msgs, "<bos>", "<eos>").removeprefix("<bos>")
        assert ollama_render(go, msgs) == want, name


@pytest.mark.parametrize("name", ["chatml", "mistral_v1", "phi_3", "phi_4", "qwen_25", "cohere"])
def test_other_named_templates_translate_to_the_same_text(name):
    """axolotl's templates of other families, rendered the way llama.cpp renders them (the GGUF's template)."""
    from launch.preflight.end_of_turn import named_template
    from tools.serve.template import render

    template = named_template(name, {})
    go, _ = gotemplate.translate(template, "<s>", "</s>", add_bos=True)
    for conv, msgs in CONVERSATIONS.items():
        want = render(template, msgs, "<s>", "</s>").removeprefix("<s>")
        assert ollama_render(go, msgs) == want, conv


def test_a_template_that_places_the_system_prompt_by_position_is_refused():
    from launch.preflight.end_of_turn import named_template

    with pytest.raises(UserError, match="cannot be written as an Ollama template") as exc:
        gotemplate.translate(named_template("mistral_v2v3", {}), "<s>", "</s>", add_bos=True)
    assert "loop.last" in str(exc.value) and "hint" in str(exc.value)


def test_literal_braces_and_triple_quotes_stay_literal():
    template = (
        "{% for m in messages %}{{ '{{' + m['role'] + '}} \"\"\"' + m['content'] + '\\n' }}{% endfor %}"
        '{% if add_generation_prompt %}{{ \'{{assistant}} """\' }}{% endif %}'
    )
    go, _ = gotemplate.translate(template)
    assert '"""' not in go
    msgs = CONVERSATIONS["system-user-assistant-user-assistant-user"]
    from tools.serve.template import render

    assert ollama_render(go, msgs) == render(template, msgs)


def fake_ollama(folder, log):
    exe = folder / "ollama"
    exe.write_text(
        f"#!{sys.executable}\nimport os, sys\n"
        f"open({str(log)!r}, 'w').write(' '.join(sys.argv[1:]) + '\\n' + os.getcwd() + '\\n' + open('Modelfile').read())\n"
        "print('success')\n"
    )
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)


def test_cli_writes_a_modelfile_beside_the_gguf_and_runs_ollama_create(smollm2, tmp_path):
    info, tok = smollm2
    folder = tmp_path / "gguf"
    folder.mkdir()
    (folder / "model-Q4_1.gguf").symlink_to(info.path)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_ollama(bin_dir, tmp_path / "ollama.log")
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "SYSTEM": "You are terse.", "TEMPERATURE": "0.3"}
    proc = run_cli("tools.serve.ollama", f"--gguf={folder / 'model-Q4_1.gguf'}", "--name=Tiny", env=env)
    assert proc.returncode == 0, proc.stderr
    text = (folder / "Modelfile").read_text()
    assert "FROM ./model-Q4_1.gguf\n" in text and 'SYSTEM """You are terse."""' in text
    assert 'PARAMETER stop "<|im_end|>"' in text and "PARAMETER temperature 0.3" in text
    assert "PARAMETER num_predict 512" in text
    go = text.split('TEMPLATE """', 1)[1].split('"""', 1)[0]
    msgs = CONVERSATIONS["system-user-assistant-user-assistant-user"]
    assert ollama_render(go, msgs) == tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    args, cwd, seen = (tmp_path / "ollama.log").read_text().split("\n", 2)
    assert args == "create tiny -f Modelfile" and cwd == str(folder) and seen == text
    assert "ollama: success" in proc.stdout


def test_cli_refuses_an_untranslatable_template_and_writes_nothing(tmp_path):
    from gguf import GGUFWriter

    path = tmp_path / "odd.gguf"
    w = GGUFWriter(str(path), "llama")
    w.add_chat_template("{{ messages | length }}{{ messages[-1]['content'] }}")
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    proc = run_cli("tools.serve.ollama", f"--gguf={path}")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "cannot be written as an Ollama template" in proc.stderr and "messages | length" in proc.stderr
    assert "odd.gguf" in proc.stderr and "tokenizer.chat_template" in proc.stderr
    assert not (tmp_path / "Modelfile").exists()


def test_the_recipes_meta_system_reaches_chat_serve_and_the_modelfile(smollm2, outputs, tmp_path):
    from core import manifest, settings
    from launch.distributed.topology import Topology
    from launch.start import start
    from resolver.resolve import resolve
    from tools.serve import defaults

    info, tok = smollm2
    system = 'You are Brie, a cheese sommelier: answer "oui" first.'
    recipe = write_recipe(
        tmp_path / "brie.yaml", f"meta:\n  system: {json.dumps(system)}\n  sampling: {{temperature: 0.4}}\n"
    )
    _, run, _ = start(resolve(str(recipe), settings.load()), None, Topology(device="cpu"), settings.load(), ["test"])
    assert manifest.read(run).train.meta.system == system  # carried into train.meta
    # chat and serve take their system prompt and sampling from defaults.resolve
    d = defaults.resolve(run, settings.load())
    assert (d.system, d.system_from, d.temperature) == (system, "the recipe (meta.system)", 0.4)
    assert defaults.resolve(run, settings.load(), system="none").system is None

    folder = tmp_path / "gguf"
    folder.mkdir()
    (folder / "brie-Q4_1.gguf").symlink_to(info.path)
    env = {"OUTPUTS": str(outputs), "PATH": str(tmp_path)}  # no ollama on PATH
    proc = run_cli("tools.serve.ollama", f"--run={run}", f"--gguf={folder / 'brie-Q4_1.gguf'}", env=env)
    assert proc.returncode == 0, proc.stderr
    text = (folder / "Modelfile").read_text()
    assert f'SYSTEM """{system}"""' in text and "PARAMETER temperature 0.4" in text
    assert "# system prompt: the recipe (meta.system)" in text

    chat = subprocess.run(  # stdin at its end: the chat prints its header, then leaves
        [sys.executable, "-m", "tools.serve.chat", f"--run={run}", f"--gguf={folder / 'brie-Q4_1.gguf'}"],
        cwd=REPO,
        env={
            **{k: v for k, v in os.environ.items() if k not in ("SYSTEM", "TEMPERATURE", "GGUF", "RUN")},
            **OFFLINE,
            "PYTHONPATH": str(REPO),
            "OUTPUTS": str(outputs),
        },
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert chat.returncode == 0 and "Traceback" not in chat.stderr, chat.stderr
    assert f"system prompt, from the recipe (meta.system): {system!r}" in chat.stdout
    assert "sampling: temperature 0.4" in chat.stdout and "bye" in chat.stdout
