"""Builds on S3: a real S3 endpoint on 127.0.0.1 (moto's server mode) behind a proxy that injects
connection failures; the build fails, resumes, matches an uninterrupted build, and reads back with
plain webdataset. Credentials come from the standard AWS environment and are never printed."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time

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


def build(env, out: str, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "uvd.cli", "-v", "build", "--source", f"images:s3://{BUCKET}/in/photos",
           "--out", out, "--tokenizer", "random:tiny", "--samples-per-shard", "1", "--wave-size", "4",
           "--no-progress", "--device", "cpu", *extra]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)


def test_s3_build_fails_on_dropped_connections_resumes_and_reads_back(s3, tmp_path, monkeypatch):
    client, proxy, env = s3

    for i in range(8):  # the inputs live on S3 too
        ok, jpg = cv2.imencode(".jpg", cv2.cvtColor(photo(i), cv2.COLOR_RGB2BGR))
        client.put_object(Bucket=BUCKET, Key=f"in/photos/p{i}.jpg", Body=jpg.tobytes())
    reference = build(env, f"s3://{BUCKET}/reference")
    ref_log = reference.communicate(timeout=600)[0].decode()
    assert reference.returncode == 0, ref_log[-3000:]

    first = build(env, f"s3://{BUCKET}/out")
    deadline = time.time() + 300
    while not any(k.endswith(".done.jsonl.gz") for k in objects(client, "out/_uvd_resume/waves/")):
        assert first.poll() is None and time.time() < deadline, first.communicate()[0].decode()[-3000:]
        time.sleep(0.05)
    proxy.failing.set()  # the endpoint goes away in the middle of the build ...
    try:
        failed_log = first.communicate(timeout=60)[0].decode()  # ... and the build gives up,
    except subprocess.TimeoutExpired:
        first.kill()  # or, still retrying with backoff, is killed as a hung job would be
        failed_log = first.communicate()[0].decode()
    proxy.failing.clear()
    assert first.returncode != 0 and proxy.dropped > 0, failed_log[-2000:]
    assert "manifest.parquet" not in objects(client, "out/")  # not finished: no manifest vouches for it

    second = build(env, f"s3://{BUCKET}/out")
    resumed_log = second.communicate(timeout=600)[0].decode()
    assert second.returncode == 0, resumed_log[-3000:]
    assert "resuming" in resumed_log and "wave(s) already committed" in resumed_log
    out, ref = objects(client, "out/"), objects(client, "reference/")
    assert out == ref and "manifest.parquet" in out  # byte-identical to the uninterrupted build

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "uvd-test-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", env["AWS_ENDPOINT_URL"])
    storage.register_webdataset_schemes()

    table, _ = read_manifest(f"s3://{BUCKET}/out")
    samples = sum(len(list(wds.WebDataset(f"s3://{BUCKET}/out/{path}", shardshuffle=False).decode()))
                  for path in table.column("path").to_pylist())
    assert samples == sum(table.column("samples").to_pylist()) == 8

    for text in (ref_log, failed_log, resumed_log):
        assert SECRET not in text
    assert not any(SECRET.encode() in data for data in out.values())
