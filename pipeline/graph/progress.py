"""A progress bar for local runs that works across worker processes.

Beam metrics are only readable when a local job ends, so workers instead drop tiny
heartbeat files (cumulative counts per DoFn instance) into a local directory that
the CLI sums into a tqdm bar. Remote runners have their own UIs; there it is off.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from pathlib import Path

from tqdm import tqdm


class ProgressBeacon:
    """Worker side: counts items listed and items finished, and rewrites its own heartbeat file."""

    def __init__(self, directory: str | None):
        self._dir = directory
        self._path: Path | None = None
        self._counts = {"listed": 0, "done": 0}

    def add(self, done: int = 1, listed: int = 0) -> None:
        if not self._dir:
            return
        self._counts["done"] += done
        self._counts["listed"] += listed
        if self._path is None:
            self._path = Path(self._dir) / f"{uuid.uuid4().hex}.json"
        tmp = self._path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._counts))
        os.replace(tmp, self._path)


def read_progress(directory: str) -> tuple[int, int]:
    """(items listed so far, items finished so far), summed over every worker's beacon."""
    listed = done = 0
    for path in Path(directory).glob("*.json"):
        try:
            counts = json.loads(path.read_text())
            listed, done = listed + counts["listed"], done + counts["done"]
        except (OSError, ValueError, KeyError):
            pass  # a file being replaced right now; the next poll reads it
    return listed, done


class ProgressWatcher:
    """Launcher side: a thread that polls the heartbeat directory into a tqdm bar. Without a fixed
    ``total`` the bar's total grows as sources are listed (listing finishes long before probing)."""

    def __init__(self, directory: str, desc: str, total: int | None = None, unit: str = "item"):
        self._dir, self._total = directory, total
        self._bar = tqdm(total=total or 0, desc=desc, unit=unit, dynamic_ncols=True, mininterval=1.0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self._update()

    def _update(self) -> None:
        listed, done = read_progress(self._dir)
        total = self._total if self._total is not None else listed
        if total != self._bar.total:
            self._bar.total = total
            self._bar.refresh()
        done = min(done, total)
        if done != self._bar.n:  # redraw only on change: keeps logs of non-TTY runs short
            self._bar.update(done - self._bar.n)

    def __enter__(self) -> ProgressWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._update()
        self._bar.close()
