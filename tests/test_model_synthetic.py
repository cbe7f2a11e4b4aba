"""The learning check's training source: generated sequences written as frame folders and built by
the normal pipeline through the ``synthetic_reasoning`` dataset spec (its full check, which trains a
model, is benchmarks/learning_check.py)."""

from __future__ import annotations

import numpy as np
from click.testing import CliRunner
from spec_harness import build_specs, fixture_root_for, read_sentences, spec_listing

from uvd.cli import main
from uvd.model.synthetic import TASKS


def test_sequences_build_into_sentences_that_repeat_with_their_task_period(tmp_path):
    fixture_root_for(["synthetic_reasoning"], tmp_path)  # 4 sequences, written by the generator
    items, rejects = spec_listing("synthetic_reasoning", tmp_path)
    assert len(items) == 4 and not rejects
    assert sorted(i.label for i in items) == ["colour", "colour", "shape", "size"]
    summary = build_specs(["synthetic_reasoning"], tmp_path, tmp_path / "out")
    assert summary["items"]["synthetic_reasoning"]["written"] == 4
    sentences = read_sentences(tmp_path / "out")
    assert len(sentences) == 4
    for s in sentences:
        task = s.meta.item_keys[0].split("_")[0]
        period = TASKS[task]
        assert s.tokens.shape == (16, 256) and s.meta.frame_indices == tuple(range(16))  # the whole sequence
        assert all(np.array_equal(s.tokens[i], s.tokens[i + period]) for i in range(16 - period))
        assert len({s.tokens[i].tobytes() for i in range(period)}) > 1  # frames of the cycle differ


def test_synthetic_data_command_writes_the_layout_the_spec_reads(tmp_path):
    res = CliRunner().invoke(main, ["eval", "synthetic-data", str(tmp_path / "d"), "--sequences", "3", "--frames", "4"])
    assert res.exit_code == 0, res.output
    index = (tmp_path / "d" / "index.csv").read_text().splitlines()
    assert index == ["sequence,task", "colour_000000,colour", "shape_000001,shape", "size_000002,size"]
    assert sorted(p.name for p in (tmp_path / "d" / "sequences" / "size_000002").iterdir()) == \
        [f"frame_{i:02d}.png" for i in range(4)]


def test_synthetic_data_of_chosen_tasks_only(tmp_path):
    res = CliRunner().invoke(main, ["eval", "synthetic-data", str(tmp_path / "d"), "--sequences", "3", "--frames", "2",
                                    "--tasks", "size,shape"])
    assert res.exit_code == 0, res.output
    index = (tmp_path / "d" / "index.csv").read_text().splitlines()
    assert index == ["sequence,task", "size_000000,size", "shape_000001,shape", "size_000002,size"]
    res = CliRunner().invoke(main, ["eval", "synthetic-data", str(tmp_path / "e"), "--tasks", "size,texture"])
    assert res.exit_code != 0 and "texture" in res.output and not (tmp_path / "e" / "index.csv").exists()
