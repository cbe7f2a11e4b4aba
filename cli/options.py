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
CHECKPOINT = "a checkpoint (uvd train's --out folder, or one of its step folders)"


class InputPath(click.ParamType):
    """A local input path that must exist (a folder with ``folder=True``, a file with ``False``);
    a wrong one fails before any work in one line saying what was expected, not in click's usage
    block. Object-store paths pass through: reading them says what is missing."""

    name = "path"

    def __init__(self, expected: str, *, folder: bool | None = None):
        self.expected, self.folder = expected, folder

    def convert(self, value, param, ctx):
        path = os.fspath(value)
        if not storage.is_local(path):
            return path
        if not os.path.exists(path):
            problem = "does not exist"
        elif self.folder is True and not os.path.isdir(path):
            problem = "is a file, not a folder"
        elif self.folder is False and os.path.isdir(path):
            problem = "is a folder, not a file"
        else:
            return path
        raise click.ClickException(f"{path} {problem}; expected {self.expected}")


def build_dir_argument(name: str = "build_dir", *, shard_ok: bool = False, **kwargs):
    """A positional build folder (or several, with ``nargs=-1``; with ``shard_ok`` a shard file too)."""
    expected = f"{BUILD_DIR}, or one of its shard files" if shard_ok else BUILD_DIR
    return click.argument(name, type=InputPath(expected, folder=None if shard_ok else True), **kwargs)
