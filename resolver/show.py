"""`make show RECIPE=x`: the exact axolotl config that will run on this machine (DEVICE=gpu|cpu to pick)."""

from __future__ import annotations

import argparse
import sys

from core import cli
from core.settings import Settings
from core.yamlio import dump
from resolver.resolve import resolve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe", nargs="?", help="(default: RECIPE, else the embedded recipe)")
    parser.add_argument("--args", default=None, help="overrides (default: ARGS)")
    ns = parser.parse_args(argv)

    def body(s: Settings) -> None:
        r = resolve(ns.recipe or s.recipe_or_default, s, args=ns.args if ns.args is not None else s.args)
        print(f"# {r.recipe.name} for {r.device} ({r.recipe.path.name}, sha256 {r.recipe.sha256[:12]})")
        for note in r.notes:
            print(f"# {note}")
        print(dump(r.config), end="")

    return cli.main(body)


if __name__ == "__main__":
    sys.exit(main())
