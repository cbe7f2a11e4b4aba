"""Videos: open with decord and seek-decode only the frames a sentence needs (RGB uint8).

Callers that handle untrusted files go through media/guarded_video.py, which runs these in a
child process with a timeout and a memory limit.
"""

from __future__ import annotations

import numpy as np

from uvd.media.images import DecodeError

VIDEO_EXTENSIONS = (".mp4", ".avi", ".webm", ".mkv", ".mov", ".m4v")


def open_video(source, *, name: str):
    """A decord VideoReader over a local path or a file-like object."""
    import decord  # noqa: PLC0415 - importing decord starts native threads; only the decoding child needs them

    try:
        reader = decord.VideoReader(source, ctx=decord.cpu(0), num_threads=1)
    except Exception as e:
        raise DecodeError("unreadable_video", f"{name}: cannot open video ({type(e).__name__}: {e})") from e
    if len(reader) == 0:
        raise DecodeError("unreadable_video", f"{name}: video has no frames")
    return reader


def read_frames(reader, indices: list[int], *, name: str) -> np.ndarray:
    """Seek to ``indices`` and decode only those frames -> [N,H,W,3] uint8 RGB."""
    try:
        return reader.get_batch(indices).asnumpy()
    except Exception as e:
        raise DecodeError("unreadable_video",
                          f"{name}: decoding frames {indices[0]}..{indices[-1]} failed ({type(e).__name__}: {e})") from e
