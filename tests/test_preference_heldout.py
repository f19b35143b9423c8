"""No in-sample judging after preference tuning. `make prefs` draws its pairs from a training part of the judged
suite and keeps a held-out part back (a fifth, by the sha256 of each prompt: deterministic), recorded in every
pair's provenance, in prefs/heldout.jsonl and in the manifest. Judging a run whose training data came from those
pairs, however it reached them (prefs: true, FROM_RUN with datasets naming the file, a copy of the file trained on
from the base model, a run started from such a run), uses the held-out part only and says n in the judge section,
the report and the leaderboard row. Judging and make prefs run for real against the scripted judge; only the
generation of answers is stood in for (tests/judged_runs.py)."""

from __future__ import annotations

import shutil

import pytest

from core import manifest, settings
from core.errors import UserError
from eval import chain, leaderboard
from eval import judge as judge_mod
from eval.judge import run_judging
from eval.prefs import build
from tests.judged_runs import fake_for_run, make_run, prefers_candidate, rows, write_suite
from tests.openai_server import OpenAIServer

SFT_DATA = "data/samples/philosophy_chat.val.jsonl"


@pytest.fixture
def sft(outputs, tmp_path, monkeypatch):
    """An SFT run judged on a 30-prompt suite, and its make prefs pairs."""
    made = []
    monkeypatch.setattr(judge_mod, "for_run", fake_for_run(made))
    with OpenAIServer(prefers_candidate) as server:
        monkeypatch.setenv("JUDGE_URL", server.url)
        run = make_run(outputs, "sft", datasets=[SFT_DATA])
        suite = write_suite(tmp_path / "suite.jsonl", 30)
        run_judging(run, ["local"], suite, s=settings.load())
        section = build(run, None, "any", 0, force=True, log=print)  # FORCE: the stand-in's candidate is longer
        yield run, suite, section, made


def test_the_split_is_by_prompt_text_and_deterministic():
    from eval.prefs_split import split

    items = [{"prompt": f"p{i}", "item": i} for i in range(10)] + [{"prompt": "p3", "item": 10}]
    train, held = split(items)
    assert len(train) + len(held) == 11 and len({i["prompt"] for i in held}) == 2  # a fifth of 10 prompts
    assert {i["prompt"] for i in train} & {i["prompt"] for i in held} == set()  # p3 twice: one side
    again_train, again_held = split(list(reversed(items)))
    assert {i["item"] for i in again_held} == {i["item"] for i in held}
    assert split([{"prompt": "alone"}]) == ([{"prompt": "alone"}], [])


def test_prefs_draws_pairs_from_the_training_part_and_records_the_heldout_part(sft):
    from eval.prefs_split import prompt_key

    run, suite, section, _ = sft
    gens, pairs, held = (
        rows(run / "judge" / "generations.jsonl"),
        rows(run / section.path),
        rows(run / "prefs/heldout.jsonl"),
    )
    assert section.heldout_path == "prefs/heldout.jsonl" and section.heldout_prompts == len(held) == 6
    assert section.train_prompts == 24 and section.pairs == 24 and section.suite == str(suite)
    paired, kept_back = {p["messages"][-1]["content"] for p in pairs}, {h["prompt"] for h in held}
    assert not paired & kept_back and paired | kept_back == {g["prompt"] for g in gens}
    recorded = pairs[0]["provenance"]["split"]
    assert all(p["provenance"]["split"] == recorded for p in pairs)
    assert set(recorded["heldout"]) == {prompt_key(p) for p in kept_back} and len(recorded["train"]) == 24
    assert manifest.read(run).prefs.heldout_prompts == 6
    again = build(run, None, "any", 0, force=True, log=print)
    assert rows(run / again.heldout_path) == held  # deterministic
    # the SFT run itself trained on no pairs: judged on the whole suite as before
    assert run_judging(run, ["local"], suite, s=settings.load()).heldout is None


@pytest.mark.parametrize("how", ["prefs: true", "FROM_RUN + datasets", "a copy, from the base model", "chained"])
def test_a_run_trained_on_the_pairs_is_judged_on_the_heldout_part_only(sft, outputs, tmp_path, monkeypatch, how):
    run, suite, section, made = sft
    pairs = run / section.path
    if how == "prefs: true":
        tuned = make_run(outputs, "dpo", datasets=[str(pairs)], start_from=run, prefs=pairs)
    elif how == "FROM_RUN + datasets":
        tuned = make_run(outputs, "dpo", datasets=[str(pairs)], start_from=run)
    elif how == "a copy, from the base model":
        pairs = tmp_path / "my-pairs.jsonl"
        shutil.copy(run / section.path, pairs)
        tuned = make_run(outputs, "dpo", datasets=[str(pairs)])
    else:  # an SFT run on top of the DPO run: its weights saw the pairs too
        dpo = make_run(outputs, "dpo", datasets=[str(pairs)], start_from=run, prefs=pairs)
        tuned = make_run(outputs, "sft-again", datasets=[SFT_DATA], start_from=dpo)
    held = {h["prompt"] for h in rows(run / section.heldout_path)}
    with OpenAIServer(prefers_candidate) as server:
        monkeypatch.setenv("JUDGE_URL", server.url)
        judged = run_judging(tuned, ["local"], suite, s=settings.load())
        generated = {i["prompt"] for g in made[-2:] for i in g.asked}
        limited = run_judging(tuned, ["local"], suite, limit=4, s=settings.load())
        origin = (
            run_judging(tuned, ["local"], suite, versus="origin", s=settings.load())
            if how != "a copy, from the base model"
            else None
        )
    assert {r["prompt"] for r in rows(tuned / "judge" / "local.jsonl")} <= held
    assert generated == held  # nothing else was even generated
    assert origin is None or (origin.heldout.n == 6 and origin.judges["local"]["n"] == 6)
    assert judged.heldout.n == 6 and judged.heldout.of == 30 and judged.heldout.excluded == 24
    assert str(pairs) in judged.heldout.sources[0]
    assert judged.judges["local"]["n"] == 6 and judged.judges["local"]["heldout"] == {"n": 6, "of": 30}
    assert limited.heldout.n == limited.judges["local"]["n"] == 4
    assert manifest.read(tuned).judge.heldout.n == 4
    report = (tuned / "judge" / "report.md").read_text()
    assert "Judged on the held-out part only: n = 4 of the suite's 30 prompts" in report
    _, table = leaderboard.judge_table([("dpo/run", "local", judged.judges["local"])])
    assert table[0][2] == "6 held-out of 30"
    steps = [{"run": "sft/run", "chain": ["sft/run", "dpo/run"], "origin": "base"}, {"run": "dpo/run"}]
    steps[1]["judges"] = {"local": judged.judges["local"]}
    assert "local 100 % (held-out n=6)" in "\n".join(chain.chain_table(steps, "ROUGE-1"))


def test_what_cannot_be_judged_out_of_sample_is_refused(sft, outputs, tmp_path, monkeypatch):
    run, suite, section, _ = sft
    pairs = run / section.path
    tuned = make_run(outputs, "dpo", datasets=[str(pairs)], start_from=run, prefs=pairs)
    trained_only = tmp_path / "trained.jsonl"
    held = {h["prompt"] for h in rows(run / section.heldout_path)}
    trained_only.write_text(
        "".join(line for line in suite.read_text().splitlines(True) if not any(h in line for h in held))
    )
    with pytest.raises(UserError, match="in-sample") as exc:
        run_judging(tuned, ["local"], trained_only, s=settings.load())
    assert exc.value.where.key == "SUITE"
    pairs.unlink()
    with pytest.raises(UserError, match="which are gone") as exc:
        run_judging(tuned, ["local"], suite, s=settings.load())
    assert exc.value.where.key == "train.datasets"
