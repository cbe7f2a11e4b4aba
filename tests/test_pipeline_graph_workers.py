"""Local multi-worker builds: SDK workers forked warm from a forkserver, in processes of their own,
each with its share of the cores."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import apache_beam as beam
import cv2
import numpy as np
import pytest
import torch
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions
from apache_beam.testing.util import assert_that, equal_to

from uvd.pipeline.graph import job, resources
from uvd.pipeline.graph.workers import warm_worker_pool


def test_threads_per_worker_share_the_cores():
    assert resources.threads_per_worker(1, cores=2) == 2
    assert resources.threads_per_worker(2, cores=2) == 1
    assert resources.threads_per_worker(3, cores=2) == 1  # never zero
    assert resources.threads_per_worker(2, cores=16) == 8
    assert resources.threads_per_worker(2, threads=3, cores=2) == 3  # asked for: oversubscribe knowingly
    assert resources.available_cores() == len(os.sched_getaffinity(0))  # taskset counts
    with pytest.raises(ValueError, match=">= 1"):
        resources.threads_per_worker(1, threads=0)


class WhereFn(beam.DoFn):
    def process(self, element):
        yield os.getpid(), torch.get_num_threads()


def test_workers_are_forked_processes_with_their_share_of_threads():
    options = PipelineOptions([])
    options.view_as(DirectOptions).direct_num_workers = 2
    with warm_worker_pool(options, threads=1) as environment:
        for _ in range(2):  # a build is several pipelines: every one gets workers from the same warm pool
            with beam.Pipeline(runner=job.make_runner(options, environment), options=options) as p:
                where = (p
                         | beam.Create(range(40))
                         | beam.Reshuffle()
                         | beam.ParDo(WhereFn())
                         | "Seen" >> beam.Distinct())
                pids = where | "Pids" >> beam.Map(lambda pid_threads: pid_threads[0]) | "EachPid" >> beam.Distinct()
                threads = (where | "Threads" >> beam.Map(lambda pid_threads: pid_threads[1])
                           | "EachCount" >> beam.Distinct())
                assert_that(pids | beam.combiners.Count.Globally(), equal_to([2]), label="TwoWorkers")
                assert_that(pids | beam.Filter(lambda pid, me: pid == me, me=os.getpid()), equal_to([]),
                            label="NotTheLauncher")
                assert_that(threads, equal_to([1]), label="OneThreadEach")


LAUNCHER = """
import os, sys, time
import apache_beam as beam
from multiprocessing import forkserver
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions
from uvd.pipeline.graph import job
from uvd.pipeline.graph.workers import fork_forkserver_from_launcher, warm_worker_pool

marks, start = sys.argv[1], sys.argv[2]
if start == "fork":  # as ``uvd build --workers N`` does
    assert fork_forkserver_from_launcher()

class WaitFn(beam.DoFn):
    def process(self, element):
        open(os.path.join(marks, f"worker-{os.getpid()}"), "w").close()
        time.sleep(600)  # a long bundle: the launcher is killed before it ends
        yield element

options = PipelineOptions([])
options.view_as(DirectOptions).direct_num_workers = 2
with warm_worker_pool(options, threads=1) as environment:
    open(os.path.join(marks, f"forkserver-{forkserver._forkserver._forkserver_pid}"), "w").close()
    with beam.Pipeline(runner=job.make_runner(options, environment), options=options) as p:
        _ = p | beam.Create(range(8)) | beam.Reshuffle() | beam.ParDo(WaitFn())
"""


def running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie, dead but not yet reaped, is not)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return not any(line.startswith("State:") and "Z" in line.split()[1] for line in f)
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads process states from /proc (Linux)")
@pytest.mark.parametrize("start", ["spawn", "fork"])
def test_killing_the_launcher_takes_its_forkserver_and_workers_with_it(tmp_path, start):
    """kill -9 of a multi-worker build's launcher leaves no process behind, not even workers that
    cannot notice it (stopped here, as a worker stuck in a hung read would be): the forkserver exits
    with its launcher, and every SDK worker with the forkserver (PR_SET_PDEATHSIG); whether the
    forkserver is a fresh interpreter (job.run from Python) or a fork of the launcher (the CLI)."""
    launcher = subprocess.Popen([sys.executable, "-c", LAUNCHER, str(tmp_path), start])
    try:
        deadline = time.monotonic() + 300
        while len(list(tmp_path.glob("worker-*"))) < 2 or not list(tmp_path.glob("forkserver-*")):
            assert launcher.poll() is None and time.monotonic() < deadline, "the workers never started"
            time.sleep(0.1)
        workers = [int(p.name.split("-")[1]) for p in tmp_path.glob("worker-*")]
        for pid in workers:
            os.kill(pid, signal.SIGSTOP)
    finally:
        launcher.kill()
        launcher.wait()
    pids = [int(p.name.split("-")[1]) for p in tmp_path.glob("*-*")]
    try:
        deadline = time.monotonic() + 60
        while any(map(running, pids)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [pid for pid in pids if running(pid)], "processes outlived their launcher"
    finally:
        for pid in filter(running, pids):
            os.kill(pid, signal.SIGKILL)


FORKED = """
import threading
from multiprocessing import forkserver
from uvd.pipeline.graph.workers import fork_forkserver_from_launcher
busy = threading.Event()
threading.Thread(target=busy.wait, daemon=True).start()  # it might hold a lock the fork would copy held
print(fork_forkserver_from_launcher(), forkserver._forkserver._forkserver_pid, flush=True)
busy.set()
"""


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads process states from /proc (Linux)")
def test_the_cli_forks_its_forkserver_and_refuses_to_with_other_threads(tmp_path):
    """``uvd build --workers 2`` forks the forkserver from its launcher (a child of it, not a new
    interpreter that must import Beam and torch again), and the fork is refused while another
    Python thread runs."""
    refused = subprocess.run([sys.executable, "-c", FORKED], capture_output=True, text=True, check=True).stdout.split()
    assert refused == ["False", "None"]
    (tmp_path / "in").mkdir()
    for i in range(4):
        cv2.imwrite(str(tmp_path / "in" / f"{i}.png"), np.full((40, 60, 3), 60 * i, np.uint8))
    build = subprocess.run([sys.executable, "-m", "uvd.cli", "-v", "build", "--source", f"images:{tmp_path / 'in'}",
                            "--tokenizer", "random:tiny", "--no-progress", "--workers", "2",
                            "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-3000:]
    assert "forked from the launcher" in build.stderr and "images          4" in build.stdout
