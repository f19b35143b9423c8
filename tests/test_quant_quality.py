"""Quant quality on the default recipe's merged model (llama.cpp's perplexity method through llama-cpp-python's
logits): the f16 file against itself has KL ~0 and 100 % top-1 agreement; Q8_0 costs less than Q4_K_M; the
numbers reach parity.json, the manifest and the model card; a damaged quant is marked broken (parity fails) and
a truncated file is refused with a clear error (also fast, on a small file gguf-py writes, with a file that is no
GGUF at all). `make ollama` on the run writes the Modelfile `make push`
uploads."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from core import manifest, settings
from core.errors import UserError
from tests.conftest import run_cli
from tests.shared_runs import copy_run
from tools.export import cards, gguf, push, quality
from tools.serve import gguf_info

QUANTS = ["Q8_0", "Q4_K_M"]


@pytest.fixture(scope="module")
def built(default_built):
    """The default run after `make merge` and `make gguf QUANTS="Q8_0 Q4_K_M"` (shared, read-only)."""
    run, _ = default_built
    section = manifest.read(run).gguf
    assert set(QUANTS) <= set(section.files) and section.quality is not None
    return run, section


def held_out_text(run) -> str:
    convs, _ = quality.held_out_conversations(yaml.safe_load((run / "config.yaml").read_text()))
    return quality.render_text(run / "merged", convs)


@pytest.mark.slow
def test_kl_grows_q8_0_below_q4_k_m_and_reaches_the_card(built):
    run, section = built
    f = section.files
    q = section.quality
    assert q is not None and q.text.startswith("philosophy_chat.val.jsonl") and q.chunks >= 2
    assert q.positions == q.chunks * (q.n_ctx // 2 - 1)
    assert 0 < f["Q8_0"].mean_kl < f["Q4_K_M"].mean_kl < f["Q4_K_M"].kl_limit
    assert 1.0 >= f["Q8_0"].top1 > f["Q4_K_M"].top1 > 0.5
    assert f["f16"].ppl == pytest.approx(q.reference_ppl) and f["f16"].mean_kl is None
    assert all(1 < f[k].ppl < 1000 and not f[k].broken for k in QUANTS)
    assert section.parity == "pass" and f["Q4_K_M"].agreement is not None  # the greedy figure stays
    report = (run / "gguf" / "parity.json").read_text()
    assert '"mean_kl"' in report and '"reference_ppl"' in report
    card = cards.render(
        manifest.read(run), cards.load_config(run), "gguf", "me/smollm2-GGUF", cache=settings.load().cache
    )
    assert "mean KL vs f16" in card and f"{f['Q4_K_M'].mean_kl:.4f}" in card and f"{f['Q8_0'].top1:.1%}" in card


@pytest.mark.slow
def test_f16_against_itself_has_no_divergence(built):
    run, section = built
    f16 = run / "gguf" / section.files["f16"].file
    r = quality.compare(f16, {"f16": f16}, held_out_text(run))
    same = r["files"]["f16"]
    assert same["mean_kl"] < 1e-6 and same["top1"] == 1.0 and same["ppl"] == pytest.approx(r["reference_ppl"])


@pytest.mark.slow
def test_a_damaged_quant_is_marked_broken_and_parity_fails(built, tmp_path, monkeypatch):
    from gguf import GGUFReader

    run, _ = built
    real = gguf.quantize

    def quantize_then_damage(src, dst, quant):
        real(src, dst, quant)
        t = next(t for t in GGUFReader(dst).tensors if t.name == "blk.0.attn_q.weight")
        with open(dst, "r+b") as fh:  # a bit flip's worth of damage in one tensor: its bytes zeroed
            fh.seek(int(t.data_offset))
            fh.write(bytes(int(t.n_bytes)))

    monkeypatch.setattr(gguf, "quantize", quantize_then_damage)
    convs, source = quality.held_out_conversations(yaml.safe_load((run / "config.yaml").read_text()))
    result = gguf.export(run / "merged", tmp_path / "gguf", "x", ["Q4_K_M"], conversations=convs, source=source)
    assert result["parity"] == "fail"
    assert any("Q4_K_M: mean KL" in p and "looks broken" in p for p in result["problems"])
    info = result["files"]["Q4_K_M"]
    assert info["broken"] and info["mean_kl"] > info["kl_limit"] and np.isfinite(info["ppl"])


@pytest.mark.slow
def test_a_truncated_gguf_is_refused_with_a_clear_error(built, tmp_path):
    run, section = built
    src = run / "gguf" / section.files["Q8_0"].file
    cut = tmp_path / src.name
    with open(src, "rb") as fh, open(cut, "wb") as out:
        out.write(fh.read(src.stat().st_size // 2))
    with pytest.raises(UserError, match="cut short") as exc:
        quality.compare(run / "gguf" / section.files["f16"].file, {"Q8_0": cut}, held_out_text(run))
    assert str(cut) in str(exc.value) and "make gguf" in exc.value.hint


@pytest.mark.slow
def test_ollama_modelfile_of_the_run_is_pushed_with_the_gguf_repo(built, tmp_path):
    run, section = copy_run(built[0], tmp_path / "outputs"), built[1]  # make ollama writes beside the GGUFs
    proc = run_cli("tools.serve.ollama", f"--run={run}", env={"PATH": str(tmp_path)})  # no ollama on PATH
    assert proc.returncode == 0, proc.stderr
    text = (run / "gguf" / "Modelfile").read_text()
    assert f"FROM ./{section.files['Q4_K_M'].file}\n" in text and 'PARAMETER stop "<|im_end|>"' in text
    assert "writing companion" in text  # the recipe's system prompt (its training data's)
    [(_, _, files)] = [t for t in push.targets(run, "me/x") if t[0] == "gguf"]
    assert run / "gguf" / "Modelfile" in files
    assert "ollama is not installed here" in proc.stdout


def small_gguf(path):
    """A GGUF with one tensor, written by gguf-py (no model needed)."""
    from gguf import GGUFWriter

    w = GGUFWriter(str(path), "llama")
    w.add_tensor("blk.0.attn_q.weight", np.ones((64, 64), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda whole: whole[: len(whole) - 4096], "cut short"),  # a partial copy: tensor data missing
        (lambda whole: whole[:40], "damaged or cut short"),  # cut inside the header
        (lambda whole: b"<html>404 Not Found</html>\n", "not a GGUF file"),  # a failed download saved as the file
    ],
)
def test_a_damaged_file_is_refused_before_llama_cpp_loads_it(tmp_path, damage, message):
    path = small_gguf(tmp_path / "m-Q8_0.gguf")
    whole = path.read_bytes()
    assert gguf_info.read(path).path == path  # the whole file is accepted
    path.write_bytes(damage(whole))
    with pytest.raises(UserError, match=message) as exc:
        quality.load(path, 64)
    assert str(path) in str(exc.value) and "make gguf" in exc.value.hint


def test_the_card_table_shows_kl_top1_and_perplexity_per_file():
    from core.manifest import BaseModelRef, GgufFile, GgufQuality, GgufSection, Manifest, RecipeRef, TrainSection

    def file(kind, **figures):
        return GgufFile(file=f"r-{kind}.gguf", bytes=2_000_000, sha256="ab" * 32, **figures)

    m = Manifest(
        train=TrainSection(
            recipe=RecipeRef(name="r"), base_model=BaseModelRef(name="org/m", path="/m"), status="completed"
        ),
        gguf=GgufSection(
            path="gguf",
            parity="fail",
            files={
                "f16": file("f16", agreement=1.0, ppl=35.733),
                "Q8_0": file("Q8_0", agreement=1.0, mean_kl=0.00419, top1=0.9569, ppl=36.1448, broken=False),
                "Q4_K_M": file("Q4_K_M", agreement=0.13, mean_kl=1.65, top1=0.41, ppl=167.2, broken=True),
            },
            quality=GgufQuality(
                text="val.jsonl (held-out)", reference="r-f16.gguf", n_ctx=128, chunks=7, tokens=1005, positions=441
            ),
        ),
    )
    card = cards.render(m, {}, "gguf", "me/r-GGUF", modelfile=True, cache=settings.load().cache)
    rows = {line.split(" | ")[0].strip("| "): line for line in card.splitlines() if line.startswith("| ")}
    assert "| mean KL vs f16 | top-1 agreement | perplexity | greedy agreement with HF |" in rows["type"]
    assert rows["f16"].endswith("| - | - | 35.73 | 100% |")
    assert rows["Q8_0"].endswith("| 0.0042 | 95.7% | 36.14 | 100% |")
    assert rows["Q4_K_M"].endswith("| 1.6500 (broken) | 41.0% | 167.20 | 13% |")
    assert "val.jsonl (held-out)" in card and "1005 tokens in 7 chunks of 128" in card and "441 positions" in card
    assert "ollama create" in card and "-f Modelfile" in card
