"""axolotl's published image tags, and which one a pod starts from by default.

The scheme, as axolotl's release workflow writes it (axolotl-ai-cloud/axolotl, .github/workflows/main.yml, job
`build-axolotl-cloud-uv`, docker/metadata-action `type=pep440,pattern={{version}}`; read at its commit 067b021 of
2026-07-24, the newest copy reachable here): every build of the matrix pushes

- `axolotlai/axolotl-cloud:{version}-py{python}-cu{cuda}-{torch}` (one per matrix row; in July 2026 the matrix was
  python 3.12, cu130, torch 2.11.0 and 2.12.0),
- `axolotlai/axolotl-cloud:{version}-latest` (the row marked is_latest),
- `axolotlai/axolotl-cloud:{version}` (the row marked is_latest, on a release tag `v{version}` only).

Python 3.11 and cu128 images stopped with 0.17.0. The torch of each release's matrix is not published anywhere but
in that workflow at the release commit, so the default is the plain `{version}` tag, which every release has; what
the image really holds is checked at pod start (core/stack.py, run by launch/cloud/bootstrap.sh).
"""

from __future__ import annotations

import re

REPOSITORY = "axolotlai/axolotl-cloud"
LAST_PY311 = (0, 17, 0)  # the last release with Python 3.11 / cu128 rows; since then: py3.12, cu130
# the image's own Python environment (axolotl's docker/Dockerfile-uv-base: `uv venv ... axolotl-venv` in /workspace)
IMAGE_PYTHON = "/workspace/axolotl-venv/bin/python"
_TAG = re.compile(
    r"(?P<version>\d+\.\d+\.\d+)(?:-latest|-py(?P<python>3\.\d+)-cu(?P<cuda>\d{3})-(?P<torch>\d+\.\d+\.\d+))?"
)


def official(axolotl_version: str) -> str:
    """The default pod image for an axolotl release: its plain release tag."""
    return f"{REPOSITORY}:{axolotl_version}"


def _numbers(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


def parse(image: str) -> dict[str, str | None] | None:
    """The fields of an axolotl-cloud tag that the published scheme produces, or None for any other image."""
    repo, sep, tag = image.partition(":")
    if repo != REPOSITORY or not sep:
        return None
    m = _TAG.fullmatch(tag)
    if not m:
        return None
    fields = m.groupdict()
    newer = _numbers(fields["version"]) > LAST_PY311
    if fields["python"] and newer and (fields["python"] != "3.12" or fields["cuda"] != "130"):
        return None  # no such row in any matrix since 0.18
    return fields
