"""LVM's evaluation records: one JSON object a line, ``{"input": [image paths], "target": [image paths]}``
(evaluation/vqlm_demo/eval_perplexity.py and batch_generation.py read them so; the keys can be
renamed). ``input`` is the prompt, few-shot examples included; ``target`` the images to score or
to generate. Paths are resolved against a base folder (LVM's ``input_base_dir``; here the JSONL's own
folder by default) and must stay inside it, as every index path uvd reads (``confined_join``). An optional ``task`` names the record's row in the per-task table
(default: the file's name) and ``kind`` what its targets are (downstream metrics).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from uvd.format.storage import UnsafePath, confined_join


@dataclass(frozen=True)
class Record:
    task: str
    inputs: tuple[Path, ...]
    targets: tuple[Path, ...]
    kind: str | None = None
    where: str = ""  # file:line, for messages


def read_records(path: str | Path, *, base_dir: str | Path | None = None, input_key: str = "input",
                 target_key: str = "target", max_records: int = 0) -> list[Record]:
    """Every record of a JSONL file; a bad line raises one ValueError naming the file, line and reason."""
    path = Path(path)
    base = Path(base_dir) if base_dir is not None else path.parent
    records = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                raw = json.loads(line)
                lists = [raw[input_key], raw[target_key]]
            except (ValueError, KeyError, TypeError) as e:
                raise ValueError(f"{where}: not a record with {input_key!r} and {target_key!r} "
                                 f"({type(e).__name__}: {e})") from None
            if not all(isinstance(x, list) and x and all(isinstance(p, str) for p in x) for x in lists):
                raise ValueError(f"{where}: {input_key!r} and {target_key!r} must be non-empty lists of paths")
            try:
                inputs, targets = ([Path(confined_join(str(base), p)) for p in x] for x in lists)
            except UnsafePath as e:
                raise ValueError(f"{where}: {e}") from None
            records.append(Record(str(raw.get("task") or path.stem), tuple(inputs), tuple(targets),
                                  raw.get("kind"), where))
            if max_records and len(records) >= max_records:
                break
    return records
