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


class ProgressBeacon:
    """Worker side: counts items and rewrites its own heartbeat file now and then."""

    def __init__(self, directory: str | None):
        self._dir = directory
        self._path: Path | None = None
        self._count = 0

    def add(self, n: int = 1) -> None:
        if not self._dir:
            return
        self._count += n
        if self._path is None:
            self._path = Path(self._dir) / f"{uuid.uuid4().hex}.json"
        tmp = self._path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"done": self._count}))
        os.replace(tmp, self._path)


def read_progress(directory: str) -> int:
    total = 0
    for path in Path(directory).glob("*.json"):
        try:
            total += json.loads(path.read_text())["done"]
        except (OSError, ValueError, KeyError):
            pass  # a file being replaced right now; the next poll reads it
    return total


class ProgressWatcher:
    """CLI side: a thread that polls the heartbeat directory into a tqdm bar."""

    def __init__(self, directory: str, total: int, desc: str):
        from tqdm import tqdm

        self._dir = directory
        self._bar = tqdm(total=total, desc=desc, unit="item", dynamic_ncols=True, mininterval=1.0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self._update()

    def _update(self) -> None:
        done = min(read_progress(self._dir), self._bar.total)
        if done != self._bar.n:  # redraw only on change: keeps logs of non-TTY runs short
            self._bar.update(done - self._bar.n)

    def __enter__(self) -> "ProgressWatcher":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._update()
        self._bar.close()
