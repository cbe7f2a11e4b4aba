"""Plain folders: every image, or every video, under a root (recursively, hidden files skipped).

``ImageFileReader`` and ``VideoFileReader`` are also the bases of the dataset readers whose
items are single files listed some other way (split lists, CSVs, JSON): those override
``items`` only and inherit probing and rendering.
"""

from __future__ import annotations

from collections.abc import Iterator

from uvd.format import storage
from uvd.format.rejects import Reject
from uvd.media.images import IMAGE_EXTENSIONS, DecodeError
from uvd.media.video import VIDEO_EXTENSIONS
from uvd.pipeline.readers.base import DecodeContext, Reader, read_image
from uvd.pipeline.records.items import Item, Picture


def media_files(root: str, extensions: tuple[str, ...]) -> list[tuple[str, str]]:
    """(relative key, path) of every file under root with one of ``extensions``, hidden ones skipped."""
    out = []
    for path in storage.files_under(root):
        key = storage.relative(path, root)
        if key.lower().endswith(extensions) and not storage.is_hidden(key):
            out.append((key, path))
    return out


def open_video_file(path: str, ctx: DecodeContext) -> int:
    """Open a video in the guarded decoder (decord seeks in a local file itself; a remote one is
    read into memory); returns its frame count."""
    try:
        return ctx.video.open(path, path if storage.is_local(path) else storage.read_bytes(path))
    except OSError as e:
        raise DecodeError("unreadable_file", f"{path}: {e}") from e


class ImageFileReader(Reader):
    """Items are single image files; the one view is ``image``."""

    name = "image_files"
    EXPECTS = "image files (.jpg, .png, .webp, ...) in it or below it"
    stills = True
    views = ("image",)

    def items(self, root: str, unit: str) -> Iterator[Item | Reject]:
        for key, path in media_files(unit, IMAGE_EXTENSIONS):
            yield Item(source=self.source, key=key, paths=(path,))

    def pictures(self, item, requests, ctx: DecodeContext) -> dict[tuple[int, str], Picture]:
        self.check_views(requests, item)
        image = read_image(item.paths[0], ctx)
        return {(frame, view): Picture(image) for frame, view in requests}


class VideoFileReader(Reader):
    """Items are single video files, decoded by seeking with decord in a guarded child process;
    the one view is ``frame``. Probing opens the video for its frame count."""

    name = "video_files"
    EXPECTS = "video files (.mp4, .avi, .mkv, ...) in it or below it"
    views = ("frame",)

    def items(self, root: str, unit: str) -> Iterator[Item | Reject]:
        for key, path in media_files(unit, VIDEO_EXTENSIONS):
            yield Item(source=self.source, key=key, paths=(path,))

    def probe(self, item: Item, ctx: DecodeContext) -> Item:
        return item.with_(num_frames=open_video_file(item.paths[0], ctx))

    def pictures(self, item, requests, ctx: DecodeContext) -> dict[tuple[int, str], Picture]:
        self.check_views(requests, item)
        open_video_file(item.paths[0], ctx)
        frames = sorted({f for f, _ in requests})
        # The decoder child resizes while it decodes: full-size frames never cross the process boundary.
        clip = ctx.video.read_clip(item.paths[0], frames, ctx.image_size)
        by_frame = dict(zip(frames, clip))
        return {(f, v): Picture(by_frame[f]) for f, v in requests}
