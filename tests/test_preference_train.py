"""Preference tuning through axolotl on CPU: the embedded DPO recipe on SmolLM2 from the repo's preference sample
(the reward margin on its own training pairs, 0 before training, is clearly positive after; the reference is the
adapter-disabled policy, said by the manifest; the run merges and converts to GGUF with parity), ORPO on the same
pairs as conversations, and KTO on a tiny model. Then the chain: an SFT run, judged by a scripted local judge, gives
`make prefs` exactly the position-consistent pairs with provenance, and a recipe starting from that run trains on
them on top of the run's merged weights."""

from __future__ import annotations

import json

import pytest

from core import manifest, rundir, settings
from core.errors import UserError
from tests.conftest import write_recipe
from tests.openai_server import OpenAIServer
from tests.preference_margin import log_odds_ratios, training_margins

STEPS = "--max_steps=8 --eval_steps=8 --save_steps=8"


def history(run) -> list[dict]:
    m = manifest.read(run)
    return json.loads((run / m.train.summary.log_history).read_text())["log_history"]


@pytest.mark.slow
def test_dpo_margin_rises_and_the_run_merges_and_converts(outputs):
    from launch.train import train
    from tools.export import gguf, merge

    run = train("smollm2-135m-cpu-dpo", STEPS, s=settings.load())
    m = manifest.read(run)
    assert m.train.preference.rl == "dpo" and m.train.preference.beta == 0.1
    assert m.train.preference.reference == "adapter-disabled policy (no second copy)"
    logged = [h["rewards/margins"] for h in history(run) if "rewards/margins" in h]
    assert logged[0] == 0.0 and m.train.summary.first_margin == 0.0  # step 1: policy == reference
    margins = training_margins(run, beta=0.1)
    assert len(margins) == 30
    assert sum(margins) / len(margins) > 0.2 and sum(x > 0 for x in margins) >= 24, margins
    assert not (run / "output" / "model.safetensors").exists()  # axolotl's stray copy of the base is gone
    section = merge.merge(run)
    assert section.changed_tensors >= 210 and section.chat_template
    built = gguf.build(run, ["Q8_0"], cache=settings.load().cache)
    assert built.parity == "pass" and built.chat_template and built.files["f16"].agreement == 1.0


@pytest.mark.slow
def test_orpo_steps_move_the_odds_ratio(outputs):
    from launch.train import train

    run = train("smollm2-135m-cpu-orpo", STEPS, s=settings.load())
    m = manifest.read(run)
    assert m.train.preference.rl == "orpo" and m.train.preference.reference == "none (reference-free)"
    assert any("log_odds_ratio" in h for h in history(run))  # TRL's ORPO loss really ran
    # The logged ratio is of one 2-pair batch per step (noise); measured on all 30 training pairs, before (adapter
    # off) and after, the mean log odds ratio of chosen over rejected must rise and most pairs must move up.
    before, after = log_odds_ratios(run)
    gains = [a - b for a, b in zip(after, before, strict=True)]
    assert len(gains) == 30 and sum(gains) / 30 > 0.05 and sum(g > 0 for g in gains) >= 20, gains


@pytest.mark.slow
def test_kto_on_a_tiny_model(outputs, tiny_model):
    from launch.train import train

    run = train("smollm2-135m-cpu-kto", f"--base_model={tiny_model('llama', 'smollm2')} {STEPS}", s=settings.load())
    m = manifest.read(run)
    assert m.train.preference.rl == "kto" and m.train.status == "completed"
    assert any("kl" in h for h in history(run))  # TRL's KTO really ran (its KL estimate is logged)


def scripted_judge(run):
    """Verdicts by the prompt's tag, reading which response is the candidate from the run's generation cache:
    [cand] candidate in both orders, [base] baseline in both, [first] always "A" (position bias), [tie] a tie."""
    texts: dict[str, tuple[str, str]] = {}

    def decide(prompt: str) -> str:
        if not texts:
            for rec in map(json.loads, (run / "judge" / "generations.jsonl").read_text().splitlines()):
                texts[rec["prompt"]] = (rec["candidate"], rec["baseline"])
        user = next(p for p in texts if p in prompt)
        cand, base = texts[user]
        cand_is_a = prompt.index(cand) < prompt.index(base)
        tag = user.split("]")[0] + "]"
        winner = {"[cand]": "A" if cand_is_a else "B", "[base]": "B" if cand_is_a else "A", "[first]": "A"}.get(tag)
        return json.dumps({"winner": winner or "tie", "reason": "scripted"})

    return decide


@pytest.mark.slow
def test_prefs_from_judged_generations_then_dpo_on_top_of_the_sft_run(default_built, outputs, tmp_path, monkeypatch):
    from eval.judge import run_judging
    from eval.prefs import build
    from eval.prefs_split import split
    from launch.train import train
    from tests.shared_runs import copy_run

    sft = copy_run(default_built[0], outputs)  # the default SFT run, merged and converted (make merge, make gguf)
    rundir.mark_latest(sft)
    # one backend for every side: on a CPU the SFT run (it has a GGUF) would generate through llama.cpp and the DPO
    # run (none) through transformers, and the chain's check below compares the base model's answers across both
    monkeypatch.setenv("GEN_BACKEND", "hf")
    tags = ["[cand]", "[base]", "[first]", "[tie]"] * 2
    suite = tmp_path / "suite.jsonl"
    suite.write_text(
        "".join(
            json.dumps({"suite": "s", "config": "c", "prompt": f"{t} Say something about rain {i}."}) + "\n"
            for i, t in enumerate(tags)
        )
    )
    with OpenAIServer(scripted_judge(sft)) as server:
        monkeypatch.setenv("JUDGE_URL", server.url)
        run_judging(sft, ["local"], suite, max_new_tokens=24, s=settings.load())
    gens = [json.loads(x) for x in (sft / "judge" / "generations.jsonl").read_text().splitlines()]
    assert all(g["candidate"] != g["baseline"] for g in gens)  # otherwise the script cannot tell them apart

    # pairs come from the training part of the suite only; a fifth of its prompts is held out (eval/prefs_split.py)
    train_part, held_part = split(gens)
    tags_trained = [g["prompt"].split("]")[0] + "]" for g in train_part]
    kept = sum(t in ("[cand]", "[base]") for t in tags_trained)
    with pytest.raises(UserError, match=rf"only {kept} pairs \(at least 20"):
        build(sft, None, "any", None, force=False, log=print)
    section = build(sft, None, "any", 0, force=True, log=print)
    assert section.pairs == kept and section.forced and section.heldout_prompts == len(held_part) == 2
    assert section.dropped == {
        "position-inconsistent": tags_trained.count("[first]"),
        "tie or invalid": tags_trained.count("[tie]"),
    }
    pairs = [json.loads(x) for x in (sft / section.path).read_text().splitlines()]
    by_prompt = {g["prompt"]: g for g in gens}
    assert not {p["messages"][-1]["content"] for p in pairs} & {g["prompt"] for g in held_part}
    for p in pairs:
        gen, prov = by_prompt[p["messages"][-1]["content"]], p["provenance"]
        side = "candidate" if gen["prompt"].startswith("[cand]") else "baseline"
        assert prov["chosen"] == side and p["chosen"] == gen[side] and p["rejected"] == gen[prov["rejected"]]
        assert set(prov["verdicts"]["local"].values()) == {side}  # the same verdict in both orders
        assert prov["models"]["candidate"]["adapter_sha256"] == manifest.read(sft).train.final_checkpoint.sha256

    recipe = write_recipe(
        tmp_path / "sft-dpo.yaml",
        "meta:\n  start_from: {recipe: smollm2-135m-cpu, prefs: true}\n",
        base="smollm2-135m-cpu-dpo",
    )
    run = train(str(recipe), "--max_steps=2 --save_steps=2 --eval_steps=2", s=settings.load())
    m = manifest.read(run)
    assert m.train.start_from.run == str(sft) and m.train.start_from.prefs == str(sft / section.path)
    assert m.train.base_model.path == str(sft / "merged") and manifest.read(sft).merge is not None
    assert m.train.base_model.name == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert m.train.datasets[0].path == str(sft / section.path)

    # the chain's evaluation: judged against the SFT run it started from, then against the root's base model
    # (whose answers are the SFT run's baseline answers: same model, prompts, settings and seed), on the prompts
    # make prefs held out only; scored on the SFT run's held-out split; the leaderboard shows base -> SFT -> DPO
    # with the reward margins
    from eval import chain, leaderboard, lmeval

    with OpenAIServer(lambda prompt: json.dumps({"winner": "tie", "reason": "scripted"})) as server:
        monkeypatch.setenv("JUDGE_URL", server.url)
        vs_start = run_judging(run, ["local"], suite, limit=2, max_new_tokens=24, s=settings.load())
        vs_origin = run_judging(run, ["local"], suite, limit=2, max_new_tokens=24, versus="origin", s=settings.load())
    assert vs_start.baseline == f"start run {sft.name} (smollm2-135m-cpu)"
    assert vs_origin.baseline == "base model HuggingFaceTB/SmolLM2-135M-Instruct (the chain's root)"
    m = manifest.read(run)
    assert m.judge.baseline == vs_start.baseline and m.judge_origin.baseline == vs_origin.baseline
    assert vs_start.heldout.n == vs_origin.heldout.n == 2 and vs_start.judges["local"]["n"] == 2
    origin = [json.loads(x) for x in (run / "judge-origin" / "generations.jsonl").read_text().splitlines()]
    assert {g["prompt"] for g in origin} == {g["prompt"] for g in held_part}
    assert [g["baseline"] for g in origin] == [by_prompt[g["prompt"]]["baseline"] for g in origin]
    assert chain.versus_for(run, None) == ["base", "origin"] and chain.versus_for(sft, None) == ["base"]
    assert chain.heldout_run(run) == sft
    assert lmeval.heldout_docs(run)[2] == lmeval.heldout_docs(sft)[2]
    text = leaderboard.tables(leaderboard.collect(settings.load().outputs))
    assert "## Chains: base -> SFT -> preference tuning" in text
    row = next(line for line in text.splitlines() if line.startswith(f"| sft-dpo | sft-dpo/{run.name}"))
    assert f"{m.train.summary.final_margin:.3f}" in row
