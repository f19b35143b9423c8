"""Which architectures llama.cpp's converter supports: its own registry (`TEXT_MODEL_MAP` of the `conversion`
package the pinned llama-cpp-python ships in <venv>/llama.cpp), read by importing that package the way
convert_hf_to_gguf.py does. Importing it imports torch and every model module (about 8 s), and `make check` asks
before anything heavy is loaded: so it is imported in a child process once per converter (the package's hash) and
the list is kept under AFFINAGE_CACHE, as axolotl's schema keys are (launch/preflight/schema_keys.py)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

from core import atomic
from core.childenv import child_env
from core.paths import REPO

CONVERTER_DIR = Path(sys.prefix) / "llama.cpp"
PACKAGE = CONVERTER_DIR / "conversion" / "__init__.py"


def _kept(cache: Path) -> Path:
    digest = hashlib.sha256(PACKAGE.read_bytes()).hexdigest()[:16]
    return cache / "llama-converter" / f"architectures-{digest}.json"


@lru_cache(maxsize=4)
def converter_architectures(cache: Path) -> frozenset[str] | None:
    """The architectures llama.cpp's converter registers (kept under `cache`, AFFINAGE_CACHE); None when the
    converter is not installed here."""
    if not PACKAGE.is_file():
        return None
    path = _kept(cache)
    if path.is_file():
        try:
            return frozenset(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            pass  # a damaged file: read again from the converter
    proc = subprocess.run(
        [sys.executable, "-m", "tools.export.gguf_support"], cwd=REPO, env=child_env(), capture_output=True, text=True
    )
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
        raise RuntimeError(f"reading llama.cpp's converter registry failed:\n{tail}")
    names = json.loads(proc.stdout.strip().splitlines()[-1])
    atomic.write_json(path, names)
    return frozenset(names)


def main() -> int:
    """The child's work: the converter's registry, as convert_hf_to_gguf.py sets its import path."""
    sys.path.insert(0, str(CONVERTER_DIR))
    if "NO_LOCAL_GGUF" not in os.environ:
        sys.path.insert(1, str(CONVERTER_DIR / "gguf-py"))
    from conversion import TEXT_MODEL_MAP

    print(json.dumps(sorted(TEXT_MODEL_MAP)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
