"""A study's results on the Hugging Face Hub (huggingface_hub; HF_ENDPOINT points it elsewhere, e.g. at the
tests' local Hub): each pod uploads its run's results to a private dataset repo under <run key>/ (manifest,
config, per-document eval scores, judge rows and answers, logs, TensorBoard events; the adapter only when the
study asks), and the study downloads them into the same layout as a local run. Retries: core/retry.py."""

from __future__ import annotations

from pathlib import Path

from core.errors import UserError, Where
from core.hub_refusal import WRITE_HINT, refusal
from core.retry import Retry, http_status, transient_status
from core.settings import Settings

REPO_TYPE = "dataset"
RESULTS = [
    "runs/*/LATEST",
    "runs/*/*/manifest.json",
    "runs/*/*/config.yaml",
    "runs/*/*/eval/samples/*",
    "runs/*/*/eval/task/*",
    "runs/*/*/judge/*",
    "runs/*/*/logs/*",
    "runs/*/*/output/runs/*",  # TensorBoard events (loss curves)
    "pod.log",
]
ADAPTER = ["runs/*/*/output/adapter_model.safetensors", "runs/*/*/output/adapter_config.json"]
ATTEMPTS, BACKOFF_S = 4, 1.0


def client(s: Settings):
    from huggingface_hub import HfApi

    token = s.hf_token.get_secret_value() if s.hf_token else None
    if not token:
        raise UserError(
            "HF_TOKEN is not set: the study's results repo is private", Where(key="HF_TOKEN"), "export HF_TOKEN=..."
        )
    return HfApi(endpoint=s.hf_endpoint, token=token), token


def _call(what: str, fn, token: str):
    """fn() with retries for rate limits, server errors and dropped connections; a final failure is one line
    without the token. A repo or file that does not exist is raised as is (the caller decides)."""
    import httpx
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

    def transient(exc: BaseException) -> bool:
        if isinstance(exc, HfHubHTTPError):
            return transient_status(http_status(exc))
        return isinstance(exc, httpx.TransportError)

    try:
        return Retry(ATTEMPTS, BACKOFF_S).call(fn, transient)
    except RepositoryNotFoundError:
        raise
    except (HfHubHTTPError, httpx.TransportError) as exc:
        refused = refusal(exc, f"the token while {what}", Where(key="HF_TOKEN"), WRITE_HINT)
        if refused is not None:
            raise refused from None
        reason = f"{type(exc).__name__}: {exc}".replace(token, "***").splitlines()[0][:300]
        raise UserError(f"the Hub failed while {what} ({reason})", hint="run the same command again") from None


def ensure_repo(s: Settings, repo: str) -> None:
    """The private results repo exists (created when not): also proves the token can write, before GPU time."""
    api, token = client(s)
    _call(f"creating {repo}", lambda: api.create_repo(repo, repo_type=REPO_TYPE, private=True, exist_ok=True), token)


def upload(s: Settings, repo: str, key: str, outputs: Path, adapter: bool = False) -> str:
    """Upload one run's results (under <key>/) to the private results repo; returns the commit URL."""
    ensure_repo(s, repo)
    api, token = client(s)
    info = _call(
        f"uploading {key} to {repo}",
        lambda: api.upload_folder(
            repo_id=repo,
            repo_type=REPO_TYPE,
            folder_path=str(outputs),
            path_in_repo=key,
            allow_patterns=RESULTS + (ADAPTER if adapter else []),
            commit_message=f"study results: {key}",
        ),
        token,
    )
    return str(getattr(info, "commit_url", info))


def collect(s: Settings, repo: str, key: str, dest: Path) -> bool:
    """Download <key>/ of the results repo into dest/<key>/ (the run's local folder); False if it has none."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import RepositoryNotFoundError

    api, token = client(s)
    try:
        files = _call(f"listing {repo}", lambda: api.list_repo_files(repo, repo_type=REPO_TYPE), token)
    except RepositoryNotFoundError:
        return False
    if not any(f.startswith(f"{key}/") for f in files):
        return False
    _call(
        f"downloading {key} from {repo}",
        lambda: snapshot_download(
            repo,
            repo_type=REPO_TYPE,
            allow_patterns=[f"{key}/*"],
            local_dir=str(dest),
            endpoint=s.hf_endpoint,
            token=token,
        ),
        token,
    )
    return True


def put_progress(s: Settings, repo: str, key: str, progress: dict) -> None:
    """The pod's training progress (step, loss) as <key>/progress.json, for the study's live table."""
    import json

    api, token = client(s)
    data = json.dumps(progress).encode()
    _call(
        f"uploading {key}/progress.json",
        lambda: api.upload_file(
            path_or_fileobj=data, path_in_repo=f"{key}/progress.json", repo_id=repo, repo_type=REPO_TYPE
        ),
        token,
    )


def get_progress(s: Settings, repo: str, key: str) -> dict:
    """What the pod last reported ({} when nothing yet or the Hub cannot say: it is only for the table)."""
    import json

    from huggingface_hub import hf_hub_download

    _, token = client(s)
    try:
        path = hf_hub_download(
            repo, f"{key}/progress.json", repo_type=REPO_TYPE, endpoint=s.hf_endpoint, token=token, force_download=True
        )
        return json.loads(Path(path).read_text())
    except Exception:  # noqa: BLE001 - progress is best effort; the results are what counts
        return {}
