"""Beam's own Python job service as a subprocess, for builds on the PortableRunner.

No network, Docker, jars or Prism: the service is Beam's LocalJobServicer (its engine is the
FnApiRunner, receiving the pipeline as a proto), and each job starts its SDK workers as separate
processes (``beam:env:harness_subprocess_python:v1``; the Python service does not serve
``PROCESS``), which talk to the runner over the Fn API: the worker contract of Dataflow Runner v2,
Flink and Spark. Every wait is bounded, so a hang fails a test instead of blocking the run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

READY_TIMEOUT_S = 60


@dataclasses.dataclass
class JobService:
    endpoint: str
    proc: subprocess.Popen
    log: Path

    def beam_args(self) -> list[str]:
        """The options that send a pipeline to this service, its workers in separate processes."""
        return ["--runner=PortableRunner", f"--job_endpoint={self.endpoint}",
                "--job_server_timeout=60",  # connecting and Prepare, not the job
                "--environment_type=beam:env:harness_subprocess_python:v1",
                f"--environment_config=exec {sys.executable} -m apache_beam.runners.worker.sdk_worker_main 1>&2",
                "--experiments=disable_logging_submission_environment"]  # no `pip freeze` per job

    def kill(self) -> None:
        """SIGTERM, then SIGKILL, the process group: the service and every SDK worker it started."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(5)

    @contextlib.contextmanager
    def deadline(self, seconds: float):
        """Kill the service if the block outlives ``seconds``: the launcher's job-state stream then
        breaks and the test fails at once."""
        expired = threading.Event()

        def expire():
            expired.set()
            self.kill()

        timer = threading.Timer(seconds, expire)
        timer.daemon = True
        timer.start()
        try:
            yield
        except Exception as e:
            if expired.is_set():
                pytest.fail(f"portable job still running after {seconds} s: job service killed; log: {self.log}\n{e}")
            raise
        finally:
            timer.cancel()


@contextlib.contextmanager
def start_job_service(work_dir: Path):
    work_dir.mkdir(parents=True, exist_ok=True)
    port_file, log = work_dir / "job.port", work_dir / "job_service.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "apache_beam.runners.portability.local_job_service_main", "--port=0",
             f"--port_file={port_file}", f"--staging_dir={work_dir / 'staging'}"],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)  # its own group: teardown kills all
    service = JobService("", proc, log)
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not (port_file.exists() and port_file.read_text().strip()):  # written atomically once serving
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"job service did not start; see {log}")
            time.sleep(0.05)
        service.endpoint = f"localhost:{port_file.read_text().strip()}"
        yield service
    finally:
        service.kill()


@pytest.fixture(scope="session")
def beam_job_service(tmp_path_factory):
    with start_job_service(tmp_path_factory.mktemp("beam-job-service")) as service:
        yield service
