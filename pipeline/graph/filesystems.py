"""Beam FileSystems as the storage backend of object stores other than S3 (gs://, hdfs:// ...).

Inside a build, reads and writes of those schemes go through Beam, so they use the job's pipeline
options (project, credentials) on the launcher and on every worker. Importing the graph registers
it; ``s3://`` keeps uvd's boto3 backend (format/storage.py), configured the standard AWS way.
"""

from __future__ import annotations

import io
from typing import BinaryIO

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from uvd.format import storage

RAW = CompressionTypes.UNCOMPRESSED
SCHEMES = ("gs", "hdfs", "azfs")


class BeamBackend:
    """storage.Backend over Beam FileSystems."""

    def read_bytes(self, path: str) -> bytes:
        with FileSystems.open(path, compression_type=RAW) as f:
            return f.read()

    def read_range(self, path: str, offset: int, size: int) -> bytes:
        with FileSystems.open(path, compression_type=RAW) as f:
            f.seek(offset)
            return f.read(size)

    def open_read(self, path: str) -> BinaryIO:
        return io.BytesIO(self.read_bytes(path))

    def write_bytes(self, path: str, data: bytes, staging: str | None) -> None:
        with FileSystems.create(path, compression_type=RAW) as f:  # visible once the upload completes
            f.write(data)

    def exists(self, path: str) -> bool:
        return FileSystems.exists(path)

    def list_prefix(self, prefix: str) -> list[str]:
        return [m.path for m in FileSystems.match([prefix + "**"])[0].metadata_list]

    def delete(self, paths: list[str]) -> None:
        FileSystems.delete(paths)


def use_pipeline_options(options: PipelineOptions) -> None:
    """Make Beam's clients (GCS, HDFS ...) on this process use the job's options."""
    FileSystems.set_options(options)


def register() -> None:
    for name in SCHEMES:
        storage.register_backend(name, BeamBackend())
