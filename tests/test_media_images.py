import io

import cv2
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
    for resize in (images.resize_still, images.resize_video_frame, images.resize_still_fast):
        out = resize(frame, 256)
        assert out.shape == (256, 256, 3) and out.dtype == np.uint8
        assert out[:, :120].max() == 0 and out[:, 136:].min() == 255, resize.__name__


def jpeg_with_orientation(rgb: np.ndarray, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=95, exif=exif)
    return buf.getvalue()


def test_decode_keeps_the_stored_orientation_as_lvm_does():
    """LVM's Image.open().convert('RGB') never applies the EXIF rotation (OpenCV's imdecode would)."""
    rgb = np.asarray(Image.open(photo("rocket.jpg")).convert("RGB"))[:200, :300]
    data = jpeg_with_orientation(rgb, 6)  # "rotate 90 degrees to display"
    img = images.decode_image(data, max_pixels=10**8, name="rotated.jpg")
    assert img.shape == (200, 300, 3)
    np.testing.assert_array_equal(img, np.asarray(Image.open(io.BytesIO(data)).convert("RGB")))


def test_decode_16_bit_saturates_as_pillow_convert_does():
    values = np.array([[0, 1, 100, 255, 256, 300, 1000, 65535]], np.uint16)
    buf = io.BytesIO()
    Image.fromarray(values).save(buf, format="PNG")
    img = images.decode_image(buf.getvalue(), max_pixels=10**8, name="deep.png")
    assert img[0, :, 0].tolist() == [0, 1, 100, 255, 255, 255, 255, 255]


def test_resizes_are_the_releases_calls():
    """Stills: Pillow's default filter for RGB (bicubic); video frames: cv2.resize's default (bilinear)."""
    rgb = np.asarray(Image.open(photo("astronaut.png")).convert("RGB"))[:300, :411]
    np.testing.assert_array_equal(images.resize_still(rgb, 256), np.array(Image.fromarray(rgb).resize((256, 256))))
    np.testing.assert_array_equal(images.resize_video_frame(rgb, 256), cv2.resize(rgb, (256, 256)))
    assert not np.array_equal(images.resize_still(rgb, 256), images.resize_video_frame(rgb, 256))
    small = rgb[:256, :256]
    np.testing.assert_array_equal(images.resize_still(small, 256), small)  # 256x256 already: unchanged


def test_fast_mode_decodes_large_jpegs_at_a_reduced_scale():
    rgb = cv2.resize(np.asarray(Image.open(photo("astronaut.png")).convert("RGB")), (1100, 1030))
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=95)
    full = images.decode_image(buf.getvalue(), max_pixels=10**8, name="big.jpg")
    draft = images.decode_image(buf.getvalue(), max_pixels=10**8, name="big.jpg", draft_size=256)
    assert full.shape == (1030, 1100, 3) and draft.shape == (515, 550, 3)  # 1/2: both sides stay >= 512
    png = images.decode_image(png_bytes(1100, 1030), max_pixels=10**8, name="big.png", draft_size=256)
    assert png.shape == (1030, 1100, 3)  # only JPEGs have a reduced-scale decode
    with pytest.raises(ValueError, match="not one of"):
        images.check_preprocess("exact")
