"""LAION as img2dataset writes it (``--output_format webdataset``).

Each shard is ``00000.tar`` with members ``<key>.jpg`` (or png/webp), ``<key>.txt`` (caption)
and ``<key>.json`` (url, caption, key, status, width, height, ...), beside ``00000.parquet``
(one row per attempted sample: key, url, caption, status, ...) and ``00000_stats.json``.

A tar is one unit. Listing reads it once and records each image member's offset and size, so a
render reads only that member's bytes. Member names are untrusted: nothing is extracted, no
name becomes a path, and only flat ``<key>.<ext>`` names are used as keys. The parquet is the
cross-check: a sample it reports downloaded (status ``success``) that the tar lacks is rejected.
"""

from __future__ import annotations

import hashlib
import io
import re
import tarfile
from collections.abc import Iterator

import pyarrow as pa

from uvd.format import storage
from uvd.format.rejects import Reject
from uvd.format.tables import parquet_from_bytes
from uvd.media.images import IMAGE_EXTENSIONS, DecodeError
from uvd.pipeline.readers.base import DecodeContext, Reader, decode_still
from uvd.pipeline.records.items import Item, Picture

SAFE_MEMBER_NAME = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+")
DOWNLOADED = "success"  # img2dataset's status of a sample it wrote


class LaionReader(Reader):
    """Items are the image members of img2dataset tars, keyed ``<tar path without .tar>/<key>``."""

    name = "laion"
    index_paths = True  # the tar's member names: never joined to a path, but refused when they would be unsafe
    EXPECTS = "img2dataset webdataset shards (00000.tar, beside 00000.parquet) in it or below it"
    views = ("image",)

    def units(self, root: str) -> list[str]:
        tars = [p for p in storage.files_under(root)
                if p.endswith(".tar") and not storage.is_hidden(storage.relative(p, root))]
        if not tars:
            raise ValueError(f"{root}: no .tar shards (img2dataset --output_format webdataset)")
        return tars

    def items(self, root: str, unit: str) -> Iterator[Item | Reject]:
        shard = storage.relative(unit, root)[:-len(".tar")]
        members, rejects = self._index(unit, shard)
        yield from rejects
        for key, (name, offset, size) in sorted(members.items()):
            yield Item(source=self.source, key=f"{shard}/{key}", paths=(unit,),
                       extra=(("member", name), ("offset", offset), ("size", size)))
        yield from self._cross_check(unit, shard, members)

    def _index(self, tar_path: str, shard: str) -> tuple[dict[str, tuple[str, int, int]], list[Reject]]:
        """sample key -> (member name, data offset, size) of each image member, and the rejects of
        members that cannot be used. The whole tar is indexed before anything is listed."""
        try:
            data = storage.read_bytes(tar_path)
        except OSError as e:
            raise DecodeError("unreadable_tar", f"{tar_path}: {e}") from e
        members: dict[str, tuple[str, int, int]] = {}
        rejects: list[Reject] = []
        try:
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
                for index, info in enumerate(tar):
                    if info.isdir():
                        continue
                    name = info.name
                    if info.issym() or info.islnk() or name.startswith("/") or ".." in name.split("/"):
                        rejects.append(self.reject(f"{shard}/#{index}", "unsafe_path",
                                                   f"{tar_path}: member {index} {name!r} is a link or a path out "
                                                   f"of the tar; not read"))
                        continue
                    if not info.isfile() or not SAFE_MEMBER_NAME.fullmatch(name):
                        rejects.append(self.reject(f"{shard}/#{index}", "bad_member",
                                                   f"{tar_path}: member {index} {name!r} is not a regular file "
                                                   f"with a flat <key>.<ext> name; not read"))
                        continue
                    key, ext = name.split(".", 1)
                    if "." + ext.lower() not in IMAGE_EXTENSIONS:
                        continue  # the caption (.txt) and metadata (.json) members
                    if info.offset_data + info.size > len(data):
                        rejects.append(self.reject(f"{shard}/{key}", "truncated_member",
                                                   f"{tar_path}: member {name!r} ends past the end of the tar"))
                    elif key in members:
                        rejects.append(self.reject(f"{shard}/{key}", "duplicate_member",
                                                   f"{tar_path}: sample {key!r} has two images, "
                                                   f"{members[key][0]!r} and {name!r}; kept the first"))
                    else:
                        members[key] = (name, info.offset_data, info.size)
        except tarfile.TarError as e:
            raise DecodeError("unreadable_tar", f"{tar_path}: not a readable tar ({e})") from e
        return members, rejects

    def _cross_check(self, tar_path: str, shard: str, members: dict) -> Iterator[Reject]:
        """Rejects for samples the shard's parquet reports downloaded that the tar lacks."""
        parquet_path = tar_path[:-len(".tar")] + ".parquet"
        if not storage.exists(parquet_path):
            return
        try:
            table = parquet_from_bytes(storage.read_bytes(parquet_path), columns=["key", "status"])
        except (OSError, pa.ArrowException, KeyError) as e:
            yield self.reject(f"{shard}.parquet", "unreadable_annotation",
                              f"{parquet_path}: no readable key and status columns ({e}); {tar_path} "
                              f"is listed without its cross-check")
            return
        for key, status in zip(table.column("key").to_pylist(), table.column("status").to_pylist()):
            if status == DOWNLOADED and key is not None and key not in members:
                yield self.reject(f"{shard}/{key}", "missing_member",
                                  f"{tar_path}: {parquet_path} reports sample {key!r} downloaded, "
                                  f"but the tar has no image for it")

    @staticmethod
    def _member(item: Item) -> tuple[bytes, str]:
        """The image member's bytes (read by range, not the whole tar) and a name for messages."""
        tar_path, name, offset, size = item.paths[0], item.get("member"), item.get("offset"), item.get("size")
        where = f"{tar_path}[{name}]"
        try:
            data = storage.read_range(tar_path, offset, size)
        except OSError as e:
            raise DecodeError("unreadable_file", f"{where}: {e}") from e
        if len(data) != size:
            raise DecodeError("truncated_member", f"{where}: read {len(data)} of {size} bytes")
        return data, where

    def content_hash(self, item: Item, ctx: DecodeContext) -> str:
        return hashlib.sha256(self._member(item)[0]).hexdigest()

    def pictures(self, item, requests, ctx: DecodeContext) -> dict[tuple[int, str], Picture]:
        self.check_views(requests, item)
        data, where = self._member(item)
        image = decode_still(data, ctx, where)
        return {(frame, view): Picture(image) for frame, view in requests}
