#!/usr/bin/env bash
# Pod start on axolotl's public image (launch/cloud/source.py sends this script in the pod's env as AFFINAGE_BOOT):
# fetch this repo at exactly AFFINAGE_COMMIT from AFFINAGE_REPO (or unpack AFFINAGE_ARCHIVE, a `git archive` of that
# commit on the volume, checked with git get-tar-commit-id), set it up in the image's own Python (launch/setup.sh,
# image mode: only what the image lacks, nothing it provides replaced), then run the entrypoint, which trains and
# stops the pod. When the bootstrap itself fails, it still stops the pod (or deletes the cluster): a pod that
# cannot start its run must not keep billing. AFFINAGE_PYTHON and AFFINAGE_DIR override what is found here.
set -uo pipefail
DEST=${AFFINAGE_DIR:-/opt/affinage}
say() { echo "bootstrap: $*"; }

stop_self() {  # stdlib Python: nothing of ours may be installed yet
  "${PY:-python3}" - <<'PY' || say "could not stop this pod; stop it yourself: make runpod-down"
import json, os, urllib.request
key, how = os.environ.get("RUNPOD_API_KEY"), os.environ.get("ON_FINISH") or "stop"
if how == "none" or not key:
    raise SystemExit(0)
def send(url, body=None, method="POST"):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as reply:
        text = reply.read()
        return json.loads(text) if text else None
cluster, pod = os.environ.get("CLUSTER_NAME"), os.environ.get("RUNPOD_POD_ID")
if cluster:
    rest = (os.environ.get("RUNPOD_REST_URL") or "https://api.runpod.io").rstrip("/")
    for c in send(rest + "/v2/clusters", method="GET").get("clusters", []):
        if c.get("name") == cluster:
            send(f"{rest}/v2/clusters/{c['id']}", method="DELETE")
            print(f"bootstrap: cluster {cluster} delete requested")
elif pod:
    field = "podStop" if how == "stop" else "podTerminate"
    base = (os.environ.get("RUNPOD_API_BASE_URL") or "https://api.runpod.io").rstrip("/")
    send(base + "/graphql", {"query": f'mutation {{ {field}(input: {{podId: "{pod}"}}) {{ id }} }}'})
    print(f"bootstrap: pod {pod}: {how} requested")
PY
}

die() {
  echo "bootstrap: error: $1" >&2
  [ -z "${2:-}" ] || echo "  hint: $2" >&2
  stop_self
  exit 2
}

[ -n "${AFFINAGE_COMMIT:-}" ] || die "AFFINAGE_COMMIT is not set" "make runpod-up sets it; IMAGE= pods need no bootstrap"
PY=${AFFINAGE_PYTHON:-}
if [ -z "$PY" ]; then  # axolotl's images: a uv venv (newer), a conda env (older), or the system Python
  for candidate in /workspace/axolotl-venv/bin/python /root/miniconda3/envs/py3.11/bin/python "$(command -v python3)"; do
    if [ -x "$candidate" ] && "$candidate" -c 'import axolotl' >/dev/null 2>&1; then PY=$candidate; break; fi
  done
fi
[ -n "$PY" ] || die "no Python with axolotl in this image" "use axolotl's cloud image at the repo's pins (runpod.toml), or IMAGE="

rm -rf "$DEST" && mkdir -p "$DEST" || die "cannot write $DEST"
if [ -n "${AFFINAGE_ARCHIVE:-}" ]; then
  [ -f "$AFFINAGE_ARCHIVE" ] || die "source archive $AFFINAGE_ARCHIVE not found" \
    "put git archive --format=tar.gz -o <that path> $AFFINAGE_COMMIT on the network volume"
  got=$(gzip -dc "$AFFINAGE_ARCHIVE" | git get-tar-commit-id)
  [ "$got" = "$AFFINAGE_COMMIT" ] || die "$AFFINAGE_ARCHIVE is an archive of commit '${got:-?}', not $AFFINAGE_COMMIT"
  tar -xzf "$AFFINAGE_ARCHIVE" -C "$DEST" || die "cannot unpack $AFFINAGE_ARCHIVE"
  say "unpacked $AFFINAGE_ARCHIVE (commit $AFFINAGE_COMMIT)"
else
  [ -n "${AFFINAGE_REPO:-}" ] || die "neither AFFINAGE_REPO nor AFFINAGE_ARCHIVE is set"
  git -C "$DEST" init -q && git -C "$DEST" remote add origin "$AFFINAGE_REPO" || die "git init failed"
  # the commit itself (servers that allow it), else every branch; then exactly that commit or nothing
  git -C "$DEST" fetch -q --depth 1 origin "$AFFINAGE_COMMIT" 2>/dev/null ||
    git -C "$DEST" fetch -q origin '+refs/heads/*:refs/remotes/origin/*' ||
    die "cannot fetch from $AFFINAGE_REPO" "is the repository public, and the pod online?"
  git -C "$DEST" checkout -q --detach "$AFFINAGE_COMMIT" 2>/dev/null ||
    die "commit $AFFINAGE_COMMIT is not in $AFFINAGE_REPO" "git push it, then make runpod-up again"
  [ "$(git -C "$DEST" rev-parse HEAD)" = "$AFFINAGE_COMMIT" ] || die "checked out the wrong commit"
  say "fetched $AFFINAGE_REPO at $AFFINAGE_COMMIT"
fi
cd "$DEST" || die "cannot enter $DEST"
# the image itself, before anything heavy (set-up, a model download): Python, torch, CUDA and axolotl inside the
# supported range (core/stack.py), and a GPU torch can see (DEVICE=cpu: a CPU pod, no GPU asked for)
gpu_check=--gpu; [ "${DEVICE:-}" = cpu ] && gpu_check=
"$PY" core/stack.py $gpu_check || die "this image does not fit the code at $AFFINAGE_COMMIT (above)" \
  "start from axolotl's cloud image for a supported axolotl (runpod.toml base_image), or IMAGE=<an image built by make image>"
prefix=$("$PY" -c 'import sys; print(sys.prefix)')
VENV="$prefix" SETUP_MODE=image bash launch/setup.sh || die "set-up in the image failed (above)"
ln -sfn "$prefix" .venv
export PYTHONPATH="$DEST${PYTHONPATH:+:$PYTHONPATH}"
say "starting the entrypoint"
exec "$PY" -m launch.cloud.runpod.entrypoint
