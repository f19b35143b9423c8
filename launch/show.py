"""`make show RECIPE=x`: the exact axolotl config that will run on this machine (DEVICE=gpu|cpu to pick)."""
from __future__ import annotations

import argparse
import os

from launch.errors import user_errors_exit
from launch.recipes import dump_config
from launch.resolve import resolve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe")
    parser.add_argument("--args", default=os.environ.get("ARGS"))
    ns = parser.parse_args(argv)
    with user_errors_exit():
        r = resolve(ns.recipe, args=ns.args)
        print(f"# {r.recipe.name} for {r.device} ({r.recipe.path.name}, sha256 {r.recipe.sha256[:12]})")
        for note in r.notes:
            print(f"# {note}")
        print(dump_config(r.config), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
