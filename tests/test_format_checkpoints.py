"""The checkpoint commit helper: atomic step directories, the ``latest`` pointer, pruning, resume after kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from uvd.format.checkpoints import (
    LATEST,
    commit_checkpoint,
    latest_checkpoint,
    list_checkpoints,
    step_dir_name,
    step_of,
)


def write_step_files(step: int):
    """A checkpoint whose every file says which step it belongs to."""
    def write(directory: Path) -> None:
        (directory / "weights.bin").write_bytes(step.to_bytes(4, "little") * 1000)
        (directory / "sub").mkdir()
        (directory / "sub" / "state.txt").write_text(f"{step}\n")
        (directory / "done.json").write_text(f'{{"step": {step}}}\n')
    return write


def assert_holds_step(directory: Path, step: int) -> None:
    assert step_of(directory) == step
    assert (directory / "weights.bin").read_bytes() == step.to_bytes(4, "little") * 1000
    assert (directory / "sub" / "state.txt").read_text() == f"{step}\n"
    assert (directory / "done.json").read_text() == f'{{"step": {step}}}\n'


def test_commit_names_latest_and_keeps_the_newest(tmp_path):
    root = tmp_path / "run"
    for step in (1, 2, 3, 10):
        committed = commit_checkpoint(root, step, write_step_files(step), keep=2)
        assert committed == root / step_dir_name(step) and (root / LATEST).read_text() == committed.name + "\n"
        assert_holds_step(committed, step)
    assert sorted(p.name for p in root.iterdir()) == ["latest", "step-00000003", "step-00000010"]  # nothing hidden
    assert latest_checkpoint(root) == root / "step-00000010"
    commit_checkpoint(root, 11, write_step_files(11), keep=1)
    assert [p.name for p in list_checkpoints(root)] == ["step-00000011"]


def test_steps_sort_by_number_not_by_name(tmp_path):
    root = tmp_path / "run"
    for step in (99_999_999, 100_000_000):  # 9 digits sort before 8 as text
        commit_checkpoint(root, step, write_step_files(step), keep=2)
    (root / LATEST).unlink()
    assert latest_checkpoint(root) == root / "step-100000000"
    commit_checkpoint(root, 100_000_001, write_step_files(100_000_001), keep=2)
    assert [step_of(p) for p in list_checkpoints(root)] == [100_000_000, 100_000_001]


def test_committing_a_step_again_replaces_it_and_keeps_newer_ones(tmp_path):
    root = tmp_path / "run"
    for step in (4, 6):
        commit_checkpoint(root, step, write_step_files(step), keep=3)
    (root / LATEST).write_text("step-00000004\n")  # resumed from step 4 on purpose
    commit_checkpoint(root, 5, write_step_files(5), keep=3)
    assert [p.name for p in list_checkpoints(root)] == ["step-00000004", "step-00000005", "step-00000006"]

    def write_again(directory: Path) -> None:
        (directory / "weights.bin").write_bytes(b"second")
    again = commit_checkpoint(root, 6, write_again, keep=3)
    assert sorted(p.name for p in again.iterdir()) == ["weights.bin"]
    assert (again / "weights.bin").read_bytes() == b"second"
    assert latest_checkpoint(root) == again and not [p for p in root.iterdir() if p.name.startswith(".")]


def test_a_failed_write_commits_nothing_and_is_cleaned_up_by_the_next(tmp_path):
    root = tmp_path / "run"
    commit_checkpoint(root, 1, write_step_files(1))

    def fail_halfway(directory: Path) -> None:
        (directory / "weights.bin").write_bytes(b"partial")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        commit_checkpoint(root, 2, fail_halfway)
    assert latest_checkpoint(root) == root / "step-00000001" and [step_of(p) for p in list_checkpoints(root)] == [1]
    assert (root / ".step-00000002.tmp").is_dir()  # left behind, never named by latest
    commit_checkpoint(root, 2, write_step_files(2))
    assert sorted(p.name for p in root.iterdir()) == ["latest", "step-00000001", "step-00000002"]


def test_latest_falls_back_to_the_newest_complete_checkpoint(tmp_path):
    root = tmp_path / "run"
    assert latest_checkpoint(root) is None
    for step in (1, 2, 3):
        commit_checkpoint(root, step, write_step_files(step), keep=3)
    required = ("done.json", "weights.bin")
    (root / "step-00000003" / "done.json").unlink()  # incomplete: skipped when the file is required
    assert latest_checkpoint(root, required=required) == root / "step-00000002"
    assert latest_checkpoint(root) == root / "step-00000003"
    (root / LATEST).write_text("step-00000009\n")  # names a directory that is gone
    assert latest_checkpoint(root, required=required) == root / "step-00000002"
    (root / LATEST).unlink()
    (root / "step-00000007").mkdir()  # empty
    (root / "notes").mkdir()
    assert latest_checkpoint(root, required=required) == root / "step-00000002"


def test_latest_must_name_a_step_directory(tmp_path):
    root = tmp_path / "run"
    commit_checkpoint(root, 1, write_step_files(1))
    (root / LATEST).write_text("../../elsewhere\n")
    with pytest.raises(ValueError, match="not a step-NNNNNNNN"):
        latest_checkpoint(root)


def test_remote_roots_and_bad_arguments_are_refused(tmp_path):
    with pytest.raises(ValueError, match="local directory"):
        commit_checkpoint("s3://bucket/run", 1, write_step_files(1))
    with pytest.raises(ValueError, match="keep"):
        commit_checkpoint(tmp_path, 1, write_step_files(1), keep=0)
    with pytest.raises(ValueError, match="negative"):
        step_dir_name(-1)
    assert step_of("step-00000012") == 12 and step_of(".step-00000012.tmp") is None and step_of("latest") is None


WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from uvd.format.checkpoints import commit_checkpoint, latest_checkpoint, step_of
    root = Path(sys.argv[1])
    found = latest_checkpoint(root, required=("done.json",))
    step = step_of(found) + 1 if found else 1
    while True:
        def write(directory, step=step):
            for k in range(8):
                (directory / f"part{k}.bin").write_bytes(step.to_bytes(4, "little") * 64_000)
            (directory / "done.json").write_text(str(step))
        commit_checkpoint(root, step, write, keep=2)
        step += 1
""")


def named_step(root: Path) -> int:
    """The step ``latest`` names, 0 before the first one."""
    pointer = root / LATEST
    return step_of(pointer.read_text().strip()) if pointer.is_file() else 0


def test_kill_9_at_any_moment_leaves_a_complete_checkpoint_to_resume_from(tmp_path):
    """A writer commits 2 MB checkpoints in a loop; each round kills it with SIGKILL wherever it is
    and restarts it from what ``latest_checkpoint`` finds, which must be complete and in order."""
    root = tmp_path / "run"
    resumed_from = []
    for round_ in range(4):
        child = subprocess.Popen([sys.executable, "-c", WRITER, str(root)])
        deadline = time.time() + 120
        start = named_step(root)
        while named_step(root) < start + 1 + round_ % 3:
            assert child.poll() is None and time.time() < deadline, "the writer stopped before it was killed"
            time.sleep(0.01)
        time.sleep(0.003 * round_)  # land the kill at different points of a commit
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        found = latest_checkpoint(root, required=("done.json",))
        assert found is not None and named_step(root) == step_of(found)  # latest names a complete checkpoint
        step = step_of(found)
        assert (found / "done.json").read_text() == str(step)
        for k in range(8):
            assert (found / f"part{k}.bin").read_bytes() == step.to_bytes(4, "little") * 64_000
        assert all(step_of(p) <= step + 1 for p in list_checkpoints(root))  # at most one commit ahead of latest
        resumed_from.append(step)
    assert resumed_from == sorted(resumed_from) and resumed_from[-1] > resumed_from[0]


def test_a_first_checkpoint_killed_before_its_pointer_is_found(tmp_path):
    """Renamed into place but killed before ``latest`` was written: the directory is complete."""
    root = tmp_path / "run"
    commit_checkpoint(root, 1, write_step_files(1))
    (root / LATEST).unlink()
    assert latest_checkpoint(root, required=("done.json",)) == root / "step-00000001"
