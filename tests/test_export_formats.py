"""Adding an export format is one registration (tools/export/formats.py): `make push` uploads what a registered
format says the run has built, to REPO plus its suffix, with a model card that names it, its library and its
own sections; the repo's three formats are registered in upload order."""

from __future__ import annotations

import shutil
from pathlib import Path

from core import manifest, settings
from tools.export import cards, formats, push

V1 = Path(__file__).with_name("fixtures") / "manifest_v1.json"


def test_the_repos_formats_in_upload_order():
    assert [f.name for f in formats.all_formats()][:3] == ["adapter", "merged", "gguf"]
    assert [formats.get(n).repo_suffix for n in ("adapter", "merged", "gguf")] == ["", "-merged", "-GGUF"]


def test_a_registered_format_is_pushed_and_carded(tmp_path, monkeypatch):
    run = tmp_path / "run"
    (run / "onnx").mkdir(parents=True)
    shutil.copy(V1, run / manifest.MANIFEST)
    (run / "onnx" / "model.onnx").write_bytes(b"onnx")
    onnx = formats.Format(
        name="onnx",
        repo_suffix="-ONNX",
        library="onnx",
        title="ONNX graph",
        files=lambda r, m: sorted((r / "onnx").glob("*.onnx")) or None,
        usage=lambda m, repo_id, modelfile: f"onnxruntime.InferenceSession('{repo_id}')",
        sections=lambda m: ["## Graph", "", "one file", ""],
        tags=("onnx",),
    )
    monkeypatch.setattr(formats, "FORMATS", {"onnx": onnx})  # only this one: the others need a trained run
    assert push.targets(run, "me/x") == [("onnx", "me/x-ONNX", [run / "onnx" / "model.onnx"])]
    card = cards.render(manifest.read(run), {}, "onnx", "me/x-ONNX", cache=settings.load().cache)
    assert "library_name: onnx" in card and "- onnx" in card and ": ONNX graph of [" in card
    assert "## Graph" in card and "onnxruntime.InferenceSession('me/x-ONNX')" in card
    (run / "onnx" / "model.onnx").unlink()
    assert push.targets(run, "me/x") == []  # not built: nothing to upload
