"""The on-disk visual-sentence format (docs/FORMAT.md), shared by writer and loader.

A sample is one visual sentence. In a WebDataset tar it is two members:
``<key>.tokens.npy`` (uint16, shape [num_images, tokens_per_image]) and
``<key>.meta.json`` (everything needed to rebuild or audit the sentence).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import re
from typing import Any

import numpy as np

# 2: per-image item index and view (``image_items``, ``views``);
# 3: sentences of more than 16 images (LVM's multi-sequence and CO3D lines: 64 and 32), the
#    multi_sequence and co3d layouts, and builds that record their pixel preprocessing.
FORMAT_VERSION = 3
READABLE_VERSIONS = (2, 3)  # a version-2 sentence is a valid version-3 one (at most 16 images)
TOKENS_FIELD = "tokens.npy"
META_FIELD = "meta.json"

_KEY_SAFE = re.compile(r"[^a-z0-9_]+")


@dataclasses.dataclass(frozen=True, order=True)
class Position:
    """One image of a sentence: ``view`` of frame ``frame`` of item ``item_key``."""

    item_key: str
    frame: int
    view: str

    @property
    def base_view(self) -> str:
        """The reader view this position starts from (``image`` of ``image|depth``)."""
        return self.view.split("|", 1)[0]

    @property
    def derived_view(self) -> str | None:
        """The transform applied after the resize (``depth`` of ``image|depth``), if any."""
        return self.view.split("|", 1)[1] if "|" in self.view else None


@dataclasses.dataclass(frozen=True)
class SentenceMeta:
    """What a sentence is made of, image by image; enough to rebuild it from its source."""
    source: str  # source name, e.g. "images" or a dataset spec name
    group: str  # UVDv1 group: unpaired_images, images_with_annotations, videos, ...
    layout: str  # sentence layout: single_image, video, pairs, category, ...
    item_keys: tuple[str, ...]  # the distinct member items (keys within the source), in order of first use
    image_items: tuple[int, ...]  # per image: its item, as an index into item_keys
    frame_indices: tuple[int, ...]  # per image: frame index in its item (0 for stills)
    views: tuple[str, ...]  # per image: what of the item it shows (image, boxes, image|depth, ...)
    seed: int  # the seed every random choice of this sentence was drawn from
    sentence_index: int = 0  # which sentence of its item (or of its epoch, for grouped layouts)

    def __post_init__(self) -> None:
        n = len(self.frame_indices)
        if len(self.image_items) != n or len(self.views) != n:
            raise ValueError(f"sentence meta: {len(self.image_items)} item indices, {n} frames and "
                             f"{len(self.views)} views must agree")
        if any(not 0 <= i < len(self.item_keys) for i in self.image_items):
            raise ValueError("sentence meta: an image refers to an item outside item_keys")

    @classmethod
    def from_positions(cls, positions, *, source: str, group: str, layout: str, seed: int,
                       sentence_index: int = 0) -> SentenceMeta:
        """Meta of a sentence whose images are ``positions``, in order."""
        keys = tuple(dict.fromkeys(p.item_key for p in positions))
        index = {k: i for i, k in enumerate(keys)}
        return cls(source=source, group=group, layout=layout, item_keys=keys,
                   image_items=tuple(index[p.item_key] for p in positions),
                   frame_indices=tuple(int(p.frame) for p in positions), views=tuple(p.view for p in positions),
                   seed=seed, sentence_index=sentence_index)

    @property
    def positions(self) -> tuple[Position, ...]:
        return tuple(Position(self.item_keys[i], f, v)
                     for i, f, v in zip(self.image_items, self.frame_indices, self.views))

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for name in ("item_keys", "image_items", "frame_indices", "views"):
            d[name] = list(d[name])
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> SentenceMeta:
        fields = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in fields}
        kw["item_keys"] = tuple(kw["item_keys"])
        kw["frame_indices"] = tuple(int(i) for i in kw["frame_indices"])
        kw["image_items"] = tuple(int(i) for i in kw["image_items"])
        kw["views"] = tuple(kw["views"])
        return cls(**kw)


@dataclasses.dataclass(frozen=True)
class VisualSentence:
    """Token ids of the images of one sentence (usually up to 16; LVM's longest lines hold 64) and the
    metadata that explains them."""
    key: str
    tokens: np.ndarray  # uint16 [num_images, tokens_per_image]
    meta: SentenceMeta

    @property
    def num_images(self) -> int:
        return int(self.tokens.shape[0])

    @property
    def tokens_per_image(self) -> int:
        return int(self.tokens.shape[1])

    @property
    def num_tokens(self) -> int:
        return int(self.tokens.size)


def slug(text: str) -> str:
    """Lower-case ``text`` to [a-z0-9_] so it can sit inside a WebDataset key."""
    s = _KEY_SAFE.sub("_", text.lower()).strip("_")
    return s or "x"


def sentence_key(source: str, item_key: str, sentence_index: int) -> str:
    """A stable, dot-free sample key.

    WebDataset splits a member name at the first dot of its basename, so keys carry
    no dots; the item key is hashed because paths may hold dots, spaces or unicode.
    """
    digest = hashlib.sha1(f"{source}\x00{item_key}".encode()).hexdigest()[:16]
    return f"{slug(source)}_{digest}_{sentence_index:05d}"


def encode_sample(sentence: VisualSentence) -> dict[str, Any]:
    """VisualSentence -> dict for ``webdataset.TarWriter.write`` (bytes values only)."""
    tokens = np.ascontiguousarray(sentence.tokens, dtype=np.uint16)
    if tokens.ndim != 2:
        raise ValueError(f"{sentence.key}: tokens must be [num_images, tokens_per_image]")
    if "." in sentence.key:
        raise ValueError(f"sample key {sentence.key!r} contains a dot")
    buf = io.BytesIO()
    np.save(buf, tokens, allow_pickle=False)
    meta = sentence.meta.to_json()
    meta.update(
        key=sentence.key,
        format_version=FORMAT_VERSION,
        num_images=sentence.num_images,
        tokens_per_image=sentence.tokens_per_image,
    )
    return {
        "__key__": sentence.key,
        TOKENS_FIELD: buf.getvalue(),
        META_FIELD: json.dumps(meta, sort_keys=True, ensure_ascii=False).encode("utf-8"),
    }


def decode_sample(sample: dict[str, Any]) -> VisualSentence:
    """Inverse of :func:`encode_sample`; accepts raw bytes or already-decoded fields."""
    raw_tokens = sample[TOKENS_FIELD]
    if isinstance(raw_tokens, (bytes, bytearray)):
        tokens = np.load(io.BytesIO(raw_tokens), allow_pickle=False)
    else:
        tokens = np.asarray(raw_tokens)
    raw_meta = sample[META_FIELD]
    meta = json.loads(raw_meta) if isinstance(raw_meta, (bytes, bytearray, str)) else raw_meta
    if meta.get("format_version") not in READABLE_VERSIONS:
        raise ValueError(f"{sample.get('__key__')}: unsupported format_version {meta.get('format_version')}")
    if tuple(tokens.shape) != (meta["num_images"], meta["tokens_per_image"]):
        raise ValueError(f"{sample.get('__key__')}: tokens shape {tokens.shape} disagrees with meta")
    return VisualSentence(key=meta["key"], tokens=tokens.astype(np.uint16, copy=False),
                          meta=SentenceMeta.from_json(meta))
