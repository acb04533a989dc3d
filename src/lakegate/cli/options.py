"""Option values the commands share."""

from __future__ import annotations

import typer

# The configuration file of every command that reads one (serve, healthcheck, the admin commands).
CONFIG_HELP = "Server configuration (YAML); or set LAKEGATE_CONFIG."
ConfigOption = typer.Option(..., "--config", "-c", envvar="LAKEGATE_CONFIG", help=CONFIG_HELP)


def key_values(pairs: list[str], option: str) -> dict[str, str]:
    """Repeated `KEY=VALUE` option values as a dict (a later KEY wins); a clear usage error for anything else."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint=option)
        out[key] = value
    return out
