import numpy as np
import pytest
from sample_media import video as sample_video
from sample_media import write_video

from uvd.media import video
from uvd.media.images import DecodeError


def test_read_frames_seeks_exact_indices(tmp_path):
    path = sample_video("bikes.mp4")
    reader = video.open_video(str(path), name=str(path))
    frames = video.read_frames(reader, [0, 8, 16], name=str(path))
    assert frames.shape == (3, 272, 640, 3) and frames.dtype == np.uint8
    again = video.read_frames(video.open_video(str(path), name="x"), [16], name="x")
    np.testing.assert_array_equal(frames[2], again[0])


def test_unreadable_video_names_file(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video" * 20)
    with pytest.raises(DecodeError) as err:
        video.open_video(str(bad), name=str(bad))
    assert err.value.reason == "unreadable_video" and str(bad) in err.value.message


def test_short_written_video_length(tmp_path):
    path = write_video(tmp_path / "s.mp4", 10)
    assert len(video.open_video(str(path), name="s")) == 10
