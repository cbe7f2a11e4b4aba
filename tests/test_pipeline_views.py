"""From a reader's pictures to the frames the tokenizer sees: the resize of each preprocess mode, and
the derived views (the float gray travels tagged, the masked view is LVM's inpainting mask)."""

from __future__ import annotations

import shutil

import numpy as np
from PIL import Image
from sample_media import photo

from uvd.pipeline.readers import DecodeContext
from uvd.pipeline.readers.files import ImageFileReader
from uvd.pipeline.records.items import Item, Position
from uvd.pipeline.records.sentences import item_seed
from uvd.pipeline.views.derived import inpainting_keep_mask
from uvd.pipeline.views.frames import item_frames
from uvd.tokenizer.frames import TaggedFrame


def frames_of(path, views, preprocess="lvm"):
    item = Item(source="src", key=path.name, paths=(str(path),))
    ctx = DecodeContext(max_pixels=10**9, preprocess=preprocess)
    return item_frames(ImageFileReader("src"), item, [Position(item.key, 0, v) for v in views], ctx=ctx,
                       global_seed=0, annotators={})


def test_lvm_mode_frames_are_the_releases_pixels_and_fast_mode_differs(tmp_path):
    path = shutil.copyfile(photo("coffee.png"), tmp_path / "coffee.png")
    lvm = frames_of(path, ["image"])[(0, "image")]
    release = np.array(Image.open(path).convert("RGB").resize((256, 256)))  # read_image_to_tensor before /255
    np.testing.assert_array_equal(lvm, release)
    fast = frames_of(path, ["image"], "fast")[(0, "image")]
    assert fast.shape == lvm.shape and 0 < np.abs(fast.astype(int) - lvm.astype(int)).mean() < 3


def test_gray_travels_as_its_uint8_source_and_masked_is_zeroed_in_place(tmp_path):
    path = shutil.copyfile(photo("chelsea.png"), tmp_path / "chelsea.png")
    out = frames_of(path, ["image", "image|gray", "image|masked"])
    image, gray, masked = out[(0, "image")], out[(0, "image|gray")], out[(0, "image|masked")]
    assert isinstance(gray, TaggedFrame) and gray.transform == "gray" and np.array_equal(gray.pixels, image)
    keep = inpainting_keep_mask(item_seed(0, "src", "chelsea.png"))  # the item's seed: the same mask every epoch
    assert masked.dtype == np.uint8 and np.array_equal(masked, image * keep[..., None])
    assert (masked[~keep] == 0).all() and 0 < keep.mean() < 1
