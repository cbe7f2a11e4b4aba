"""Option parsing shared by the command groups: KEY=VALUE pairs, devices, tables, input checks."""

from __future__ import annotations

import json
import os

import click

from uvd.format import storage


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


BUILD_DIR = "the --out folder of a finished uvd build"


def build_dir_argument(name: str = "build_dir", *, shard_ok: bool = False, **kwargs):
    """A positional build folder (or several, with ``nargs=-1``; with ``shard_ok`` a shard file too);
    a missing one fails before any work, in one line that says what was expected."""
    expected = f"{BUILD_DIR}, or one of its shard files" if shard_ok else BUILD_DIR

    def check(ctx, param, value):
        for path in value if isinstance(value, tuple) else (value,):
            if storage.is_local(path) and not (os.path.isdir(path) or (shard_ok and os.path.isfile(path))):
                what = "is a file, not a folder" if os.path.exists(path) else "does not exist"
                raise click.ClickException(f"{path} {what}; expected {expected}")
        return value

    return click.argument(name, callback=check, **kwargs)
