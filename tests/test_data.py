"""Data tooling: every kind of breakage reported at its line, deterministic dedup + split, conversions that
round-trip (or refuse, naming lines), and the persona builder's template mode."""

from __future__ import annotations

import json

import pytest

from core.errors import UserError
from core.paths import REPO
from data.formats import convert
from data.tools import convert as conv
from data.tools import personas as pb
from data.tools import split as sp
from data.validate import validate_file

OK = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]}


def msgs(*pairs) -> dict:
    return {"messages": [{"role": r, "content": c} for r, c in pairs]}


# (format, line content, expected reason fragment): each breaks in its own way
BROKEN = [
    ("messages", '{"messages": [', "not valid JSON"),
    ("messages", "[1, 2]", "not a JSON object"),
    ("messages", '{"text": "hi"}', "no 'messages' field"),
    ("messages", '{"messages": []}', "must be a non-empty list"),
    ("messages", '{"messages": ["hi"]}', "messages[0] is not an object"),
    ("messages", json.dumps(msgs(("human", "Hi"), ("assistant", "Yo"))), "unknown role 'human'"),
    (
        "messages",
        json.dumps({"messages": [{"role": "user", "content": ["Hi"]}, {"role": "assistant", "content": "x"}]}),
        "content is list",
    ),
    (
        "messages",
        json.dumps(msgs(("user", "Hi"), ("system", "S"), ("assistant", "x"))),
        "system message after the first turn",
    ),
    ("messages", json.dumps(msgs(("user", "Hi"), ("assistant", "  "))), "empty assistant turn"),
    ("messages", json.dumps(msgs(("user", "Hi"), ("user", "Again"), ("assistant", "x"))), "repeats role 'user'"),
    ("messages", json.dumps(msgs(("system", "S"), ("assistant", "x"))), "does not follow a user turn"),
    ("messages", json.dumps(msgs(("system", "S"), ("user", "Hi"))), "no assistant turn"),
    ("messages", json.dumps(OK), "duplicate of line 1"),
    ("prompt-completion", '{"completion": "x"}', "no 'prompt' field"),
    ("prompt-completion", '{"prompt": "p", "completion": 3}', "'completion' is int"),
    ("prompt-completion", '{"prompt": "p", "completion": ""}', "empty 'completion'"),
    ("sharegpt", '{"conversations": [{"from": "bot", "value": "x"}]}', "unknown 'from' 'bot'"),
    ("sharegpt", '{"dialog": []}', "no 'conversations' field"),
    ("sharegpt", '{"conversations": [{"from": "human"}]}', "needs 'from' and 'value'"),
]
GOOD = {
    "messages": json.dumps(OK),
    "prompt-completion": '{"prompt": "p", "completion": "c"}',
    "sharegpt": '{"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Yo"}]}',
}
GOOD2 = {k: v.replace("Hi", "Hey").replace('"c"', '"d"') for k, v in GOOD.items()}


@pytest.mark.parametrize("fmt,line,reason", BROKEN, ids=[b[2][:30] for b in BROKEN])
def test_each_breakage_is_reported_at_its_line(tmp_path, fmt, line, reason):
    path = tmp_path / "d.jsonl"
    path.write_text(f"{GOOD[fmt]}\n\n{line}\n{GOOD2[fmt]}\n")
    report = validate_file(path, fmt)
    assert report.records == 3
    assert [(p.line, reason in p.message) for p in report.problems] == [(3, True)], report.problems


def test_invalid_utf8_and_empty_file(tmp_path):
    path = tmp_path / "bytes.jsonl"
    path.write_bytes(json.dumps(OK).encode() + b"\n" + b'{"messages": "\xff\xfe"}\n')
    [problem] = validate_file(path, "messages").problems
    assert problem.line == 2 and "not valid UTF-8" in problem.message
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    assert "no records" in validate_file(empty, "messages").problems[0].message
    assert len(BROKEN) + 2 >= 15


def write(path, records) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_split_is_deterministic_disjoint_and_removes_planted_duplicates(tmp_path):
    records = [msgs(("user", f"Question {i}?"), ("assistant", f"Answer number {i}.")) for i in range(40)]
    records.insert(10, records[3])  # exact duplicate: line 11 copies line 4
    records.insert(20, msgs(("user", "QUESTION 5"), ("assistant", "answer   number 5")))  # near duplicate of line 6
    data = write(tmp_path / "d.jsonl", records)
    a = sp.split(data, 8, 7, "messages", tmp_path / "a")
    sp.split(data, 8, 7, "messages", tmp_path / "b")
    assert [(d["line"], d["duplicate_of"], d["kind"]) for d in a["duplicates_removed"]] == [
        (11, 4, "exact"),
        (21, 6, "near"),
    ]
    assert (tmp_path / "a/d.train.jsonl").read_text() == (tmp_path / "b/d.train.jsonl").read_text()
    assert a["val"]["records"] == 8 and a["train"]["records"] == 32
    assert not set(a["train"]["lines"]) & set(a["val"]["lines"])
    c = sp.split(data, 8, 8, "messages", tmp_path / "c")
    assert c["val"]["lines"] != a["val"]["lines"]  # the seed matters


def test_split_refuses_broken_files(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps(OK) + "\n{broken\n")
    with pytest.raises(UserError, match="1 unusable records") as exc:
        sp.split(data, 1, 0, "messages")
    assert exc.value.where.line == 2


@pytest.mark.parametrize(
    "record,fmt",
    [
        (
            msgs(("system", "S"), ("user", "Hi"), ("assistant", "Yo"), ("user", "More"), ("assistant", "Sure")),
            "messages",
        ),
        (
            {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Yo"}], "source": "x"},
            "sharegpt",
        ),
        ({"prompt": "[Mara] Hi", "completion": "Yo", "persona": "Mara", "type": "extracted"}, "prompt-completion"),
    ],
)
def test_conversions_round_trip(record, fmt):
    for other in ("messages", "sharegpt", "prompt-completion"):
        if fmt == "messages" and other == "prompt-completion":
            continue  # multi-turn: refused, tested below
        assert convert(convert(record, fmt, other), other, fmt) == record


def test_multi_turn_to_prompt_completion_is_refused_and_nothing_written(tmp_path):
    data = write(tmp_path / "d.jsonl", [OK, msgs(("user", "a"), ("assistant", "b"), ("user", "c"), ("assistant", "d"))])
    out = tmp_path / "out.jsonl"
    with pytest.raises(UserError, match="nothing was written") as exc:
        conv.convert_file(data, "messages", "prompt-completion", out)
    assert "d.jsonl:2: a 4-message conversation" in exc.value.message and not out.exists()
    assert conv.convert_file(write(tmp_path / "one.jsonl", [OK]), "messages", "prompt-completion", out) == 1
    assert json.loads(out.read_text()) == {"prompt": "Hi", "completion": "Hello."}


def test_persona_builder_template_mode():
    personas = pb.load_personas(REPO / "data/personas/example.yaml")
    first, second = pb.build(personas, pb.TemplateGenerator()), pb.build(personas, pb.TemplateGenerator())
    assert first == second  # deterministic
    names = {p.name for p in personas.personas}
    for q in personas.shared_questions:
        answers = {
            r["persona"]: r["completion"] for r in first if r["type"] == "contrastive" and r["prompt"].endswith(q)
        }
        assert set(answers) == names and len(set(answers.values())) == len(names)  # each persona differently
    for r in first:
        assert r["prompt"].startswith(f"[{r['persona']}] ") and r["completion"].strip()
    table = pb.stats(first)
    assert all(set(c) == {"extracted", "transformed", "hypothetical", "contrastive"} for c in table.values())


def test_persona_yaml_errors_name_the_line(tmp_path):
    bad = tmp_path / "p.yaml"
    bad.write_text(
        "personas:\n  - name: A\n    role: r\n    voice: v\n    markers: []\n    facts: [{topic: t, text: x}]\n"
        "  - name: B\n    role: r\n    voice: v\n    markers: [m]\n    facts: [{topic: t, text: x}]\n"
    )
    with pytest.raises(UserError) as exc:
        pb.load_personas(bad)
    assert exc.value.where.key == "personas.0.markers" and exc.value.where.line == 5


@pytest.mark.slow
def test_persona_builder_endpoint_mode_against_a_local_llama_cpp_server(llama_server, tmp_path):
    from tests.conftest import run_cli

    out = tmp_path / "personas.jsonl"
    proc = run_cli(
        "data.tools.personas",
        str(REPO / "data/personas/example.yaml"),
        "--generator",
        "endpoint",
        "--endpoint",
        llama_server,
        "--model",
        "smollm2",
        "--out",
        str(out),
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    template = pb.build(pb.load_personas(REPO / "data/personas/example.yaml"), pb.TemplateGenerator())
    assert len(records) == len(template) == 30
    assert [(r["persona"], r["type"]) for r in records] == [(r["persona"], r["type"]) for r in template]
    generated = [r for r in records if r["type"] in ("hypothetical", "contrastive")]
    assert all(r["completion"].strip() for r in generated)
    # the model wrote these: they are not the template's sentences
    assert (
        sum(
            r["completion"] != t["completion"]
            for r, t in zip(records, template, strict=True)
            if r["type"] == "contrastive"
        )
        >= 6
    )
    assert validate_file(out, "prompt-completion").ok
