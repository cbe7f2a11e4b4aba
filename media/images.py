"""Still images: untrusted bytes in, RGB uint8 out, behind a size guard; resizing; PNG grids out.

The pixel path is LVM's own (ytongbai/LVM, evaluation/vqlm_demo/utils.py), so a uvd build tokenizes
the pixels LVM's release tokenized:

- a still is ``Image.open(path).convert('RGB')`` (no EXIF rotation, alpha dropped, 16-bit
  saturated at 255) resized by ``.resize((256, 256))``, Pillow's default bicubic
  (``read_image_to_tensor``);
- a video frame is resized by ``cv2.resize(frame, (256, 256))``, OpenCV's default bilinear
  (``read_frames_from_video``).

``PREPROCESS_MODES`` names the ways a build may turn stills into frames: ``lvm`` (the release's
path above, the default) and ``fast`` (Pillow decodes JPEGs at a reduced DCT scale when they are
at least twice the target, and OpenCV resizes; not the release's pixels: docs/benchmarks.md
measures its speed, 2.8x, and its code agreement with ``lvm``). Video frames are resized the
release's way in both.

Every failure raises :class:`DecodeError` with a reason class, so a job can count
it, record it in the rejects file and go on. Nothing here ever substitutes data.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

cv2.setNumThreads(1)  # parallelism comes from Beam workers, not from opencv threads

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif")
PREPROCESS_MODES = ("lvm", "fast")


class DecodeError(Exception):
    """An input that cannot become frames; ``reason`` is a stable class name."""

    def __init__(self, reason: str, message: str):
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message

    def __reduce__(self):  # crosses process boundaries (see video_decoder.py) intact
        return (DecodeError, (self.reason, self.message))


def _check_size(im: Image.Image, *, max_pixels: int, name: str) -> tuple[int, int]:
    width, height = im.size  # from the header: nothing is decoded yet
    if width * height > max_pixels:
        raise DecodeError("image_too_large",
                          f"{name}: {width}x{height} = {width * height} pixels exceeds the limit {max_pixels}")
    return width, height


@contextlib.contextmanager
def _opened(data: bytes, *, name: str):
    """The image's header parsed (Pillow's own bomb guard included), or a DecodeError naming ``name``."""
    try:
        im = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as e:  # PIL's own guard (twice its limit) fires while reading the header
        raise DecodeError("image_too_large", f"{name}: {e}") from e
    except Exception as e:  # PIL raises many types for bad headers
        raise DecodeError("unreadable_image", f"{name}: not a readable image ({type(e).__name__}: {e})") from e
    with im:
        yield im


def check_image_size(data: bytes, *, max_pixels: int, name: str) -> tuple[int, int]:
    """Read only the header and refuse images above ``max_pixels`` (decompression bombs)."""
    with _opened(data, name=name) as im:
        return _check_size(im, max_pixels=max_pixels, name=name)


def decode_image(data: bytes, *, max_pixels: int, name: str, draft_size: int = 0) -> np.ndarray:
    """Image file bytes -> HxWx3 RGB uint8, as LVM's ``Image.open(path).convert('RGB')``: the stored
    pixels (no EXIF rotation), grey and palette expanded, alpha dropped, 16-bit saturated at 255.

    ``draft_size`` > 0 (the ``fast`` mode) lets a JPEG decode at 1/2, 1/4 or 1/8 scale as long as
    both sides stay >= twice it (Pillow's ``draft``: the IDCT skips the detail a downscale drops).
    The header is parsed once, and the size guard runs before any pixel is decoded. An image that
    is RGB already is not converted: Pillow's ``convert`` to the same mode is a copy (same pixels),
    and that copy cost as much as a third of a 640x480 JPEG's decode and resize."""
    if not data:
        raise DecodeError("unreadable_image", f"{name}: empty file")
    with _opened(data, name=name) as im:
        _check_size(im, max_pixels=max_pixels, name=name)
        try:
            if draft_size and im.format == "JPEG":
                im.draft(None, (2 * draft_size, 2 * draft_size))
            im.load()
            return np.asarray(im if im.mode == "RGB" else im.convert("RGB"))
        except Exception as e:  # Pillow raises many types for broken or truncated data
            raise DecodeError("unreadable_image", f"{name}: decoding failed ({type(e).__name__}: {e})") from e


def _check_frame(frame: np.ndarray) -> None:
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"expected HxWx3 uint8, got {frame.shape} {frame.dtype}")


def resize_still(frame: np.ndarray, size: int) -> np.ndarray:
    """LVM's still resize: the whole image to size x size (aspect not kept) with Pillow's default
    filter for RGB, antialiased bicubic (``pil_im.resize((256, 256))``). Label maps, masks and
    drawn annotations too: the release resized every modality this way."""
    _check_frame(frame)
    if frame.shape[:2] == (size, size):
        return np.ascontiguousarray(frame)
    return np.asarray(Image.fromarray(frame).resize((size, size), Image.Resampling.BICUBIC))


def resize_video_frame(frame: np.ndarray, size: int) -> np.ndarray:
    """LVM's video-frame resize: ``cv2.resize(frame, (size, size))``, bilinear without antialiasing."""
    _check_frame(frame)
    return cv2.resize(frame, (size, size))


def resize_still_fast(frame: np.ndarray, size: int) -> np.ndarray:
    """The ``fast`` mode's still resize: OpenCV's area average down, bicubic up (not LVM's pixels)."""
    _check_frame(frame)
    h, w = frame.shape[:2]
    if (h, w) == (size, size):
        return np.ascontiguousarray(frame)
    return cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA if h * w > size * size else cv2.INTER_CUBIC)


STILL_RESIZE = {"lvm": resize_still, "fast": resize_still_fast}


def check_preprocess(mode: str) -> str:
    if mode not in PREPROCESS_MODES:
        raise ValueError(f"preprocess {mode!r} is not one of {PREPROCESS_MODES}")
    return mode


def image_grid(images: np.ndarray, *, cols: int = 4, pad: int = 4) -> np.ndarray:
    """[N,H,W,3] uint8 -> one grid image, row-major, with a white gutter."""
    n, h, w, _ = images.shape
    cols = max(1, min(cols, n))
    rows = -(-n // cols)
    grid = np.full((rows * h + (rows + 1) * pad, cols * w + (cols + 1) * pad, 3), 255, np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        grid[y:y + h, x:x + w] = img
    return grid


def write_png(path: str | Path, rgb: np.ndarray) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {path}")
