"""Still images: untrusted bytes in, RGB uint8 out, behind a size guard; resizing; PNG grids out.

Every failure raises :class:`DecodeError` with a reason class, so a job can count
it, record it in the rejects file and go on. Nothing here ever substitutes data.
"""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

cv2.setNumThreads(1)  # parallelism comes from Beam workers, not from opencv threads

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif")


class DecodeError(Exception):
    """An input that cannot become frames; ``reason`` is a stable class name."""

    def __init__(self, reason: str, message: str):
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message

    def __reduce__(self):  # crosses process boundaries (see video_decoder.py) intact
        return (DecodeError, (self.reason, self.message))


def check_image_size(data: bytes, *, max_pixels: int, name: str) -> tuple[int, int]:
    """Read only the header and refuse images above ``max_pixels`` (decompression bombs)."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            width, height = im.size
    except Image.DecompressionBombError as e:  # PIL's own guard (twice its limit) fires while reading the header
        raise DecodeError("image_too_large", f"{name}: {e}") from e
    except Exception as e:  # PIL raises many types for bad headers
        raise DecodeError("unreadable_image", f"{name}: not a readable image ({type(e).__name__}: {e})") from e
    if width * height > max_pixels:
        raise DecodeError("image_too_large",
                          f"{name}: {width}x{height} = {width * height} pixels exceeds the limit {max_pixels}")
    return width, height


def decode_image(data: bytes, *, max_pixels: int, name: str) -> np.ndarray:
    """Image file bytes -> HxWx3 RGB uint8. Grey, alpha and 16-bit inputs become 8-bit RGB."""
    if not data:
        raise DecodeError("unreadable_image", f"{name}: empty file")
    check_image_size(data, max_pixels=max_pixels, name=name)
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if arr is None:
        # opencv lacks some formats Pillow reads (e.g. GIF); fall back before giving up.
        try:
            with Image.open(io.BytesIO(data)) as im:
                arr = np.asarray(im.convert("RGB"))
        except Exception as e:
            raise DecodeError("unreadable_image", f"{name}: decoding failed ({type(e).__name__}: {e})") from e
        return np.ascontiguousarray(arr)
    return cv2.cvtColor(arr, cv2.COLOR_BGR2RGB)


def resize_frame(frame: np.ndarray, size: int, *, nearest: bool = False) -> np.ndarray:
    """LVM's default: a plain resize of the whole frame to size x size (aspect not kept).
    ``nearest`` for label maps (palette colours, masks), whose colours must not blend."""
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"expected HxWx3 uint8, got {frame.shape} {frame.dtype}")
    h, w = frame.shape[:2]
    if (h, w) == (size, size):
        return np.ascontiguousarray(frame)
    if nearest:
        interp = cv2.INTER_NEAREST
    else:
        interp = cv2.INTER_AREA if h * w > size * size else cv2.INTER_CUBIC
    return cv2.resize(frame, (size, size), interpolation=interp)


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
