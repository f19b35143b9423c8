"""Verdicts are cached by what was judged, never by (item, order) alone: the judge and its prompt, the order, the
sha256 of both texts and the model, backend, settings and seed that generated each (eval/judged_io.py). A changed
generation (another SEED, another MAX_NEW_TOKENS, another model) is judged again; judging the same thing again
costs nothing, also after judging something else in between; and `make prefs` refuses to join a verdict to texts
it was not given for, naming the file and line. Judging and make prefs run for real against the scripted judge
of tests/openai_server.py; only the generation of answers is stood in for (tests/judged_runs.py)."""

from __future__ import annotations

import json

import pytest

from core import manifest, settings
from core.errors import UserError
from eval import judge as judge_mod
from eval.judge import judge_all, load_judges, run_judging
from eval.prefs import build
from tests.judged_runs import fake_for_run, make_run, prefers_candidate, rows, write_suite
from tests.openai_server import OpenAIServer


@pytest.fixture
def server(monkeypatch):
    with OpenAIServer(prefers_candidate) as s:
        monkeypatch.setenv("JUDGE_URL", s.url)
        yield s


def items(n: int = 3) -> list[dict]:
    return [{"item": f"c#{i}", "suite": "s", "config": "c", "prompt": f"prompt {i}"} for i in range(n)]


def test_a_changed_text_is_judged_again_and_an_unchanged_one_never(server, tmp_path):
    [j] = load_judges(["local"], settings.load())
    cache = tmp_path / "local.jsonl"
    texts = {i["item"]: (f"Candidate answer {i['item']}", f"Base answer {i['item']}") for i in items()}
    assert judge_all(j, items(), texts, cache, "run", 2)["asked"] == 6
    assert judge_all(j, items(), texts, cache, "run", 2) == {"cached": 6, "asked": 0, "failed": 0}
    # one candidate answer changed (as another seed or cap gives): that item is asked again, in both orders
    changed = {**texts, "c#1": ("Candidate answer, drawn again", texts["c#1"][1])}
    again = judge_all(j, items(), changed, cache, "run", 2)
    assert again == {"cached": 4, "asked": 2, "failed": 0}, again


def test_the_key_is_the_identity_of_what_was_judged(server, tmp_path, monkeypatch):
    from eval.judged_io import text_sha256

    [j] = load_judges(["local"], settings.load())
    cache, current = tmp_path / "cache" / "local.jsonl", tmp_path / "local.jsonl"
    texts = {i["item"]: (f"Candidate answer {i['item']}", f"Base answer {i['item']}") for i in items()}

    def sides(seed: int, backend: str = "hf:cpu:float32", model: str = "m1") -> dict:
        made = {"model": model, "backend": backend, "settings": {"temperature": 0.75, "max_tokens": 64}, "seed": seed}
        return {i["item"]: {"candidate": made, "baseline": {**made, "model": "base"}} for i in items()}

    def asked(texts=texts, sides=sides(0), judge=j) -> int:
        return judge_all(judge, items(), texts, cache, "run", 2, sides, current)["asked"]

    assert asked() == 6 and asked() == 0
    assert asked(sides=sides(1)) == 6  # another seed, even with the same texts: judged again
    assert asked(sides=sides(0, backend="llama.cpp:m.gguf")) == 6
    assert asked(sides=sides(0, model="m2")) == 6
    assert asked() == 0  # back to the first: every verdict was kept
    assert len(rows(current)) == 6 and {r["judged"]["candidate"]["seed"] for r in rows(current)} == {0}
    monkeypatch.setenv("JUDGE_URL", server.url + "/")  # another endpoint is another judge
    [other] = load_judges(["local"], settings.load())
    assert asked(judge=other) == 6
    [served] = load_judges(
        ["local"], settings.load(), {"local": server.url}, served_as="llama.cpp server: judge.gguf (1 bytes)"
    )
    assert asked(judge=served) == 6 and asked(judge=served) == 0  # a served judge is the model it serves
    for r in rows(current):  # this judging's rows only, each with the hashes of what it was given
        assert r["judged"]["judge"]["endpoint"].startswith("llama.cpp server")
        assert r["judged"]["candidate"]["text"] == text_sha256(texts[r["item"]][0])


@pytest.fixture
def judged(server, outputs, tmp_path, monkeypatch):
    """An SFT run judged on a 30-prompt suite (seed 0)."""
    made = []
    monkeypatch.setattr(judge_mod, "for_run", fake_for_run(made))
    run = make_run(outputs, "sft")
    suite = write_suite(tmp_path / "suite.jsonl", 30)
    run_judging(run, ["local"], suite, seed=0, s=settings.load())
    return run, suite, made


def test_another_seed_or_cap_is_judged_again_and_prefs_joins_the_new_texts(judged):
    run, suite, made = judged
    again = run_judging(run, ["local"], suite, seed=0, s=settings.load())
    assert again.judges["local"]["requests"]["asked"] == 0
    by_seed = run_judging(run, ["local"], suite, seed=1, s=settings.load())
    assert by_seed.judges["local"]["requests"] == {"cached": 0, "asked": 60, "failed": 0}
    capped = run_judging(run, ["local"], suite, seed=1, max_new_tokens=5, s=settings.load())
    assert capped.judges["local"]["requests"]["asked"] == 60
    assert all(i["max_tokens"] == 5 for i in made[-1].asked)  # the cap is in the generation's settings
    gens = {g["item"]: g for g in rows(run / "judge" / "generations.jsonl")}
    section = build(run, None, "any", 0, force=True, log=print)  # FORCE: the stand-in's candidate is the longer
    assert section.pairs == 24
    for pair in rows(run / section.path):
        gen = gens[pair["provenance"]["item"]]
        assert pair["chosen"] == gen["candidate"] and len(pair["chosen"].split()) == 5  # the texts judged last


def test_prefs_refuses_a_verdict_given_for_other_texts(judged, tmp_path):
    run, suite, _ = judged
    gen_path = run / "judge" / "generations.jsonl"
    judged_rows = rows(run / "judge" / "local.jsonl")
    # make judge with another seed rewrote the generations and stopped before judging them (or the file was
    # edited): the verdicts on disk were given for other answers
    gens = rows(gen_path)
    gens[4]["candidate"] = "Candidate answers differently with seed 7"
    gen_path.write_text("".join(json.dumps(g) + "\n" for g in gens))
    with pytest.raises(UserError) as exc:
        build(run, None, "any", 0, force=True, log=print)
    line = next(n for n, r in enumerate(judged_rows, 1) if r["item"] == gens[4]["item"])
    assert exc.value.where.file == run / "judge" / "local.jsonl" and exc.value.where.line == line
    assert "generations.jsonl" in str(exc.value) and "candidate text" in str(exc.value)
    assert "make judge" in str(exc.value) and manifest.read(run).prefs is None  # nothing written

    # rows written before verdicts were keyed say nothing of their texts: refused too
    old = [{k: v for k, v in r.items() if k not in ("key", "judged")} for r in judged_rows]
    (run / "judge" / "local.jsonl").write_text("".join(json.dumps(r) + "\n" for r in old))
    gen_path.write_text("".join(json.dumps(g) + "\n" for g in rows(gen_path)))
    with pytest.raises(UserError, match="records no hashes of the texts it judged"):
        build(run, None, "any", 0, force=True, log=print)


def test_prefs_refusal_is_one_error_with_exit_status_2(judged, outputs):
    from tests.conftest import run_cli

    run, _, _ = judged
    gen_path = run / "judge" / "generations.jsonl"
    gens = rows(gen_path)
    gens[0]["baseline"] = "Base, drawn again"
    gen_path.write_text("".join(json.dumps(g) + "\n" for g in gens))
    proc = run_cli("eval.prefs", env={"OUTPUTS": str(outputs), "RUN": str(run), "FORCE": "1"}, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert f"{run / 'judge' / 'local.jsonl'}:1" in proc.stderr and "baseline text" in proc.stderr
