"""The cloud providers by name, as axolotl keeps its cloud providers (axolotl.cli.cloud) and Oumi registers its
cloud builders: CLOUD=<name> picks one (default runpod). A provider is a package under launch/cloud/ whose module
named here defines PROVIDER, a launch.cloud.base.Provider; adding one is that package and one line below. Modules
are imported only when their provider is asked for (the SDKs are heavy)."""

from __future__ import annotations

from importlib import import_module

from core.errors import UserError, Where
from launch.cloud.base import Provider

DEFAULT = "runpod"
PROVIDERS: dict[str, str] = {
    "runpod": "launch.cloud.runpod.provider",
}


def register(name: str, module: str) -> None:
    """Add a provider (a module defining PROVIDER) under a name, or replace the one of that name."""
    PROVIDERS[name] = module


def names() -> list[str]:
    return sorted(PROVIDERS)


def get(name: str | None) -> Provider:
    """The provider CLOUD names (default runpod); an unknown name is one error that lists the known ones."""
    name = (name or DEFAULT).strip().lower()
    if name not in PROVIDERS:
        raise UserError(
            f"unknown cloud '{name}' (known: {', '.join(names())})",
            Where(key="CLOUD"),
            "RunPod's SECURE/COMMUNITY choice is CLOUD_TYPE" if name in ("secure", "community", "all") else None,
        )
    provider = import_module(PROVIDERS[name]).PROVIDER
    if not isinstance(provider, Provider) or provider.name != name:
        raise TypeError(f"{PROVIDERS[name]}.PROVIDER is not the Provider named {name}")
    return provider
