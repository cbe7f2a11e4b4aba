"""What one worker process of a build may use: threads for torch and OpenCV, fitted to the cores it
has and the number of workers sharing them; and what may cross the decode -> tokenize boundary.

Each library alone takes every core it sees, so N worker processes on C cores would run N x C
threads. Workers get ``cores // workers`` threads each (at least one) unless told otherwise.
Video decoding runs in each worker's guarded decoder child with one decord thread
(media/video.py): clips are decoded by seeking, frame after frame, and parallelism comes from
the workers. Thread counts never change the bytes of a build.
"""

from __future__ import annotations

import os

import apache_beam as beam
import cv2
import torch

# Bytes per image that may cross the decode -> tokenize boundary (on Dataflow a shuffle between the
# CPU and the GPU pools): one 256x256 RGB uint8 frame (196,608 bytes) plus its key and framing.
# Lossless compression would cost more CPU than decoding the image did (docs/benchmarks.md), and
# float frames would be 4x this.
FRAME_BOUNDARY_BUDGET_BYTES = 200_000
FRAMES_STEP = "DecodedFrames/DrawFrames"  # the step whose main output crosses that boundary


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity: taskset and cgroup cpusets count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def threads_per_worker(workers: int, threads: int | None = None, cores: int | None = None) -> int:
    """``threads`` if given, else an equal share of the cores, at least one."""
    if threads is not None:
        if threads < 1:
            raise ValueError(f"threads per worker must be >= 1, got {threads}")
        return threads
    return max(1, (cores or available_cores()) // max(1, workers))


def use_threads(threads: int | None) -> None:
    """Set this process's torch and OpenCV thread pools (None: leave the libraries' defaults)."""
    if threads is None:
        return
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    cv2.setNumThreads(threads)


def boundary_coder(p: beam.Pipeline, step: str = FRAMES_STEP) -> beam.coders.Coder:
    """The coder of ``step``'s main output in a constructed pipeline: the bytes each frame costs when
    the runner cannot fuse decoding with tokenizing (Dataflow's GPU pool is another environment)."""
    proto, context = p.to_runner_api(return_context=True)
    transform = next(t for t in proto.components.transforms.values() if t.unique_name == step)
    main = transform.outputs["None"]  # Beam's tag of a ParDo's main output
    return context.coders.get_by_id(proto.components.pcollections[main].coder_id)
