"""File access for readers and writers, through Beam FileSystems (local, s3://, gs://).

Readers call these instead of ``open``/``os.listdir`` so that every source works the same on
an object store. Listing is by match patterns, which object stores support natively.
"""

from __future__ import annotations

import posixpath

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems


def ensure_filesystem_options() -> None:
    """Object-store file systems need pipeline options to make their clients; outside a pipeline
    (reading a manifest, a webdataset opener) use the defaults, i.e. the standard cloud configuration."""
    if getattr(FileSystems, "_pipeline_options", None) is None:
        from apache_beam.options.pipeline_options import PipelineOptions

        FileSystems.set_options(PipelineOptions([]))


def is_local(path: str) -> bool:
    return FileSystems.get_scheme(path) is None


def join(base: str, *parts: str) -> str:
    parts = [p for p in parts if p]
    return FileSystems.join(base.rstrip("/"), *parts) if parts else base


def read_bytes(path: str) -> bytes:
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        return f.read()


def read_range(path: str, offset: int, size: int) -> bytes:
    """``size`` bytes at ``offset`` (a member of a tar, without reading the rest)."""
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        f.seek(offset)
        return f.read(size)


def read_text(path: str) -> str:
    return read_bytes(path).decode("utf-8")


def exists(path: str) -> bool:
    return FileSystems.exists(path)


def dir_exists(path: str) -> bool:
    """A local directory, or an object-store prefix with at least one object under it."""
    if is_local(path):
        import os

        return os.path.isdir(path)
    return bool(FileSystems.match([join(path, "**")], limits=[1])[0].metadata_list)


def match(pattern: str) -> list[str]:
    """Paths matching a glob (``*`` within a level, ``**`` across levels), sorted."""
    result = FileSystems.match([pattern])[0]
    return sorted(m.path for m in result.metadata_list)


def files_under(root: str) -> list[str]:
    """Every file below ``root``, recursively, sorted."""
    return match(join(root, "**"))


def relative(path: str, root: str) -> str:
    root = root.rstrip("/") + "/"
    return path[len(root):] if path.startswith(root) else posixpath.basename(path)


def is_hidden(relpath: str) -> bool:
    return any(part.startswith(".") for part in relpath.split("/"))


def register_webdataset_schemes(schemes: tuple[str, ...] = ("s3",)) -> None:
    """Let plain ``webdataset.WebDataset("s3://...")`` read shards through Beam FileSystems, with the
    endpoint and credentials of the standard AWS configuration (webdataset ships no s3 opener)."""
    import importlib

    gopen = importlib.import_module("webdataset.gopen")  # the package re-exports a function of that name

    def open_with_filesystems(url: str, mode: str = "rb", bufsize: int = 8192, **_):
        if mode != "rb":
            raise ValueError(f"{url}: uvd's {url.split(':', 1)[0]} opener only reads")
        return FileSystems.open(url, compression_type=CompressionTypes.UNCOMPRESSED)

    ensure_filesystem_options()
    for scheme in schemes:
        gopen.gopen_schemes[scheme] = open_with_filesystems


def parquet_from_bytes(data: bytes, columns: list[str] | None = None):
    """A parquet file's bytes -> pyarrow Table, read synchronously on the calling thread.

    pyarrow's default pre-buffering hands the Python-owned buffer to its I/O threads; when such a
    thread drops the last reference while the interpreter exits, it takes the GIL during
    finalization and the process aborts (std::terminate, exit -6) after all work is done.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    return pq.read_table(pa.BufferReader(data), columns=columns, pre_buffer=False, use_threads=False)
