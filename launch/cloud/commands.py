"""`make cloud-up|cloud-status|cloud-logs|cloud-down CLOUD=<provider>` (default runpod; `make runpod-*` are the same
commands with CLOUD=runpod): the provider's own command behind one CLI (launch/cloud/registry.py). What each verb
takes is the provider's: RunPod's are in launch/cloud/runpod/commands.py and docs/runpod.md."""

from __future__ import annotations

import argparse
import sys

from core import cli, settings
from core.errors import UserError, Where
from launch.cloud import registry


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", help="up | status | logs | down, or a verb of the provider's own (template)")
    parser.add_argument("--dry-run", action="store_true", help="print the request, send nothing (default: DRY_RUN)")
    ns = parser.parse_args(argv)

    def body() -> int:
        s = settings.load()
        provider = registry.get(s.cloud)
        if ns.command not in provider.verbs:
            raise UserError(
                f"the {provider.name} cloud has no '{ns.command}' command (it has: {', '.join(provider.verbs)})",
                Where(key="CLOUD"),
            )
        return provider.command(ns.command, s, ns.dry_run or s.dry_run)

    return cli.main(body)


if __name__ == "__main__":
    sys.exit(main())
