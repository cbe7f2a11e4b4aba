"""From an item and the positions that show it to 256x256 frames: the one rendering path.

The build's Picture step, ``uvd datasets show`` and ``uvd rebuild`` all call
``item_frames``, so an example or a rebuilt sentence is made exactly as the build made it.
The pixels are LVM's (media/images.py): stills, label maps and drawn annotations are resized
as the release resized the image files it read, video frames as it resized decoded frames.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

import numpy as np

from uvd.dataset_specs.base import TRANSFORM_VIEWS
from uvd.media.images import STILL_RESIZE
from uvd.pipeline.readers.base import DecodeContext, Reader
from uvd.pipeline.records.items import Item, Position
from uvd.pipeline.records.sentences import item_seed
from uvd.pipeline.views.derived import apply_transform
from uvd.tokenizer.frames import Frame


def item_frames(reader: Reader, item: Item, positions: Iterable[Position], *, ctx: DecodeContext,
                global_seed: int, annotators: Mapping) -> dict[tuple[int, str], Frame]:
    """{(frame, view): (S, S, 3) uint8, or a TaggedFrame} for every position of ``item``, S = ctx.image_size.

    The reader renders each (frame, base view) once; it is resized as the build's preprocess mode
    resizes stills (a no-op for video frames, which the decoder resized); derived views are made
    from the resized frame: transforms seeded by the item's seed (a float one, ``gray``, as a
    TaggedFrame the tokenizer finishes), annotators in one batch per kind. Raises DecodeError when
    the item cannot be decoded.
    """
    positions = sorted(set(positions))
    wanted = sorted({(p.frame, p.base_view) for p in positions})
    renders = reader.pictures(item, wanted, ctx)
    resize = STILL_RESIZE[ctx.preprocess]
    base = {fv: resize(r.pixels, ctx.image_size) for fv, r in renders.items()}
    out: dict[tuple[int, str], Frame] = {}
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
