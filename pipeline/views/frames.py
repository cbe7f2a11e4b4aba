"""From an item and the positions that show it to 256x256 frames: the one rendering path.

The build's Picture step, ``uvd datasets show`` and ``uvd rebuild`` all call
``item_frames``, so an example or a rebuilt sentence is made exactly as the build made it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

import numpy as np

from uvd.dataset_specs.base import TRANSFORM_VIEWS
from uvd.media.images import resize_frame
from uvd.pipeline.readers.base import DecodeContext, Reader
from uvd.pipeline.records.items import Item, Position
from uvd.pipeline.records.sentences import item_seed
from uvd.pipeline.views.derived import apply_transform


def item_frames(reader: Reader, item: Item, positions: Iterable[Position], *, ctx: DecodeContext,
                       global_seed: int, annotators: Mapping) -> dict[tuple[int, str], np.ndarray]:
    """{(frame, view): (S, S, 3) uint8} for every position of ``item``, S = ctx.image_size.

    The reader renders each (frame, base view) once; it is resized (nearest neighbour for label
    maps); derived views are made from the resized frame: transforms seeded by the item's seed,
    annotators in one batch per kind. Raises DecodeError when the item cannot be decoded.
    """
    positions = sorted(set(positions))
    wanted = sorted({(p.frame, p.base_view) for p in positions})
    renders = reader.pictures(item, wanted, ctx)
    base = {fv: resize_frame(r.pixels, ctx.image_size, nearest=r.label_map) for fv, r in renders.items()}
    out: dict[tuple[int, str], np.ndarray] = {}
    by_annotator: dict[str, list[Position]] = defaultdict(list)
    for p in positions:
        frame = base[(p.frame, p.base_view)]
        derived = p.derived_view
        if derived is None:
            out[(p.frame, p.view)] = frame
        elif derived in TRANSFORM_VIEWS:
            out[(p.frame, p.view)] = apply_transform(derived, frame, item_seed(global_seed, item.source, item.key))
        else:
            by_annotator[derived].append(p)
    for kind, targets in by_annotator.items():
        drawn = annotators[kind](np.stack([base[(p.frame, p.base_view)] for p in targets]))
        out.update({(p.frame, p.view): d for p, d in zip(targets, drawn)})
    return out
