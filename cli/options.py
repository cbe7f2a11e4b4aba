"""Option parsing shared by the command groups: KEY=VALUE pairs, devices, tables, input checks."""

from __future__ import annotations

import json

import click


def key_values(pairs, flag: str) -> dict[str, str]:
    """``KEY=VALUE`` pairs of a repeatable option -> dict; a malformed one is a usage error."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key or not value:
            raise click.UsageError(f"{flag} {pair!r}: expected KEY=VALUE")
        out[key] = value
    return out


def merge_layout_args(base: dict, pairs) -> dict:
    """The config's layout_args plus ``--layout-arg SOURCE.ARG=VALUE`` overrides (VALUE is JSON or a word)."""
    merged = {k: dict(v) for k, v in base.items()}
    for target, value in key_values(pairs, "--layout-arg").items():
        source, dot, arg = target.partition(".")
        if not dot:
            raise click.UsageError(f"--layout-arg {target!r}: expected SOURCE.ARG=VALUE")
        try:
            merged.setdefault(source, {})[arg] = json.loads(value)
        except ValueError:
            merged.setdefault(source, {})[arg] = value  # a bare string, e.g. clips=all
    return merged


def echo_kv(rows: list[tuple[str, object]]) -> None:
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        click.echo(f"  {k.ljust(width)}  {v}")


def build_dir_argument(name: str = "build_dir"):
    """A positional build folder; a missing one fails before any work, in one line."""
    return click.argument(name, type=click.Path(exists=True, file_okay=False))
