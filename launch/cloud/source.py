"""What a pod started from axolotl's public image runs: this repo at the exact commit of the checkout, fetched at
pod start from the checkout's git remote (or unpacked from a `git archive` of that commit put on the volume), set
up in the image's own Python (launch/setup.sh in image mode: only what the image lacks), then the entrypoint
(launch/cloud/bootstrap.sh). So the checkout must be clean and its commit pushed: a pod would otherwise run other
code than the one planned here. IMAGE=<pre-built image> (make image) skips all of it: the image holds the code."""

from __future__ import annotations

import base64
import re
import subprocess
from pathlib import Path

from pydantic import BaseModel

from core.errors import UserError, Where

BOOTSTRAP = Path(__file__).with_name("bootstrap.sh")
# the container command on the image's own ENTRYPOINT (sshd for PUBLIC_KEY, then exec "$@"): unpack and run the
# bootstrap carried in the pod's env (RunPod pastes this string into its request; it holds no double quote)
DOCKER_ARGS = "bash -c 'echo $AFFINAGE_BOOT | base64 -d > /tmp/affinage-boot.sh && exec bash /tmp/affinage-boot.sh'"
FAST_PATH = "or IMAGE=<an image built from this checkout> (make image, push it) to ship the code in the image"


class Source(BaseModel):
    repo: str | None  # the URL a pod fetches from (None with an archive)
    commit: str
    archive: str | None = None  # a path on the pod's volume


def git(checkout: Path, *args: str, strip: bool = True) -> str:
    proc = subprocess.run(["git", "-C", str(checkout), *args], capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip() or f"git {' '.join(args)} failed")
    return proc.stdout.strip() if strip else proc.stdout


def fetchable_url(url: str) -> str:
    """The URL a pod can fetch without this machine's SSH keys: scp-like and ssh:// GitHub-style remotes become
    https (a private repository then needs a source archive instead); local paths stay (tests)."""
    if re.match(r"^[\w.-]+@[\w.-]+:", url):  # git@github.com:owner/repo.git
        host, path = url.split("@", 1)[1].split(":", 1)
        return f"https://{host}/{path}"
    m = re.match(r"^ssh://(?:[^@/]+@)?([^/:]+)(?::\d+)?/(.+)$", url)
    if m:
        return f"https://{m.group(1)}/{m.group(2)}"
    return url


def pushed_source(checkout: Path, archive: str | None = None) -> Source:
    """The checkout's commit, refused when it is dirty or (without an archive) not on its remote."""
    try:
        commit = git(checkout, "rev-parse", "HEAD")
    except (RuntimeError, OSError):
        raise UserError(
            f"{checkout} is not a git checkout with a commit, so a pod cannot fetch this code",
            Where(key="SOURCE_CHECKOUT"),
            "commit and push it, " + FAST_PATH,
        ) from None
    dirty = [line for line in git(checkout, "status", "--porcelain", strip=False).splitlines() if line.strip()]
    if dirty:
        shown = ", ".join(line[3:] for line in dirty[:5]) + (f" and {len(dirty) - 5} more" if len(dirty) > 5 else "")
        raise UserError(
            f"the checkout has changes that are not committed ({shown}): a pod runs commit {commit[:12]}, not them",
            Where(str(checkout)),
            "commit and push them (git commit, git push), " + FAST_PATH,
        )
    if archive:
        return Source(repo=None, commit=commit, archive=archive)
    try:
        upstream = git(checkout, "rev-parse", "--abbrev-ref", "--symbolic-full-name", "@{u}")
        remote = upstream.split("/", 1)[0]
    except RuntimeError:
        remote = "origin"
    try:
        url = git(checkout, "remote", "get-url", remote)
    except RuntimeError:
        raise UserError(
            f"the checkout has no git remote '{remote}' to fetch commit {commit[:12]} from",
            Where(str(checkout)),
            "git remote add origin <url> and git push, SOURCE_ARCHIVE=<path on the network volume>, " + FAST_PATH,
        ) from None
    if re.match(r"^https?://[^/@]+@", url):
        raise UserError(
            f"the remote URL of '{remote}' holds a credential, which would travel in the pod's env",
            Where(key=f"git remote {remote}"),
            "use a remote URL without a token (a private repository: SOURCE_ARCHIVE=, " + FAST_PATH + ")",
        )
    if not git(checkout, "branch", "-r", "--contains", commit).strip():
        raise UserError(
            f"commit {commit[:12]} is not on any branch of '{remote}' ({url}) that this checkout knows of",
            Where(str(checkout)),
            f"git push {remote} (then make runpod-up again), " + FAST_PATH,
        )
    return Source(repo=fetchable_url(url), commit=commit)


def boot_env(source: Source) -> dict[str, str]:
    """The pod's env that carries the bootstrap: the script itself (base64) and what it fetches."""
    env = {"AFFINAGE_BOOT": base64.b64encode(BOOTSTRAP.read_bytes()).decode(), "AFFINAGE_COMMIT": source.commit}
    if source.archive:
        env["AFFINAGE_ARCHIVE"] = source.archive
    else:
        env["AFFINAGE_REPO"] = source.repo or ""
    return env
