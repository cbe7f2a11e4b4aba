"""Files on a local disk or an object store, read and written the same way; the one atomic write.

Local paths go through the OS. ``s3://`` goes through boto3, configured the standard AWS way
(environment, ``~/.aws``, instance roles; ``AWS_ENDPOINT_URL`` for S3-compatible stores). Any other
scheme (``gs://``, ``hdfs://``...) goes to a backend registered for it: the build registers Beam
FileSystems for the schemes Beam knows, and outside a build fsspec serves them when it is installed.
Nothing here imports Apache Beam, so the trainer, ``uvd show`` and every reader of shards stay light.

Failures keep their meaning across backends: a missing file is ``FileNotFoundError`` (an input to
reject), an unreachable store is ``StorageUnavailable`` (the job fails and is retried, it never
rejects data because the network dropped).
"""

from __future__ import annotations

import importlib
import io
import os
import posixpath
import re
import shutil
import uuid
from collections.abc import Iterable
from typing import BinaryIO, Protocol

_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")
_GLOB_CHARS = re.compile(r"[*?\[]")


class StorageUnavailable(RuntimeError):
    """The store could not be reached (connection dropped, throttled, timed out): retry the work."""


class UnsafePath(ValueError):
    """A path named by an index or annotation file would leave the dataset's root."""


class Backend(Protocol):
    """What uvd needs of a file system; writes are atomic (a reader sees all of a file or none)."""

    def read_bytes(self, path: str) -> bytes: ...
    def read_range(self, path: str, offset: int, size: int) -> bytes: ...
    def open_read(self, path: str) -> BinaryIO: ...
    def write_bytes(self, path: str, data: bytes, staging: str | None) -> None: ...
    def exists(self, path: str) -> bool: ...
    def list_prefix(self, prefix: str) -> list[str]: ...
    def delete(self, paths: list[str]) -> None: ...


def scheme(path: str | os.PathLike) -> str | None:
    match = _SCHEME.match(os.fspath(path))
    return match.group(1).lower() if match else None


def is_local(path: str) -> bool:
    return scheme(path) is None


def join(base: str | os.PathLike, *parts: str) -> str:
    base = os.fspath(base)
    parts = tuple(p.strip("/") for p in parts if p)
    return posixpath.join(base.rstrip("/") or "/", *parts) if parts else base


def relative(path: str, root: str) -> str:
    root = root.rstrip("/") + "/"
    return path[len(root):] if path.startswith(root) else posixpath.basename(path)


def is_hidden(relpath: str) -> bool:
    return any(part.startswith(".") for part in relpath.split("/"))


# --- backends --------------------------------------------------------------------------------------

class LocalBackend:
    """The OS file system; a write lands in ``staging`` (same file system) and is renamed into place."""
    def read_bytes(self, path: str) -> bytes:
        with open(path, "rb") as f:
            return f.read()

    def read_range(self, path: str, offset: int, size: int) -> bytes:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read(size)

    def open_read(self, path: str) -> BinaryIO:
        return open(path, "rb")

    def write_bytes(self, path: str, data: bytes, staging: str | None) -> None:
        staging = staging or posixpath.dirname(path) or "."
        os.makedirs(staging, exist_ok=True)
        os.makedirs(posixpath.dirname(path) or ".", exist_ok=True)
        tmp = posixpath.join(staging, f"{uuid.uuid4().hex}-{posixpath.basename(path)}.tmp")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def list_prefix(self, prefix: str) -> list[str]:
        """Every file whose path starts with ``prefix`` (a directory or a partial name)."""
        base = prefix if os.path.isdir(prefix) else posixpath.dirname(prefix) or "."
        found = []
        for folder, _, files in os.walk(base):
            found += [posixpath.join(folder, f) for f in files]
        return [p for p in found if p.startswith(prefix)]

    def delete(self, paths: list[str]) -> None:
        for path in paths:
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            elif os.path.lexists(path):
                os.remove(path)


class S3Backend:
    """s3:// through boto3; an object appears only once its upload completes."""
    def __init__(self):
        self._client = None

    @property
    def client(self):
        if self._client is None:
            import boto3  # noqa: PLC0415 - 0.3 s to import; only s3:// paths need it

            self._client = boto3.client("s3")
        return self._client

    @staticmethod
    def _split(path: str) -> tuple[str, str]:
        bucket, _, key = path[len("s3://"):].partition("/")
        return bucket, key

    def _call(self, path: str, method: str, **kwargs):
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415 - with boto3, above

        try:
            return getattr(self.client, method)(**kwargs)
        except ClientError as e:
            code = e.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404", "NotFound", "NoSuchBucket"):
                raise FileNotFoundError(f"{path}: no such object") from None
            if code in ("AccessDenied", "403"):
                raise PermissionError(f"{path}: access denied") from None
            raise StorageUnavailable(f"{path}: S3 {method} failed ({code})") from None
        except BotoCoreError as e:
            raise StorageUnavailable(f"{path}: S3 {method} failed ({type(e).__name__})") from None

    def read_bytes(self, path: str) -> bytes:
        bucket, key = self._split(path)
        return self._call(path, "get_object", Bucket=bucket, Key=key)["Body"].read()

    def read_range(self, path: str, offset: int, size: int) -> bytes:
        bucket, key = self._split(path)
        return self._call(path, "get_object", Bucket=bucket, Key=key,
                          Range=f"bytes={offset}-{offset + size - 1}")["Body"].read()

    def open_read(self, path: str) -> BinaryIO:
        return io.BytesIO(self.read_bytes(path))

    def write_bytes(self, path: str, data: bytes, staging: str | None) -> None:
        bucket, key = self._split(path)
        self._call(path, "put_object", Bucket=bucket, Key=key, Body=data)

    def exists(self, path: str) -> bool:
        bucket, key = self._split(path)
        try:
            self._call(path, "head_object", Bucket=bucket, Key=key)
            return True
        except FileNotFoundError:
            return False

    def list_prefix(self, prefix: str) -> list[str]:
        bucket, key = self._split(prefix)
        found, token = [], None
        while True:
            kwargs = {"Bucket": bucket, "Prefix": key, **({"ContinuationToken": token} if token else {})}
            page = self._call(prefix, "list_objects_v2", **kwargs)
            found += [f"s3://{bucket}/{o['Key']}" for o in page.get("Contents", [])]
            if not page.get("IsTruncated"):
                return found
            token = page["NextContinuationToken"]

    def delete(self, paths: list[str]) -> None:
        for start in range(0, len(paths), 1000):
            batch = paths[start:start + 1000]
            bucket = self._split(batch[0])[0]
            objects = [{"Key": self._split(p)[1]} for p in batch]
            self._call(batch[0], "delete_objects", Bucket=bucket, Delete={"Objects": objects, "Quiet": True})


class FsspecBackend:
    """Any scheme fsspec knows (gs:// with gcsfs installed, ...), for reading outside a build."""
    def __init__(self, name: str):
        import fsspec  # noqa: PLC0415 - optional: only schemes uvd has no backend for need it

        self.fs = fsspec.filesystem(name)
        self.prefix = f"{name}://"

    def read_bytes(self, path: str) -> bytes:
        return self.fs.cat_file(path)

    def read_range(self, path: str, offset: int, size: int) -> bytes:
        return self.fs.cat_file(path, start=offset, end=offset + size)

    def open_read(self, path: str) -> BinaryIO:
        return self.fs.open(path, "rb")

    def write_bytes(self, path: str, data: bytes, staging: str | None) -> None:
        self.fs.pipe_file(path, data)

    def exists(self, path: str) -> bool:
        return self.fs.exists(path)

    def list_prefix(self, prefix: str) -> list[str]:
        parent = prefix if self.fs.isdir(prefix) else posixpath.dirname(prefix)
        found = [p if "://" in p else self.prefix + p for p in self.fs.find(parent)]
        return [p for p in found if p.startswith(prefix)]

    def delete(self, paths: list[str]) -> None:
        self.fs.rm(paths)


_BACKENDS: dict[str | None, Backend] = {None: LocalBackend(), "s3": S3Backend()}


def register_backend(name: str, backend: Backend, *, replace: bool = False) -> None:
    """Serve ``name://`` paths with ``backend`` (the build registers Beam FileSystems this way)."""
    if replace or name not in _BACKENDS:
        _BACKENDS[name] = backend


def backend_for(path: str) -> Backend:
    name = scheme(path)
    if name not in _BACKENDS:
        try:
            _BACKENDS[name] = FsspecBackend(name)
        except (ImportError, ValueError) as e:
            raise ValueError(f"{path}: no storage backend for {name}:// (install fsspec with its {name} "
                             f"driver, or run inside a build, which uses Beam FileSystems)") from e
    return _BACKENDS[name]


# --- the operations everything else calls -----------------------------------------------------------

def read_bytes(path: str) -> bytes:
    return backend_for(path).read_bytes(path)


def read_text(path: str) -> str:
    return read_bytes(path).decode("utf-8")


def read_range(path: str, offset: int, size: int) -> bytes:
    """``size`` bytes at ``offset`` (a member of a tar, without reading the rest)."""
    return backend_for(path).read_range(path, offset, size)


def open_read(path: str) -> BinaryIO:
    return backend_for(path).open_read(path)


def exists(path: str) -> bool:
    return backend_for(path).exists(path)


def dir_exists(path: str) -> bool:
    """A local directory, or an object-store prefix with at least one object under it."""
    if is_local(path):
        return os.path.isdir(path)
    return bool(backend_for(path).list_prefix(path.rstrip("/") + "/"))


def glob_regex(pattern: str) -> re.Pattern:
    """``*`` and ``?`` within one path level, ``**`` across levels, ``[...]`` a character class."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and "]" in pattern[i + 2:]:
            end = pattern.index("]", i + 2)
            body = pattern[i + 1:end]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def match(pattern: str) -> list[str]:
    """Files matching a glob (``*`` within a level, ``**`` across levels), sorted."""
    pattern = os.fspath(pattern)
    backend = backend_for(pattern)
    literal = _GLOB_CHARS.search(pattern)
    if literal is None:
        return [pattern] if backend.exists(pattern) and not os.path.isdir(pattern) else []
    regex = glob_regex(pattern)
    return sorted(p for p in backend.list_prefix(pattern[:literal.start()]) if regex.match(p))


def files_under(root: str) -> list[str]:
    """Every file below ``root``, recursively, sorted."""
    return match(join(root, "**"))


def delete(paths: Iterable[str]) -> None:
    paths = list(paths)
    if paths:
        backend_for(paths[0]).delete(paths)


def staging_dir_for(out_dir: str) -> str | None:
    """Where local writes are staged before their rename: a hidden sibling of the output directory
    (same file system, not under the output prefix). Object stores need none."""
    if not is_local(out_dir):
        return None
    parent, name = posixpath.split(out_dir.rstrip("/"))
    return posixpath.join(parent, f".{name}.uvd-tmp")


def atomic_write(path: str, data: bytes, staging: str | None = None) -> None:
    """Make ``path`` hold ``data``, never visibly half-written: on a local disk written in ``staging``
    (default: next to ``path``) and renamed; on an object store one completed upload."""
    backend_for(path).write_bytes(path, data, staging)


def confined_join(root: str, relpath: str) -> str:
    """``root/relpath`` for a path named by an index or annotation file, refusing one that is absolute,
    climbs with ``..``, or (on a local disk) resolves through a symlink to outside ``root``."""
    root = os.fspath(root)
    if not relpath or relpath.startswith(("/", "\\")) or scheme(relpath) or re.match(r"^[a-zA-Z]:", relpath):
        raise UnsafePath(f"{relpath!r} is an absolute path; entries must be relative to {root}")
    if any(part == ".." for part in re.split(r"[\\/]", relpath)):
        raise UnsafePath(f"{relpath!r} climbs out of {root} with '..'")
    path = join(root, relpath)
    if is_local(root):
        real_root = os.path.realpath(root)
        real = os.path.realpath(path)
        if real != real_root and not real.startswith(real_root.rstrip("/") + "/"):
            raise UnsafePath(f"{relpath!r} resolves (through a symlink) to {real}, outside {root}")
    return path


def register_webdataset_schemes(schemes: tuple[str, ...] = ("s3",)) -> None:
    """Let plain ``webdataset.WebDataset("s3://...")`` read shards through these backends (with the
    standard AWS configuration; webdataset ships no s3 opener of its own)."""
    gopen = importlib.import_module("webdataset.gopen")  # the package re-exports a function of that name

    def open_with_storage(url: str, mode: str = "rb", bufsize: int = 8192, **_):
        if mode != "rb":
            raise ValueError(f"{url}: uvd's {scheme(url)} opener only reads")
        return open_read(url)

    for name in schemes:
        gopen.gopen_schemes[name] = open_with_storage
