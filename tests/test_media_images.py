import io

import numpy as np
import pytest
from PIL import Image
from sample_media import photo

from uvd.media import images


def png_bytes(w: int, h: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h)).save(buf, format="PNG")
    return buf.getvalue()


def test_decode_real_photo_is_rgb_uint8():
    data = photo("chelsea.png").read_bytes()
    img = images.decode_image(data, max_pixels=10**8, name="chelsea.png")
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    ref = np.asarray(Image.open(photo("chelsea.png")).convert("RGB"))
    np.testing.assert_array_equal(img, ref)  # RGB order, not opencv's BGR


def test_decode_grey_photo_becomes_three_channels():
    img = images.decode_image(photo("camera.png").read_bytes(), max_pixels=10**8, name="camera.png")
    assert img.shape[2] == 3 and np.array_equal(img[..., 0], img[..., 1])


@pytest.mark.parametrize("data,reason", [
    (b"", "unreadable_image"),
    (b"\x89PNG\r\n\x1a\n" + b"garbage" * 10, "unreadable_image"),
    (np.random.default_rng(0).bytes(4096), "unreadable_image"),
])
def test_decode_bad_bytes_names_file_and_reason(data, reason):
    with pytest.raises(images.DecodeError) as err:
        images.decode_image(data, max_pixels=10**8, name="dir/bad.png")
    assert err.value.reason == reason and "dir/bad.png" in str(err.value)


def test_truncated_png_is_rejected():
    data = photo("coffee.png").read_bytes()
    with pytest.raises(images.DecodeError) as err:
        images.decode_image(data[: len(data) // 3], max_pixels=10**8, name="cut.png")
    assert err.value.reason == "unreadable_image"


def test_pixel_limit_refuses_before_decoding():
    with pytest.raises(images.DecodeError) as err:
        images.decode_image(png_bytes(400, 300), max_pixels=400 * 300 - 1, name="bomb.png")
    assert err.value.reason == "image_too_large" and "400x300" in err.value.message


def test_resize_is_plain_whole_image_resize():
    frame = np.zeros((100, 300, 3), np.uint8)
    frame[:, 150:] = 255  # right half white stays the right half after a plain resize
    out = images.resize_frame(frame, 256)
    assert out.shape == (256, 256, 3)
    assert out[:, :120].max() == 0 and out[:, 136:].min() == 255
