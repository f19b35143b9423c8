"""`make push RUN=... REPO=me/name`: upload the adapter (REPO), merged model (REPO-merged) and GGUF files
(REPO-GGUF, with make ollama's Modelfile when there is one) that the run's manifest lists, each with a generated model card, through huggingface_hub.

Private by default (PRIVATE=0 for public). The token comes only from HF_TOKEN or huggingface_hub's own
login store and is never written anywhere. Re-running is idempotent (exist_ok repos, same files).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core import cli, manifest, rundir
from core.errors import UserError, Where
from core.hub_refusal import WRITE_HINT, refusal
from core.manifest import PushedRepo, PushSection
from core.retry import Retry, http_status, transient_status
from core.settings import Settings
from tools.export import cards, formats
from tools.export import export_formats as _registered  # noqa: F401 - registers the repo's formats

RETRIES = 3


def token(s: Settings) -> str:
    from huggingface_hub import get_token

    tok = s.hf_token
    tok = tok.get_secret_value() if tok else get_token()
    if not tok:
        raise UserError(
            "no Hugging Face token",
            Where(key="HF_TOKEN"),
            "export HF_TOKEN=... (a write token) or run `hf auth login`; it is never stored by this repo",
        )
    return tok


def targets(run: Path, repo: str) -> list[tuple[str, str, list[Path]]]:
    """(format, repo id, files) for every registered export format the run has built (tools/export/formats.py)."""
    m = manifest.read(run)
    out = []
    for fmt in formats.all_formats():
        files = fmt.files(run, m)
        if files is not None:
            out.append((fmt.name, f"{repo}{fmt.repo_suffix}", files))
    return out


def _with_retries(call, what: str):
    from huggingface_hub.errors import HfHubHTTPError

    def transient(exc: BaseException) -> bool:
        return isinstance(exc, HfHubHTTPError) and transient_status(http_status(exc))

    try:
        return Retry(RETRIES, 1.0).call(call, transient)
    except HfHubHTTPError as exc:
        refused = refusal(exc, f"the token for {what}", Where(key="HF_TOKEN"), WRITE_HINT)
        if refused is not None:
            raise refused from None
        status = http_status(exc)
        tries = RETRIES if transient(exc) else 1
        raise UserError(
            f"{what} failed after {tries} tries: HTTP {status}", hint="re-run make push; it is idempotent"
        ) from None


def push(run: Path, repo: str, s: Settings, private: bool = True, log=print) -> PushSection:
    from huggingface_hub import CommitOperationAdd, HfApi

    if "/" not in repo:
        raise UserError(f"REPO must be namespace/name, not '{repo}'", Where(key="REPO"))
    api = HfApi(endpoint=s.hf_endpoint, token=token(s))
    m = manifest.read(run)
    planned = targets(run, repo)  # every file checked before the first upload
    config = cards.load_config(run)
    previous = m.push
    # a push cut short (hub failure, lost pod) resumes: repos it finished are not uploaded again
    resumable = previous is not None and not previous.complete and previous.repo == repo and previous.private == private
    section = PushSection(repo=repo, private=private, complete=False, repos=dict(previous.repos) if resumable else {})
    for kind, repo_id, files in planned:
        if kind in section.repos:
            log(f"{kind}: pushed to {repo_id} by the interrupted push (commit {section.repos[kind].commit}); skipped")
            continue
        card = cards.render(
            m, config, kind, repo_id, modelfile=any(f.name == "Modelfile" for f in files), cache=s.cache
        )
        log(f"pushing {kind}: {len(files)} files + model card -> {repo_id} ({'private' if private else 'public'})")
        _with_retries(
            lambda repo_id=repo_id: api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model"),
            f"creating {repo_id}",
        )
        ops = [CommitOperationAdd(path_in_repo=f.name, path_or_fileobj=str(f)) for f in files]
        ops.append(CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=card.encode()))
        message = f"{m.recipe_name}: {kind} from run {run.name}"
        info = _with_retries(
            lambda repo_id=repo_id, ops=ops, message=message: api.create_commit(
                repo_id, operations=ops, repo_type="model", commit_message=message
            ),
            f"uploading to {repo_id}",
        )
        section.repos[kind] = PushedRepo(
            repo_id=repo_id,
            commit=getattr(info, "oid", None),
            url=getattr(info, "commit_url", None),
            files=[f.name for f in files] + ["README.md"],
        )
        manifest.write_sections(run, push=section)  # progress: a failure after this repo resumes after it
    section = section.model_copy(update={"complete": True, "at": rundir.utc_now()})
    manifest.write_sections(run, push=section)
    return section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_run_arguments(parser)
    parser.add_argument("--repo", default=None, help="namespace/name (default: REPO)")
    parser.add_argument("--public", action="store_true", help="public repos (default: private unless PRIVATE=0)")
    ns = parser.parse_args(argv)

    def body(s: Settings) -> None:
        repo = ns.repo or s.repo
        if not repo:
            raise UserError("no target repo", Where(key="REPO"), "make push REPO=<namespace>/<name>")
        run = cli.run_from(ns, s)
        section = push(run, repo, s, private=not (ns.public or not s.private))
        for kind, info in section.repos.items():
            print(f"{kind:8s} {info.repo_id}  {info.url}")

    return cli.main(body)


if __name__ == "__main__":
    sys.exit(main())
