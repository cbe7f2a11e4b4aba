"""decord behind a process boundary, with a timeout and a memory limit.

decord is known to hang and leak on bad files, and its native threads can abort the
interpreter when they are torn down at exit. So a Beam worker never runs it in its own
process: each DoFn instance keeps one spawned child that opens videos and returns resized
clips. A call that outlives its timeout, or a child that dies (crash, memory limit), turns
into a ``DecodeError`` for that video; the child is replaced and the job goes on.

This module is imported by the child, so it must not import torch or Beam.
"""

from __future__ import annotations

import concurrent.futures as cf
import ctypes
import io
import multiprocessing
import os
import resource
import signal
import sys
import threading
import time
from dataclasses import dataclass

import numpy as np

from uvd.media.images import DecodeError, resize_video_frame
from uvd.media.video import open_video, read_frames

# --- child side -------------------------------------------------------------------------

_OPEN: dict = {}  # the child's one open video: {"name": ..., "reader": ...}


def _init_child(memory_mb: int, parent: int) -> None:
    """Cap the child's address space, and make it die with its parent: a build killed with
    ``kill -9`` must not leave decoders (and the memory they hold) behind."""

    if memory_mb > 0:
        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    linux = sys.platform.startswith("linux")
    if linux:
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(1)
    if linux:
        return

    def watch() -> None:  # elsewhere (no prctl), notice the parent's death by being re-parented
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _child_open(name: str, source: str | bytes) -> int:
    _OPEN.clear()  # drop the previous reader before opening the next
    reader = open_video(io.BytesIO(source) if isinstance(source, bytes) else source, name=name)
    _OPEN.update(name=name, reader=reader)
    return len(reader)


def _child_fps(name: str) -> float:
    if _OPEN.get("name") != name:
        raise DecodeError("unreadable_video", f"{name}: not open in the decoder process")
    try:
        return float(_OPEN["reader"].get_avg_fps())
    except Exception as e:
        raise DecodeError("unreadable_video", f"{name}: no frame rate ({type(e).__name__}: {e})") from e


def _child_read(name: str, indices: list[int], size: int) -> np.ndarray:
    if _OPEN.get("name") != name:
        raise DecodeError("unreadable_video", f"{name}: not open in the decoder process")
    frames = read_frames(_OPEN["reader"], indices, name=name)
    return np.stack([resize_video_frame(f, size) for f in frames])  # (N, size, size, 3) uint8, as LVM resizes


# --- parent side ------------------------------------------------------------------------


@dataclass(frozen=True)
class VideoGuard:
    timeout_s: float = 300.0  # per call (open, or one clip)
    memory_mb: int = 4096  # address-space limit of the decoder process


class GuardedVideoDecoder:
    """Parent-side handle on the decoder child; one per DoFn instance (not thread-safe)."""
    def __init__(self, guard: VideoGuard):
        self.guard = guard
        self._pool: cf.ProcessPoolExecutor | None = None

    def _call(self, name: str, fn, *args):
        if self._pool is None:
            self._pool = cf.ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                                initializer=_init_child, initargs=(self.guard.memory_mb, os.getpid()))
        future = self._pool.submit(fn, *args)
        try:
            return future.result(timeout=self.guard.timeout_s)
        except DecodeError:
            raise
        except cf.TimeoutError:
            self.close(kill=True)
            raise DecodeError("video_decode_timeout",
                              f"{name}: decoding took longer than {self.guard.timeout_s:g}s; gave up") from None
        except cf.process.BrokenProcessPool:
            self.close(kill=True)
            raise DecodeError("video_decoder_crashed",
                              f"{name}: the decoder process died (crash or over {self.guard.memory_mb} MB)") from None
        except MemoryError:
            self.close(kill=True)
            raise DecodeError("video_decoder_crashed",
                              f"{name}: out of memory (limit {self.guard.memory_mb} MB)") from None

    def open(self, name: str, source: str | bytes) -> int:
        """Open a video (a local path, or its bytes) in the child; returns its frame count."""
        return self._call(name, _child_open, name, source)

    def fps(self, name: str) -> float:
        """The open video's average frame rate (frames per second), to map timestamps to frames."""
        return self._call(name, _child_fps, name)

    def read_clip(self, name: str, indices: list[int], size: int) -> np.ndarray:
        """Frames ``indices`` of the open video, each resized to size x size as LVM's
        read_frames_from_video does (``cv2.resize``, bilinear)."""
        return self._call(name, _child_read, name, indices, size)

    def close(self, kill: bool = False) -> None:
        if self._pool is None:
            return
        if kill:
            for proc in list(getattr(self._pool, "_processes", {}).values()):
                proc.kill()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._pool = None
