"""The manifest and the rejects table: their schemas, their bytes, and the one manifest reader.

``manifest.parquet`` lists a build's shards (written last: it vouches for them) and carries the
build's provenance as schema metadata; ``rejects.parquet`` lists every input that did not become
a sentence. Parquet is written with zstd and read synchronously (see ``parquet_from_bytes``).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable

import pyarrow as pa
import pyarrow.parquet as pq

from uvd.format import storage
from uvd.format.rejects import Reject
from uvd.format.shards import ShardInfo

MANIFEST_NAME = "manifest.parquet"
REJECTS_NAME = "rejects.parquet"
SUMMARY_NAME = "build_summary.json"

MANIFEST_SCHEMA = pa.schema([
    ("path", pa.string()),
    ("samples", pa.int64()),
    ("images", pa.int64()),
    ("tokens", pa.int64()),
    ("bytes", pa.int64()),
    ("sha256", pa.string()),
    ("sources", pa.list_(pa.string())),
])

REJECTS_SCHEMA = pa.schema([(f.name, pa.string()) for f in dataclasses.fields(Reject)])


class NotABuild(FileNotFoundError):
    """A folder that holds no finished build (no manifest)."""


def parquet_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue().to_pybytes()


def parquet_from_bytes(data: bytes, columns: list[str] | None = None) -> pa.Table:
    """A parquet file's bytes -> Table, read synchronously on the calling thread.

    pyarrow's default pre-buffering hands the Python-owned buffer to its I/O threads; when such a
    thread drops the last reference while the interpreter exits, it takes the GIL during
    finalization and the process aborts (std::terminate, exit -6) after all work is done.
    """
    return pq.read_table(pa.BufferReader(data), columns=columns, pre_buffer=False, use_threads=False)


def manifest_table(shards: list[ShardInfo], provenance: dict) -> pa.Table:
    shards = sorted(s for s in shards if s.samples)
    table = pa.table({name: [list(s.sources) if name == "sources" else getattr(s, name) for s in shards]
                      for name in MANIFEST_SCHEMA.names}, schema=MANIFEST_SCHEMA)
    return table.replace_schema_metadata({b"uvd": json.dumps(provenance, sort_keys=True).encode("utf-8")})


def rejects_table(rejects: Iterable[Reject]) -> pa.Table:
    rows = sorted(set(rejects))
    return pa.table({name: [getattr(r, name) for r in rows] for name in REJECTS_SCHEMA.names},
                    schema=REJECTS_SCHEMA)


@dataclasses.dataclass(frozen=True)
class ShardEntry:
    """One manifest row, with its path resolved inside the build directory."""

    path: str
    name: str  # as the manifest names it, relative to the build directory
    samples: int | None  # None: a loose shard file, outside any build (nothing to check it against)
    images: int
    tokens: int
    bytes: int
    sha256: str | None
    sources: tuple[str, ...] = ()


def total_samples(shards) -> int:
    """Samples (sentences) in these manifest entries."""
    return sum(s.samples for s in shards)


def total_tokens(shards) -> int:
    """Tokens in these manifest entries."""
    return sum(s.tokens for s in shards)


@dataclasses.dataclass(frozen=True)
class Manifest:
    """A finished build: its shards in manifest order and its provenance."""

    build_dir: str
    shards: tuple[ShardEntry, ...]
    provenance: dict

    @property
    def num_samples(self) -> int:
        return total_samples(self.shards)

    @property
    def num_tokens(self) -> int:
        return total_tokens(self.shards)

    @property
    def tokenizer(self) -> dict:
        return self.provenance.get("tokenizer") or {}


def read_manifest(build_dir: str | os.PathLike) -> Manifest:
    """The manifest of a finished build; shard paths are confined to ``build_dir``."""
    build_dir = os.fspath(build_dir)
    path = storage.join(build_dir, MANIFEST_NAME)
    try:
        data = storage.read_bytes(path)
    except (FileNotFoundError, NotADirectoryError):
        raise NotABuild(f"{build_dir}: no {MANIFEST_NAME}; expected the --out folder of a finished uvd build "
                        f"(a build still running, or killed, has none yet)") from None
    try:
        table = parquet_from_bytes(data)
    except (OSError, pa.ArrowException) as e:
        raise ValueError(f"{path}: not a readable manifest ({type(e).__name__}: {e})") from None
    missing = sorted(set(MANIFEST_SCHEMA.names) - set(table.column_names))
    if missing:
        raise ValueError(f"{path}: manifest lacks columns {missing}")
    entries = []
    for row in table.to_pylist():
        try:
            shard_path = storage.confined_join(build_dir, row["path"])
        except storage.UnsafePath as e:
            raise ValueError(f"{path}: shard path {e}") from None
        if storage.is_local(shard_path) and not os.path.isfile(shard_path):  # cheap here; stores fail on read
            raise FileNotFoundError(f"{path} lists {row['path']!r} but {shard_path} does not exist")
        entries.append(ShardEntry(path=shard_path, name=row["path"], samples=int(row["samples"]),
                                  images=int(row["images"]), tokens=int(row["tokens"]), bytes=int(row["bytes"]),
                                  sha256=row["sha256"] or None, sources=tuple(row["sources"] or ())))
    provenance = json.loads((table.schema.metadata or {}).get(b"uvd", b"{}"))
    return Manifest(build_dir=build_dir, shards=tuple(entries), provenance=provenance)


def read_rejects(build_dir: str | os.PathLike) -> list[Reject]:
    path = storage.join(build_dir, REJECTS_NAME)
    return [Reject(**row) for row in parquet_from_bytes(storage.read_bytes(path)).to_pylist()]
