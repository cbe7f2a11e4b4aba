"""decord runs in a guarded child: hangs, crashes and memory blow-ups become rejects."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from sample_media import video

from uvd.media.guarded_video import GuardedVideoDecoder, VideoGuard
from uvd.media.images import DecodeError


@pytest.fixture
def decoder():
    d = GuardedVideoDecoder(VideoGuard(timeout_s=20, memory_mb=2048))
    yield d
    d.close()


def test_reads_resized_clip_of_real_video(decoder):
    path = str(video("bikes.mp4"))
    assert decoder.open(path, path) == 250
    frames = decoder.read_clip(path, [0, 8, 16], 256)
    assert frames.shape == (3, 256, 256, 3) and frames.dtype == np.uint8 and frames.std() > 0


def test_opens_from_bytes(decoder):
    path = video("carphone_pristine.mp4")
    assert decoder.open("remote.mp4", path.read_bytes()) == 120


def test_bad_file_error_crosses_process_boundary(decoder, tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"nope" * 100)
    with pytest.raises(DecodeError) as err:
        decoder.open(str(bad), str(bad))
    assert err.value.reason == "unreadable_video" and str(bad) in err.value.message


def test_hang_becomes_timeout_and_decoder_recovers(tmp_path):
    d = GuardedVideoDecoder(VideoGuard(timeout_s=1.0, memory_mb=2048))
    try:
        with pytest.raises(DecodeError) as err:
            d._call("slow.mp4", time.sleep, 600)  # a hang: only the guard can end it
        assert err.value.reason == "video_decode_timeout"
        d.guard = VideoGuard(timeout_s=120, memory_mb=2048)  # room for a fresh child to start on a busy machine
        path = str(video("bikes.mp4"))
        assert d.open(path, path) == 250  # a fresh child took over
    finally:
        d.close()


def test_dead_child_becomes_crash_reject(decoder):
    with pytest.raises(DecodeError) as err:
        decoder._call("crash.mp4", os._exit, 3)
    assert err.value.reason == "video_decoder_crashed" and "crash.mp4" in err.value.message


def test_memory_limit_is_enforced(decoder):
    with pytest.raises(DecodeError) as err:
        decoder._call("huge.mp4", np.ones, 4 * 1024**3)  # 4 GiB of float64 > 2 GiB limit
    assert err.value.reason == "video_decoder_crashed"


def test_decoder_dies_with_a_killed_parent(tmp_path):
    """kill -9 of a build must not leave decoder processes (and their memory) behind."""

    script = tmp_path / "parent.py"
    script.write_text(
        "import time\n"
        "from uvd.media.guarded_video import GuardedVideoDecoder, VideoGuard\n"
        "if __name__ == '__main__':  # the decoder child is spawned: it imports this file again\n"
        "    d = GuardedVideoDecoder(VideoGuard(timeout_s=60, memory_mb=2048))\n"
        f"    d.open('v', {str(video('bikes.mp4'))!r})\n"
        "    print(list(d._pool._processes)[0], flush=True)\n"
        "    time.sleep(600)\n")
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    os.kill(child, 0)  # alive while its parent is
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return
        with open(f"/proc/{child}/stat") as f:
            if f.read().split()[2] == "Z":  # a zombie: dead, waiting to be reaped by init
                return
        time.sleep(0.1)
    os.kill(child, signal.SIGKILL)
    raise AssertionError("the decoder child outlived its killed parent")
