"""What a reader is: the code that understands one on-disk layout.

A build asks a reader four things, each on a worker:

1. ``units(root)``: independent pieces of the source to list in parallel (a split file, an
   annotation JSON, a class folder, a tar); default: the root itself.
2. ``items(root, unit)``: the Items of a unit, and a ``Reject`` for every entry it cannot use
   (broken JSON, a missing pair partner), naming the file and the reason.
3. ``probe(item, ctx)``: cheap facts planning needs (a video's frame count); raise
   ``DecodeError`` if the item is unusable. Default: nothing to learn.
4. ``render(item, requests, ctx)``: pictures of the requested ``(frame, view)`` pairs, at any
   size; raise ``DecodeError`` when the item's files cannot be decoded.

Readers hold no state between calls except what ``__init__`` derives from the spec's
``reader_args``; they never substitute data for what they cannot read.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import cv2
import numpy as np

from uvd.format import storage
from uvd.format.rejects import Reject
from uvd.media.images import DecodeError, check_image_size, decode_image
from uvd.pipeline.records.items import Item, Picture


@dataclass
class DecodeContext:
    """Per-worker decoding resources a reader may use (built in a DoFn's ``setup``)."""

    max_pixels: int
    video: Any = None  # a GuardedVideoDecoder, for readers of video files
    image_size: int = 256
    preprocess: str = "lvm"  # media.images.PREPROCESS_MODES: how stills become frames

    @property
    def draft_size(self) -> int:
        """The size a JPEG may be decoded down towards (``fast`` mode only; 0: full size)."""
        return self.image_size if self.preprocess == "fast" else 0


class Reader(ABC):
    """Base class: subclasses implement ``items`` and ``render``; the rest has defaults."""

    name: ClassVar[str] = ""
    views: ClassVar[tuple[str, ...]] = ()  # the views ``render`` can make
    stills: ClassVar[bool] = False  # items are still images held in ``paths``: hash them for dedup
    ARGS: ClassVar[Mapping[str, Any]] = {}  # accepted reader_args and their defaults
    EXPECTS: ClassVar[str] = "files in the {name} layout"  # what a root holds (``expects``; args fill it in)
    index_paths: ClassVar[bool] = False  # an index or annotation file names the items' files: ``confined``

    def __init__(self, source: str, args: Mapping[str, Any] | None = None, split: str = "train"):
        args = dict(args or {})
        unknown = sorted(set(args) - set(self.ARGS))
        if unknown:
            raise ValueError(f"reader {self.name!r} got unknown reader_args {unknown}; known: {sorted(self.ARGS)}")
        self.source = source
        self.split = split
        self.args = {**self.ARGS, **args}

    # --- listing ---------------------------------------------------------------------------

    def units(self, root: str) -> list[str]:
        return [root]

    @abstractmethod
    def items(self, root: str, unit: str) -> Iterator[Item | Reject]:
        """The Items of one unit, and a Reject for each entry that cannot be used."""

    def expects(self) -> str:
        """What this reader looks for under a root, for the error when it finds nothing there."""
        def shown(value: Any) -> str:
            if isinstance(value, (list, tuple)):
                return " or ".join(str(v) for v in value)
            return str(value) if value != "" else "the root"

        return self.EXPECTS.format_map({**{k: shown(v) for k, v in self.args.items()}, "name": self.name})

    def found(self, root: str) -> bool:
        """Whether ``root`` looks like this layout (for ``uvd datasets list --root``)."""
        try:
            return any(True for _ in self.units(root))
        except (OSError, ValueError):
            return False

    # --- per item ----------------------------------------------------------------------------

    def probe(self, item: Item, ctx: DecodeContext) -> Item:
        return item

    @abstractmethod
    def pictures(self, item: Item, requests: list[tuple[int, str]], ctx: DecodeContext) -> dict[tuple[int, str], Picture]:
        """Pictures of the requested (frame, view) pairs of ``item``, at any size."""
    def content_hash(self, item: Item, ctx: DecodeContext) -> str | None:
        """sha256 of the bytes that make a still item (all its files, in order), for exact dedup; None
        for items that are not stills (videos, sequences), which are never deduplicated by content."""
        if not self.stills:
            return None

        digest = hashlib.sha256()
        for path in item.paths:
            try:
                data = storage.read_bytes(path)
            except OSError as e:
                raise DecodeError("unreadable_file", f"{path}: {e}") from e
            if not data:
                return None  # nothing to compare: decoding rejects the empty file for what it is
            digest.update(hashlib.sha256(data).digest())
        return digest.hexdigest()

    # --- helpers for subclasses ----------------------------------------------------------------

    def reject(self, key: str, reason: str, message: str, stage: str = "list") -> Reject:
        return Reject(source=self.source, item_key=key, stage=stage, reason=reason, message=message)

    def confined(self, base: str, relpath: str, *, key: str, named_by: str) -> str | Reject:
        """``base/relpath`` for a path that an index or annotation file names (``named_by``), or an
        ``unsafe_path`` reject when it is absolute, climbs out with ``..`` or leaves ``base`` through
        a symlink. A file found by listing is checked as ``relative(path, base)``."""
        try:
            return storage.confined_join(base, relpath)
        except storage.UnsafePath as e:
            return self.reject(key, "unsafe_path", f"{named_by}: {e}")

    def check_views(self, requests: Iterable[tuple[int, str]], item: Item) -> None:
        bad = sorted({v for _, v in requests if v not in self.views})
        if bad:
            raise ValueError(f"reader {self.name} cannot render view(s) {bad} of {item.key}; it has {self.views}")


def decode_still(data: bytes, ctx: DecodeContext, name: str) -> np.ndarray:
    """Image bytes -> (H, W, 3) uint8 RGB, decoded as the build's preprocess mode decodes stills."""
    return decode_image(data, max_pixels=ctx.max_pixels, name=name, draft_size=ctx.draft_size)


def read_image(path: str, ctx: DecodeContext) -> np.ndarray:
    """A still from any file system -> (H, W, 3) uint8 RGB; DecodeError names the file."""
    try:
        data = storage.read_bytes(path)
    except OSError as e:
        raise DecodeError("unreadable_file", f"{path}: {e}") from e
    return decode_still(data, ctx, path)


def view_file_pictures(reader: Reader, item: Item, requests, ctx: DecodeContext) -> dict[tuple[int, str], Picture]:
    """``pictures`` of a reader whose item paths are one still per view, in ``reader.views`` order
    (paired datasets, stereo pairs): each requested view's file is decoded once."""
    reader.check_views(requests, item)
    paths = dict(zip(reader.views, item.paths))
    images = {view: read_image(paths[view], ctx) for view in sorted({v for _, v in requests})}
    return {(frame, view): Picture(images[view]) for frame, view in requests}


def decode_unchanged(path: str, ctx: DecodeContext, *, reason: str) -> np.ndarray:
    """Any image file as stored (bit depth, channels, alpha kept; opencv's BGR(A) order), behind the
    pixel-limit guard; failures raise DecodeError with ``reason``, naming the file."""


    try:
        data = storage.read_bytes(path)
    except OSError as e:
        raise DecodeError("unreadable_file", f"{path}: {e}") from e
    if not data:
        raise DecodeError(reason, f"{path}: empty file")
    check_image_size(data, max_pixels=ctx.max_pixels, name=path)
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise DecodeError(reason, f"{path}: not a decodable image")
    return arr


def read_label_png(path: str, ctx: DecodeContext) -> np.ndarray:
    """A label map (PNG of class ids, 8 or 16 bit, 1 channel or RGB) -> (H, W) int array, untouched."""
    arr = decode_unchanged(path, ctx, reason="unreadable_annotation")
    if arr.ndim == 3:
        arr = cv2.cvtColor(arr[..., :3], cv2.COLOR_BGR2RGB)
    return arr
