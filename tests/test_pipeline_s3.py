"""Builds on S3: a real S3 endpoint on 127.0.0.1 (moto's server mode) behind a proxy that injects
connection failures; the build fails (by itself: a hung build fails the test), resumes, matches an
uninterrupted build, and reads back with plain webdataset. Credentials come from the standard AWS
environment and are never printed, at any verbosity."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import boto3
import cv2
import pytest
import webdataset as wds
from fixtures.common import photo
from moto.server import ThreadedMotoServer

from uvd.format import storage
from uvd.format.tables import read_manifest

SECRET = "s3cr3t-do-not-print-4242"
BUCKET = "uvd-test"


class FlakyProxy(threading.Thread):
    """A TCP proxy to the S3 endpoint; while ``failing`` is set it drops every new connection."""

    def __init__(self, target: tuple[str, int]):
        super().__init__(daemon=True)
        self.target, self.failing = target, threading.Event()
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.dropped = 0

    def run(self):
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            if self.failing.is_set():
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                client.close()  # a reset, as a dropped connection looks
                self.dropped += 1
                continue
            upstream = socket.create_connection(self.target)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self.pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def pipe(src: socket.socket, dst: socket.socket):
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


@pytest.fixture(scope="module")
def s3():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    proxy = FlakyProxy((host, port))
    proxy.start()
    direct = boto3.client("s3", endpoint_url=f"http://{host}:{port}", aws_access_key_id="uvd-test-key",
                          aws_secret_access_key=SECRET, region_name="us-east-1")
    direct.create_bucket(Bucket=BUCKET)
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "uvd-test-key", "AWS_SECRET_ACCESS_KEY": SECRET,
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": f"http://127.0.0.1:{proxy.port}",
           "AWS_MAX_ATTEMPTS": "2", "AWS_RETRY_MODE": "standard", "OMP_NUM_THREADS": "1",
           "PYTHONFAULTHANDLER": "1", "PYTHONUNBUFFERED": "1"}
    yield direct, proxy, env
    server.stop()


def objects(client, prefix: str) -> dict[str, bytes]:
    keys = [o["Key"] for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
            for o in page.get("Contents", [])]
    return {k[len(prefix):]: client.get_object(Bucket=BUCKET, Key=k)["Body"].read() for k in sorted(keys)}


# A build that has neither finished nor failed by then is hung (one whole build takes well under it here).
HUNG_AFTER_S = 600
VERBOSITY = {0: (), 1: ("-v",), 2: ("-vv",)}  # uvd -v: INFO, -vv: DEBUG (botocore's requests included)


def build(env, out: str, verbosity: int, log: Path) -> subprocess.Popen:
    """The build in a child process, its output going to ``log`` (a pipe nobody reads while the test
    polls would fill up at -vv and stall the build)."""
    cmd = [sys.executable, "-m", "uvd.cli", *VERBOSITY[verbosity], "build", "--source",
           f"images:s3://{BUCKET}/in/photos", "--out", out, "--tokenizer", "random:tiny", "--samples-per-shard", "1",
           "--wave-size", "4", "--no-progress", "--device", "cpu"]
    with open(log, "wb") as f:
        return subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env)


def finish(process: subprocess.Popen, log: Path, what: str) -> tuple[int, str]:
    """(exit code, output) of a build; one still running after HUNG_AFTER_S is hung: it is killed and
    the test fails (a killed build's -9 must never pass for a build that failed on its own)."""
    try:
        process.wait(timeout=HUNG_AFTER_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        pytest.fail(f"{what} hung: still running after {HUNG_AFTER_S} s, killed. Its output ends:\n"
                    f"{log.read_text(errors='replace')[-2000:]}")
    return process.returncode, log.read_text(errors="replace")


def assert_logged_at(log: str, verbosity: int) -> None:
    """The log is really at that verbosity, so the secret was looked for in that much output."""
    assert ("INFO " in log) == (verbosity >= 1) and ("DEBUG " in log) == (verbosity >= 2), log[-1000:]


def test_s3_build_fails_on_dropped_connections_resumes_and_reads_back(s3, tmp_path, monkeypatch):
    client, proxy, env = s3

    for i in range(8):  # the inputs live on S3 too
        ok, jpg = cv2.imencode(".jpg", cv2.cvtColor(photo(i), cv2.COLOR_RGB2BGR))
        client.put_object(Bucket=BUCKET, Key=f"in/photos/p{i}.jpg", Body=jpg.tobytes())
    logs = {name: tmp_path / f"{name}.log" for name in ("reference", "failed", "resumed")}
    reference = build(env, f"s3://{BUCKET}/reference", 0, logs["reference"])
    code, ref_log = finish(reference, logs["reference"], "the reference build")
    assert code == 0, ref_log[-3000:]

    first = build(env, f"s3://{BUCKET}/out", 2, logs["failed"])
    deadline = time.time() + HUNG_AFTER_S
    while not any(k.endswith(".done.json") for k in objects(client, "out/_uvd_resume/waves/")):
        assert first.poll() is None, logs["failed"].read_text(errors="replace")[-3000:]
        if time.time() > deadline:
            first.kill()
            pytest.fail(f"the build committed no wave in {HUNG_AFTER_S} s: hung")
        time.sleep(0.05)
    proxy.failing.set()  # the endpoint goes away in the middle of the build ...
    code, failed_log = finish(first, logs["failed"], "the build whose endpoint went away")  # ... and it gives up
    proxy.failing.clear()
    assert code > 0 and proxy.dropped > 0, failed_log[-2000:]  # > 0: it failed itself, no signal killed it
    assert "StorageUnavailable" in failed_log and f"s3://{BUCKET}/" in failed_log, failed_log[-2000:]
    assert "manifest.parquet" not in objects(client, "out/")  # not finished: no manifest vouches for it

    second = build(env, f"s3://{BUCKET}/out", 1, logs["resumed"])
    code, resumed_log = finish(second, logs["resumed"], "the resumed build")
    assert code == 0, resumed_log[-3000:]
    assert "resuming" in resumed_log and "wave(s) already committed" in resumed_log
    out, ref = objects(client, "out/"), objects(client, "reference/")
    assert out == ref and "manifest.parquet" in out  # byte-identical to the uninterrupted build

    for verbosity, log in enumerate((ref_log, resumed_log, failed_log)):  # every verbosity, failure included
        assert_logged_at(log, verbosity)
        assert SECRET not in log
    assert not any(SECRET.encode() in data for data in out.values())

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "uvd-test-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", env["AWS_ENDPOINT_URL"])
    storage.register_webdataset_schemes()

    manifest = read_manifest(f"s3://{BUCKET}/out")
    samples = sum(len(list(wds.WebDataset(shard.path, shardshuffle=False).decode())) for shard in manifest.shards)
    assert samples == manifest.num_samples == 8
