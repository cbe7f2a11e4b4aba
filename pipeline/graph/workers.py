"""Warm worker processes for local multi-worker builds.

Beam's ``multi_processing`` mode starts each SDK worker as a fresh ``python -m ...sdk_worker_main``,
once per pipeline, and a build is several pipelines (plan, each wave, records): every phase paid
for importing Beam, torch and uvd again in every worker, seconds each. Here the FnApiRunner gets an
EXTERNAL environment served by a worker pool in the launcher, and the pool forks each SDK worker
from a forkserver that imported all of that once per launcher: a worker starts in milliseconds.

It is the same contract as the worker-pool sidecar of Flink and Spark (``BeamFnExternalWorkerPool``):
the runner asks the pool for a worker, the worker dials the runner's control endpoint and runs
bundles over the Fn API, so local multi-worker builds exercise the worker boundary real runners have.

The ``uvd build`` command goes one step further: before it has run any torch or OpenCV operation
it forks itself into the forkserver (``fork_forkserver_from_launcher``), which then holds every
import already, so the first worker starts at once instead of after a second interpreter imports
Beam, torch and uvd (~4 s of CPU on the build's own cores). A process that may have used torch
must not do that (a forked child hangs in the parent's OpenMP pool), so ``job.run`` called from
Python spawns the forkserver as before.
"""

from __future__ import annotations

import contextlib
import ctypes
import inspect
import json
import logging
import multiprocessing
import os
import signal
import socket
import sys
import tempfile
import threading
import traceback
from concurrent import futures
from multiprocessing import connection, forkserver, resource_tracker, util

import grpc
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.portability.api import beam_fn_api_pb2, beam_fn_api_pb2_grpc
from apache_beam.runners.worker import sdk_worker_main
from apache_beam.transforms.environments import ExternalEnvironment
from google.protobuf import text_format

from uvd.pipeline.graph import resources

LOG = logging.getLogger("uvd")
# Imported once by the forkserver, so that forked workers start with them loaded.
PRELOAD = ["apache_beam.runners.worker.sdk_worker_main", "uvd.pipeline.graph.transforms",
           "uvd.pipeline.graph.writing", "uvd.pipeline.graph.workers"]
PR_SET_PDEATHSIG = 1
RUNNER_LOG = "apache_beam.runners.portability.fn_api_runner.fn_runner"


class _PoolIsNotInMemory(logging.Filter):
    """Drops the FnApiRunner's warning that several workers need a multi-process running mode:
    with this pool's environment they are separate processes, whatever the mode says."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("If direct_num_workers is not equal to 1")


def prewarm() -> None:
    """Start the forkserver (it imports PRELOAD while the launcher goes on); idempotent."""
    multiprocessing.get_context("forkserver").set_forkserver_preload(PRELOAD)
    forkserver.ensure_running()


def _forkserver_protocol_known() -> bool:
    """multiprocessing's forkserver as of Python 3.10-3.12 (3.13 adds an authentication handshake)."""
    server = forkserver._forkserver
    expected = ["listener_fd", "alive_r", "preload", "main_path", "sys_path"]
    return (list(inspect.signature(forkserver.main).parameters) == expected
            and all(hasattr(server, a) for a in ("_lock", "_forkserver_address", "_forkserver_alive_fd",
                                                 "_forkserver_pid")))


def fork_forkserver_from_launcher() -> bool:
    """Make a fork of this process multiprocessing's forkserver; False (and nothing done) when this
    process runs other Python threads, already has a forkserver, or the protocol is not one known.

    Call it only before this process has run a torch operation. The fork does what
    ``ForkServer.ensure_running`` does after spawning its interpreter: it serves the listening socket
    until the read end of the "alive" pipe reports that every holder of the write end is gone."""
    server = forkserver._forkserver
    if (not sys.platform.startswith("linux") or threading.active_count() != 1 or server._forkserver_pid is not None
            or not _forkserver_protocol_known()):
        return False
    resource_tracker.ensure_running()  # as ensure_running does: every child is handed its fd
    with socket.socket(socket.AF_UNIX) as listener:
        address = connection.arbitrary_address("AF_UNIX")
        listener.bind(address)
        if not util.is_abstract_socket_namespace(address):
            os.chmod(address, 0o600)
        listener.listen()
        alive_r, alive_w = os.pipe()
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        pid = os.fork()  # no lock is held here: the forkserver and its workers get none held
        if pid == 0:  # the forkserver: never returns
            _serve_forks(listener.fileno(), alive_r, alive_w)
        os.close(alive_r)
    with server._lock:
        server._forkserver_address, server._forkserver_alive_fd, server._forkserver_pid = address, alive_w, pid
    LOG.info("forkserver %d forked from the launcher", pid)
    return True


def _serve_forks(listener_fd: int, alive_r: int, alive_w: int) -> None:
    """The forked forkserver's life; it leaves by os._exit, so none of the launcher's exit handlers
    (temporary folders, atexit) run in it."""
    code = 0
    try:
        os.close(alive_w)  # else the forkserver would wait for itself to close it
        forkserver.main(listener_fd, alive_r, PRELOAD)
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 0
    except BaseException:  # noqa: BLE001 - reported, then the forkserver exits
        traceback.print_exc()
        code = 1
    finally:
        os._exit(code)


def release_launcher_lifeline() -> None:
    """Close this worker's copy of the pipe whose end tells the forkserver that its launcher is gone.

    multiprocessing hands every forked child that pipe's write end (``_forkserver_alive_fd``), so the
    forkserver outlives its launcher for as long as one child lives; a worker whose launcher was
    killed mid-build waits on a dead runner, so neither would ever exit (orphans found holding their
    memory an hour later). Without the copy, the forkserver exits with the launcher, and
    PR_SET_PDEATHSIG takes the workers with it."""
    server = forkserver._forkserver  # the module's singleton; private, stable since Python 3.4
    if getattr(server, "_forkserver_alive_fd", None) is not None:
        os.close(server._forkserver_alive_fd)
        server._forkserver_alive_fd = None


def run_worker(env: dict[str, str], threads: int | None) -> None:
    """A forked SDK worker: serve the runner until it closes the control stream."""
    if sys.platform.startswith("linux"):  # die with the forkserver, which dies with the launcher (kill -9 too)
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    release_launcher_lifeline()
    resources.use_threads(threads)
    log_handler, harness, _ = sdk_worker_main.create_harness(env)
    try:
        harness.run()
    finally:
        if log_handler:
            log_handler.close()


class ForkingWorkerPool(beam_fn_api_pb2_grpc.BeamFnExternalWorkerPoolServicer):
    """Starts each requested SDK worker as a fork of the warm forkserver."""

    def __init__(self, options: PipelineOptions, threads: int | None, work_dir: str):
        prewarm()
        self._context = multiprocessing.get_context("forkserver")
        self._options = json.dumps({"options": options.get_all_options(drop_default=True)}, default=str)
        self._work_dir = work_dir  # the workers' semi-persistent directory (empty: nothing staged)
        self._threads = threads
        self._workers: dict[str, multiprocessing.process.BaseProcess] = {}
        self._lock = threading.Lock()

    def StartWorker(self, request, context):  # noqa: N802 - the gRPC method's name
        env = {"CONTROL_API_SERVICE_DESCRIPTOR": text_format.MessageToString(request.control_endpoint),
               "LOGGING_API_SERVICE_DESCRIPTOR": text_format.MessageToString(request.logging_endpoint),
               "PIPELINE_OPTIONS": self._options, "WORKER_ID": request.worker_id,
               "SEMI_PERSISTENT_DIRECTORY": self._work_dir}
        try:
            worker = self._context.Process(target=run_worker, args=(env, self._threads), daemon=False,
                                           name=f"uvd-sdk-worker-{request.worker_id}")
            worker.start()
        except Exception:  # noqa: BLE001 - the runner reports it
            return beam_fn_api_pb2.StartWorkerResponse(error=traceback.format_exc())
        with self._lock:
            self._reap()
            self._workers[request.worker_id] = worker
        return beam_fn_api_pb2.StartWorkerResponse()

    def StopWorker(self, request, context):  # noqa: N802
        with self._lock:
            worker = self._workers.pop(request.worker_id, None)
        if worker is not None:
            self._stop(worker)
        return beam_fn_api_pb2.StopWorkerResponse()

    def _reap(self) -> None:
        for worker_id, worker in list(self._workers.items()):
            if not worker.is_alive():
                worker.join()
                del self._workers[worker_id]

    @staticmethod
    def _stop(worker, timeout: float = 10.0) -> None:
        worker.join(timeout)  # a worker leaves by itself once its runner is done
        if worker.is_alive():
            worker.terminate()
            worker.join(timeout)
        if worker.is_alive():
            worker.kill()
            worker.join()

    def close(self) -> None:
        with self._lock:
            workers, self._workers = list(self._workers.values()), {}
        for worker in workers:
            self._stop(worker)


@contextlib.contextmanager
def warm_worker_pool(options: PipelineOptions, threads: int | None):
    """An EXTERNAL environment for the FnApiRunner, served by a ForkingWorkerPool on loopback."""
    quiet = _PoolIsNotInMemory()
    with tempfile.TemporaryDirectory(prefix="uvd-workers-") as work_dir:
        pool = ForkingWorkerPool(options, threads, work_dir)
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        port = server.add_insecure_port("localhost:0")
        beam_fn_api_pb2_grpc.add_BeamFnExternalWorkerPoolServicer_to_server(pool, server)
        server.start()
        logging.getLogger(RUNNER_LOG).addFilter(quiet)
        try:
            yield ExternalEnvironment(f"localhost:{port}")
        finally:
            logging.getLogger(RUNNER_LOG).removeFilter(quiet)
            server.stop(None)
            pool.close()
