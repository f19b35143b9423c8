"""`make recipes`: prints the registry (resolver/registry.py) as a table: every recipe with its family,
size, method (lora, lora-8bit, qlora, full), data and suggested GPUs; what its meta does not say is derived from
its config (resolver/derive.py), "?" where that needs facts not here."""

from __future__ import annotations

import argparse
import sys

from rich.console import Console
from rich.table import Table

from core import cli
from core.settings import Settings
from resolver.derive import data_format_of, method_of
from resolver.registry import list_recipes, load_recipe


def rows() -> list[dict]:
    out = []
    for name in list_recipes():
        r = load_recipe(name)
        m = r.meta
        method = m.method or method_of(r.config)
        gpus = "?" if m.gpu is None else "CPU" if m.gpu.count == 0 else f"{m.gpu.count}x {m.gpu.type}"
        out.append(
            {
                "name": name,
                "base_model": r.config.get("base_model"),
                "family": m.family or "?",
                "params": f"{m.params_b:g}B" if m.params_b else "?",
                "method": method + (f" r{r.config['lora_r']}" if r.config.get("lora_r") else ""),
                "data": m.data_format or data_format_of(r.config) or "?",
                "gpus": gpus,
            }
        )
    return out


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)

    def body(s: Settings) -> None:
        table = Table(title="recipes (make train RECIPE=<name>)")
        for col in ("name", "base_model", "family", "params", "method", "data", "gpus"):
            table.add_column(col)
        for row in rows():
            table.add_row(*row.values())
        Console(width=160).print(table)

    return cli.main(body)


if __name__ == "__main__":
    sys.exit(main())
