"""`make cloud-up|cloud-status|cloud-logs|cloud-down CLOUD=<provider>` (default runpod; `make runpod-*` are the same
commands with --cloud runpod, which a different CLOUD contradicts): the provider's own command behind one CLI (launch/cloud/registry.py). What each verb
takes is the provider's: RunPod's are in launch/cloud/runpod/commands.py and docs/runpod.md."""

from __future__ import annotations

import argparse
import sys

from core import cli
from core.errors import UserError, Where
from core.settings import Settings
from launch.cloud import registry


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", help="up | status | logs | down, or a verb of the provider's own (template)")
    parser.add_argument("--dry-run", action="store_true", help="print the request, send nothing (default: DRY_RUN)")
    parser.add_argument("--cloud", default=None, help="the provider (default: CLOUD, else runpod); make runpod-*")
    ns = parser.parse_args(argv)

    def body(s: Settings) -> int:
        if ns.cloud and s.cloud and s.cloud.strip().lower() != ns.cloud:
            raise UserError(  # make runpod-up CLOUD=COMMUNITY: CLOUD once meant RunPod's cloud type
                f"CLOUD={s.cloud} conflicts with make {ns.cloud}-{ns.command}",
                Where(key="CLOUD"),
                "RunPod's SECURE/COMMUNITY choice is CLOUD_TYPE"
                if s.cloud.strip().upper() in ("SECURE", "COMMUNITY", "ALL")
                else f"unset CLOUD, or run make cloud-{ns.command}",
            )
        provider = registry.get(ns.cloud or s.cloud)
        if ns.command not in provider.verbs:
            raise UserError(
                f"the {provider.name} cloud has no '{ns.command}' command (it has: {', '.join(provider.verbs)})",
                Where(key="CLOUD"),
            )
        return provider.command(ns.command, s, ns.dry_run or s.dry_run)

    return cli.main(body)


if __name__ == "__main__":
    sys.exit(main())
