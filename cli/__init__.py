"""The ``uvd`` command line: one module per command group, each importing only its own layer.

``uvd train --help`` loads the trainer and nothing of the build (no Apache Beam); ``uvd build``
loads the build. ``LazyGroup`` imports a command's module only when that command runs (click's
documented lazy-loading pattern). Shared option parsing lives in ``options.py``.
"""

from __future__ import annotations

import atexit
import importlib
import logging
import os
import sys
import threading

import click

import uvd

# command name -> "module:attribute", in the order ``uvd --help`` lists them
COMMANDS = {
    "sample-data": "uvd.cli.build:sample_data",
    "datasets": "uvd.cli.datasets:datasets",
    "build": "uvd.cli.build:build",
    "stats": "uvd.cli.stats:stats",
    "show": "uvd.cli.show:show",
    "rebuild": "uvd.cli.build:rebuild",
    "plan": "uvd.cli.build:plan",
    "tokenizer": "uvd.cli.tokenizer:tokenizer",
    "train": "uvd.cli.train:train",
    "model": "uvd.cli.model:model",
    "eval": "uvd.cli.evaluate:evaluate",
    "generate": "uvd.cli.evaluate:generate",
    "jsonl": "uvd.cli.jsonl:jsonl",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported when they are used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attribute = COMMANDS[name].split(":")
        return getattr(importlib.import_module(module), attribute)


@click.group(cls=LazyGroup)
@click.version_option(uvd.__version__, prog_name="uvd")
@click.option("-v", "--verbose", count=True, help="More logging (-v info, -vv debug).")
def main(verbose: int) -> None:
    """uvd: build LVM visual-sentence datasets and train on them."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    # force: importing the command (Beam) may already have configured the root logger at WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", force=True)
    if verbose == 0:  # Beam is chatty at WARNING about optional GCP clients; uvd's own rejects still show
        logging.getLogger("apache_beam").setLevel(logging.ERROR)
        logging.getLogger("root").setLevel(logging.ERROR)


def entry() -> None:
    """The ``uvd`` executable (and ``python -m uvd.cli``): ``main``, then an exit that skips the
    native libraries' teardown.

    By then every command has committed its output (atomic writes) and returned, other threads have
    been joined and Python's exit handlers run (logging, multiprocessing's children), as a normal
    exit does them. What is skipped is interpreter finalization and the C++ static destructors,
    where a native library intermittently aborted after complete builds ("terminate called without
    an active exception": status 134 for a build whose manifest was written; docs/benchmarks.md).
    Tests that invoke ``main`` in-process are unaffected."""
    try:
        main()
        code = 0
    except SystemExit as e:
        if isinstance(e.code, str):  # as the interpreter would: the message on stderr, status 1
            print(e.code, file=sys.stderr)
        code = e.code if isinstance(e.code, int) else 0 if e.code is None else 1
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said
            pass
    os._exit(code)
