"""A build at scale must be trustworthy: the same bytes for any worker count, resumable after kill -9
without ever showing a partial file, every bad input accounted for, exact dedup."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import cv2
import pyarrow.parquet as pq
import pytest
from fixtures import make_fixture
from fixtures.common import photo, video_frames, write_image, write_video

from uvd.format.sample import sentence_key
from uvd.pipeline.graph import job, state
from uvd.pipeline.records.config import BuildConfig, SourceConfig

TINY = ["--tokenizer", "random:tiny", "--no-progress", "--device", "cpu"]


def uvd(*args, workers: int = 1) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "uvd.cli", "build", *args, *TINY, "--workers", str(workers)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONFAULTHANDLER": "1", "PYTHONUNBUFFERED": "1"})


def finish(proc: subprocess.Popen, timeout=600) -> str:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, failure_text(out.decode(errors="replace"))
    return out.decode(errors="replace")


def failure_text(out: str) -> str:
    """What a failed build printed: faulthandler's report (its thread stacks) with what came just
    before it (a C++ runtime's own message, such as std::terminate's, precedes the report), else the end."""
    fatal = out.find("Fatal Python error")
    return out[max(0, fatal - 2000):fatal + 6000] if fatal >= 0 else out[-3000:]


def files_of(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """Real photos (one in a folder with spaces and unicode), two real videos, and LOL pairs."""
    root = tmp_path_factory.mktemp("corpus")
    for i in range(10):
        write_image(root / "images" / f"photo_{i:02d}.jpg", photo(i))
    write_image(root / "images" / "dossier été 2" / "photo été.png", photo(11))
    write_video(root / "videos" / "a.mp4", video_frames(30))
    write_video(root / "videos" / "b.avi", video_frames(24, name="carphone_pristine.mp4"))
    make_fixture("lol", root)
    return root


def corpus_sources(root: Path) -> list[str]:
    return ["--source", f"images:{root / 'images'}", "--source", f"videos:{root / 'videos'}",
            "--source", f"lol_enhance:{root / 'lol'}", "--layout-arg", "lol_enhance.epochs=1"]


# --- 1. the same bytes for any worker count -------------------------------------------------------

def test_one_or_two_workers_and_again_give_byte_identical_output(corpus, tmp_path):
    builds = []
    for run, workers in enumerate((1, 2, 2)):  # 1 vs 2 workers, and 2 again
        out = tmp_path / f"out{run}"
        finish(uvd(*corpus_sources(corpus), "--out", str(out), "--samples-per-shard", "3", workers=workers))
        builds.append(files_of(out))
    names = sorted(builds[0])
    assert "manifest.parquet" in names and len([n for n in names if n.startswith("shard-")]) >= 3
    for other in builds[1:]:
        assert sorted(other) == names
        assert all(other[n] == builds[0][n] for n in names), [n for n in names if other[n] != builds[0][n]]


# --- 2. kill -9 at random points, resume, same bytes; never a partial file -------------------------

class Watcher(threading.Thread):
    """Lists the output directory every few milliseconds and checks every file it sees."""

    def __init__(self, out: Path, reference: dict[str, bytes]):
        super().__init__(daemon=True)
        self.out, self.reference = out, reference
        self.checked: set[tuple[str, int]] = set()
        self.problems: list[str] = []
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            self.check()
            time.sleep(0.005)
        self.check()

    def check(self):
        for path in list(self.out.rglob("*")) if self.out.exists() else []:
            name = str(path.relative_to(self.out))
            if path.is_dir():
                continue
            if name.endswith(".tmp") or "uvd-tmp" in name:
                self.problems.append(f"temporary file under the output prefix: {name}")
                continue
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                continue  # replaced or cleaned up between listing and reading
            if (name, len(data)) in self.checked:
                continue
            self.checked.add((name, len(data)))
            if name.startswith("shard-") and data != self.reference.get(name):
                self.problems.append(f"{name}: not the complete final shard ({len(data)} bytes)")
            elif name.endswith(".json"):
                try:
                    json.loads(data)
                except ValueError:
                    self.problems.append(f"{name}: partial JSON")
            elif name.endswith(".parquet") and data != self.reference.get(name):
                self.problems.append(f"{name}: not the final records")


def committed_steps(out: Path) -> int:
    """How far a build has committed: its plan, then each wave."""
    state = out / "_uvd_resume"
    return int((state / "plan.json").exists()) + len(list(state.glob("waves/*.done.json")))


def test_kill_9_at_random_points_then_resume_gives_the_uninterrupted_bytes(corpus, tmp_path):
    # one sentence a shard and a wave: the plan and 14 waves, 15 commits a killed run does not redo (with
    # two shards a wave there were 8, and a fast run could make 2 between kills: too few for five kills)
    args = [*corpus_sources(corpus), "--samples-per-shard", "1", "--wave-size", "1"]
    finish(uvd(*args, "--out", str(tmp_path / "reference")))
    reference = files_of(tmp_path / "reference")
    out = tmp_path / "killed"
    watcher = Watcher(out, reference)
    watcher.start()
    rng, kills = random.Random(5), 0
    while kills < 5:
        proc, before = uvd(*args, "--out", str(out)), committed_steps(out)
        while committed_steps(out) == before and proc.poll() is None:
            time.sleep(0.01)  # some progress first, so every run gets further than the last
        time.sleep(rng.uniform(0.0, 0.35))  # then a random point: mid-wave, mid-write, anywhere (a wave is ~0.5-1 s)
        if proc.poll() is not None:
            finish(proc)
            pytest.fail(f"the build finished before kill {kills + 1}: too little work for five kills")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
    assert committed_steps(out) >= 5  # each run resumed where the last one was killed
    finish(uvd(*args, "--out", str(out)))
    watcher.stop.set()
    watcher.join()
    assert not watcher.problems, watcher.problems[:5]
    assert files_of(out) == reference  # resumed output: byte for byte the uninterrupted one
    assert not (tmp_path / ".killed.uvd-tmp").exists()


# --- 3. a corpus of bad inputs: no crash, every bad item rejected for the right reason ----------------

def png_bomb(path: Path, side: int = 30000) -> None:
    """A valid PNG header announcing side x side pixels with a tiny compressed body (a decompression bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    row = b"\x00" + b"\x00" * side  # filter byte + one grey byte per pixel
    body = zlib.compressobj(9)
    stream = b"".join(body.compress(row) for _ in range(64)) + body.flush()  # only 64 rows: the header lies
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", stream) + chunk(b"IEND", b""))


def test_bad_input_corpus_is_all_accounted_for(corpus, tmp_path):
    images, videos = tmp_path / "images", tmp_path / "vidéos bad"
    shutil.copytree(corpus / "images", images)
    good_jpg = (images / "photo_00.jpg").read_bytes()
    good_png = (images / "dossier été 2" / "photo été.png").read_bytes()
    (images / "truncated.jpg").write_bytes(good_jpg[: len(good_jpg) // 2])
    (images / "truncated.png").write_bytes(good_png[: len(good_png) // 2])
    (images / "zero.jpg").write_bytes(b"")
    (images / "zero.png").write_bytes(b"")
    (images / "random bytes.jpg").write_bytes(random.Random(0).randbytes(5000))
    png_bomb(images / "bomb.png")
    videos.mkdir()
    shutil.copy(corpus / "videos" / "a.mp4", videos / "good ünï.mp4")
    data = (corpus / "videos" / "a.mp4").read_bytes()
    (videos / "truncated.mp4").write_bytes(data[: len(data) // 3])

    empty = cv2.VideoWriter(str(videos / "no frames.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 48))
    empty.release()  # a container with zero frames
    coco = make_fixture("coco", tmp_path)
    (coco / "annotations" / "instances_train2017.json").write_text('{"images": [{"id": 1, ')  # broken JSON
    lol = make_fixture("lol", tmp_path)
    removed = sorted((lol / "our485" / "high").iterdir())[0]
    removed.unlink()  # a pair without its partner

    sources = [SourceConfig(name="images", spec="images", root=str(images)),
               SourceConfig(name="videos", spec="videos", root=str(videos)),
               SourceConfig(name="coco_detection", spec="coco_detection", root=str(coco)),
               SourceConfig(name="lol_enhance", spec="lol_enhance", root=str(lol))]
    summary = job.run(sources, str(tmp_path / "out"), BuildConfig(tokenizer="random:tiny", batch_size=8,
                                                                   layout_args={"lol_enhance": {"epochs": 1}}),
                      device="cpu")
    rejects = {(r["source"], r["item_key"]): r for r in pq.read_table(tmp_path / "out" / "rejects.parquet").to_pylist()}
    expected = {("images", "truncated.jpg"): "unreadable_image", ("images", "truncated.png"): "unreadable_image",
                ("images", "zero.jpg"): "unreadable_image", ("images", "zero.png"): "unreadable_image",
                ("images", "random bytes.jpg"): "unreadable_image", ("images", "bomb.png"): "image_too_large",
                ("videos", "truncated.mp4"): "unreadable_video", ("videos", "no frames.mp4"): "unreadable_video",
                ("lol_enhance", f"our485/low/{removed.name}"): "missing_pair"}
    for key, reason in expected.items():
        assert key in rejects, f"{key} is not in the rejects record"
        assert rejects[key]["reason"] == reason, (key, rejects[key])
        assert Path(key[1]).name in rejects[key]["message"]  # the message names the file
    coco_rejects = [r for k, r in rejects.items() if k[0] == "coco_detection"]
    assert [r["reason"] for r in coco_rejects] == ["unreadable_annotation"]
    assert "instances_train2017.json" in coco_rejects[0]["message"]
    assert "900000000 pixels" in rejects[("images", "bomb.png")]["message"]  # 30000 x 30000, refused unread
    assert summary["unaccounted_items"] == 0  # every listed input is written or rejected
    assert summary["items"]["images"] == {"written": 11, "rejected": 6, "skipped": 0, "unaccounted": 0}
    assert summary["items"]["videos"]["written"] == 1 and summary["items"]["videos"]["rejected"] == 2


# --- dedup ------------------------------------------------------------------------------------------

def test_identical_images_within_a_source_and_identical_sentences_across_the_build(tmp_path):
    for name in ("a", "b"):
        for i in range(3):
            write_image(tmp_path / name / f"p{i}.png", photo(i))
    shutil.copy(tmp_path / "a" / "p0.png", tmp_path / "a" / "copy of p0.png")  # same bytes, same source
    sources = [SourceConfig(name="a", spec="images", root=str(tmp_path / "a")),
               SourceConfig(name="b", spec="images", root=str(tmp_path / "b"))]
    config = BuildConfig(tokenizer="random:tiny", samples_per_shard=1)
    summary = job.run(sources, str(tmp_path / "out"), config, device="cpu")
    rejects = pq.read_table(tmp_path / "out" / "rejects.parquet").to_pylist()
    by_reason = {}
    for r in rejects:
        by_reason.setdefault(r["reason"], []).append(r)
    (image_dup,) = by_reason["duplicate_image"]
    assert image_dup["item_key"] == "p0.png" and "copy of p0.png (kept)" in image_dup["message"]  # smallest key
    # b's photos are a's photos: the same tokens, so one sentence of each pair is kept
    assert len(by_reason["duplicate_sentence"]) == 3
    assert summary["dedup"] == {"duplicate_images": 1, "duplicate_sentences": 3}
    assert summary["sentences"] == 3 and summary["unaccounted_items"] == 0
    # The same build in waves of two shards: copies in different waves meet through the seen index
    # of the wave before (not the states of every earlier wave), and the bytes do not change.
    job.run(sources, str(tmp_path / "waves"), config, device="cpu", wave_sentences=2)
    assert files_of(tmp_path / "waves") == files_of(tmp_path / "out")
    wave_of = {s: state.shard_index(s, 6) // 2 for s in (sentence_key(src, f"p{i}.png", 0) for src in "ab"
                                                          for i in range(3))}
    assert len({wave_of[sentence_key("a", f"p{i}.png", 0)] != wave_of[sentence_key("b", f"p{i}.png", 0)]
                for i in range(3)}) == 2  # some pairs across waves, some within one
    keep = BuildConfig(tokenizer="random:tiny", dedup_images=False, dedup_sentences=False)
    assert job.run(sources, str(tmp_path / "all"), keep, device="cpu")["sentences"] == 7
    hashes = {hashlib.sha256(p.read_bytes()).hexdigest() for p in (tmp_path / "a").iterdir()}
    assert len(hashes) == 3
