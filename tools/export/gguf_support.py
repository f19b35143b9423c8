"""Which architectures llama.cpp's converter supports, read from the pinned llama-cpp-python's own converter
package (<venv>/llama.cpp/conversion/__init__.py, its TEXT_MODEL_MAP). The map is read from the source, not by
importing the package: importing it imports torch and every model module (about 10 s), and `make check` asks
before anything heavy is loaded."""

from __future__ import annotations

import ast
import sys
from functools import lru_cache
from pathlib import Path

CONVERTER_MAP = Path(sys.prefix) / "llama.cpp" / "conversion" / "__init__.py"


@lru_cache(maxsize=1)
def converter_architectures() -> frozenset[str] | None:
    """The architectures llama.cpp's converter (from the pinned llama-cpp-python sdist) registers; None when the
    converter is not installed here."""
    if not CONVERTER_MAP.is_file():
        return None
    for node in ast.walk(ast.parse(CONVERTER_MAP.read_text(encoding="utf-8"))):
        if isinstance(node, ast.AnnAssign | ast.Assign) and isinstance(node.value, ast.Dict):
            targets = [node.target] if isinstance(node, ast.AnnAssign) else node.targets
            if any(getattr(t, "id", "") == "TEXT_MODEL_MAP" for t in targets):
                return frozenset(k.value for k in node.value.keys if isinstance(k, ast.Constant))
    return None
