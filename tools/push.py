"""`make push RUN=... REPO=me/name`: upload the adapter (REPO), merged model (REPO-merged) and GGUF files
(REPO-GGUF) that the run's manifest lists, each with a generated model card, through huggingface_hub.

Private by default (PRIVATE=0 for public). The token comes only from HF_TOKEN or huggingface_hub's own
login store and is never written anywhere. Re-running is idempotent (exist_ok repos, same files).
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

from launch import runs
from launch.errors import UserError, Where, user_errors_exit
from tools import cards

ADAPTER_FILES = ("adapter_model.safetensors", "adapter_config.json", "tokenizer.json", "tokenizer_config.json",
                 "special_tokens_map.json", "chat_template.jinja", "processor_config.json", "preprocessor_config.json")
RETRIES = 3


def token() -> str:
    from huggingface_hub import get_token

    tok = os.environ.get("HF_TOKEN") or get_token()
    if not tok:
        raise UserError("no Hugging Face token", Where(key="HF_TOKEN"),
                        "export HF_TOKEN=... (a write token) or run `hf auth login`; it is never stored by this repo")
    return tok


def targets(run: Path, repo: str) -> list[tuple[str, str, list[Path]]]:
    """(kind, repo id, files) for everything the manifest says exists."""
    manifest = runs.read_manifest(run)
    adapter = runs.final_adapter(run)
    out = [("adapter", repo, [adapter / f for f in ADAPTER_FILES if (adapter / f).is_file()])]
    if "merge" in manifest:
        merged = run / manifest["merge"]["path"]
        out.append(("merged", f"{repo}-merged", sorted(p for p in merged.iterdir() if p.is_file())))
    if "gguf" in manifest:
        folder = run / manifest["gguf"]["path"]
        files = [folder / i["file"] for i in manifest["gguf"]["files"].values()] + [folder / "parity.json"]
        out.append(("gguf", f"{repo}-GGUF", files))
    return out


def _with_retries(call, what: str):
    from huggingface_hub.errors import HfHubHTTPError

    for attempt in range(1, RETRIES + 1):
        try:
            return call()
        except HfHubHTTPError as exc:
            status = exc.response.status_code if exc.response is not None else None
            if status in (401, 403):
                raise UserError(f"the Hub refused the token for {what} (HTTP {status})", Where(key="HF_TOKEN"),
                                "use a token with write access to that namespace") from None
            if attempt == RETRIES or (status is not None and status < 500 and status != 429):
                raise UserError(f"{what} failed after {attempt} tries: HTTP {status}", hint="re-run make push; it is idempotent") from None
            time.sleep(2 ** attempt * 0.5)


def push(run: Path, repo: str, private: bool = True, log=print) -> dict[str, Any]:
    from huggingface_hub import CommitOperationAdd, HfApi

    if "/" not in repo:
        raise UserError(f"REPO must be namespace/name, not '{repo}'", Where(key="REPO"))
    api = HfApi(endpoint=os.environ.get("HF_ENDPOINT"), token=token())
    manifest = runs.read_manifest(run)
    config = cards.load_config(run)
    previous = manifest.get("push") or {}
    # a push cut short (hub failure, lost pod) resumes: repos it finished are not uploaded again
    resumable = previous.get("complete") is False and previous.get("repo") == repo and previous.get("private") == private
    section: dict[str, Any] = {"repo": repo, "private": private, "complete": False,
                               "repos": dict(previous.get("repos") or {}) if resumable else {}}
    for kind, repo_id, files in targets(run, repo):
        if kind in section["repos"]:
            log(f"{kind}: pushed to {repo_id} by the interrupted push (commit {section['repos'][kind]['commit']}); skipped")
            continue
        card = cards.render(manifest, config, kind, repo_id)
        log(f"pushing {kind}: {len(files)} files + model card -> {repo_id} ({'private' if private else 'public'})")
        _with_retries(lambda: api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model"), f"creating {repo_id}")
        ops = [CommitOperationAdd(path_in_repo=f.name, path_or_fileobj=str(f)) for f in files]
        ops.append(CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=card.encode()))
        info = _with_retries(lambda: api.create_commit(repo_id, operations=ops, repo_type="model",
                                                       commit_message=f"{manifest['recipe']['name']}: {kind} from run {run.name}"),
                             f"uploading to {repo_id}")
        section["repos"][kind] = {"repo_id": repo_id, "commit": getattr(info, "oid", None),
                                  "url": getattr(info, "commit_url", None), "files": [f.name for f in files] + ["README.md"]}
        runs.update_manifest(run, "push", section)  # progress: a failure after this repo resumes after it
    section["complete"] = True
    section["at"] = runs.utc_now()
    runs.update_manifest(run, "push", section)
    return section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default=os.environ.get("RUN"))
    parser.add_argument("--recipe", default=os.environ.get("RECIPE") or "smollm2-135m-cpu")
    parser.add_argument("--repo", default=os.environ.get("REPO"))
    parser.add_argument("--public", action="store_true", default=os.environ.get("PRIVATE") == "0")
    ns = parser.parse_args(argv)
    with user_errors_exit():
        if not ns.repo:
            raise UserError("no target repo", Where(key="REPO"), "make push REPO=<namespace>/<name>")
        run = runs.resolve_run(ns.run, ns.recipe)
        section = push(run, ns.repo, private=not ns.public)
        for kind, info in section["repos"].items():
            print(f"{kind:8s} {info['repo_id']}  {info['url']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
