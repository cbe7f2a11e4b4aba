"""The durable state of a build: placement of sentences in shards (stable across processes), waves
sized so that a build is a bounded number of runner jobs, and what each wave job reads."""

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from uvd.pipeline.graph import job, state
from uvd.pipeline.graph.writing import earlier_state_files
from uvd.pipeline.planning.waves import MAX_WAVES, MIN_WAVE_SENTENCES, wave_layout
from uvd.pipeline.records.config import BuildConfig, SourceConfig


def test_shard_index_is_stable_and_in_range():
    keys = [f"k_{i:05d}" for i in range(200)]
    first = [state.shard_index(k, 7) for k in keys]
    assert first == [state.shard_index(k, 7) for k in keys]
    assert set(first) == set(range(7))


def test_num_shards_for():
    assert state.num_shards_for(0, 10) == 1
    assert state.num_shards_for(10, 10) == 1
    assert state.num_shards_for(11, 10) == 2


@pytest.mark.parametrize("samples_per_shard", [1, 64, 256, 4096])
def test_a_100m_sentence_build_is_at_most_20_runner_jobs(samples_per_shard):
    layout = wave_layout(100_000_000, samples_per_shard)
    assert layout.jobs == layout.waves + 2 <= 20
    assert layout.waves == MAX_WAVES  # and no fewer: a kill loses at most 1/16 of the wave work
    covered = range(layout.waves * layout.shards_per_wave)
    assert layout.wave_of_shard(layout.num_shards - 1) == layout.waves - 1 and layout.num_shards - 1 in covered


def test_small_builds_are_one_wave_and_an_explicit_size_wins():
    assert wave_layout(MIN_WAVE_SENTENCES, 256).waves == 1
    assert wave_layout(3 * MIN_WAVE_SENTENCES, 256).waves == 3
    assert wave_layout(12, 1, wave_sentences=2).waves == 6  # what the kill -9 test asks for
    assert wave_layout(10**9, 256, wave_sentences=200_000).jobs > 20  # the old default: one job per 200 k


def files_read(p: beam.Pipeline) -> list[str]:
    """Every path a constructed (not run) pipeline lists in a Create: what its workers will read."""
    found = []

    class Visitor(beam.pipeline.PipelineVisitor):
        def visit_transform(self, node):
            if isinstance(node.transform, beam.Create):
                found.extend(v for v in node.transform.values if isinstance(v, str) and state.STATE_DIR in v)

        enter_composite_transform = visit_transform

    p.visit(Visitor())
    return sorted(found)


def test_what_a_wave_reads_does_not_grow_with_its_index(tmp_path):
    """A simulated 100 M-sentence build with every earlier wave committed: each wave's graph reads its
    own plan files and one index of the waves before it (at most seen_parts files), never the
    states of every earlier wave."""
    out = str(tmp_path / "out")
    layout = wave_layout(100_000_000, 256)
    plan = state.BuildPlan(planned_sentences=layout.planned_sentences, num_shards=layout.num_shards,
                           shards_per_wave=layout.shards_per_wave, wave_sentences=[0] * layout.waves, mixture=None)
    for wave in range(layout.waves):  # what committed waves leave: states and seen index parts
        for kind in ("plan", "states", "seen"):
            for part in range(3 if kind == "plan" else plan.seen_parts):
                path = tmp_path / state.wave_part(out, wave, kind, part)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(b"")
    options = PipelineOptions([])
    build = job.BuildContext(sources=[SourceConfig("images", "images", str(tmp_path))], out_dir=out,
                             config=BuildConfig(tokenizer="random:tiny"), options=options, record={},
                             tokens_per_image=256)
    earlier_counts = []
    for wave in (0, 1, 2, 8, layout.waves - 1):
        p = beam.Pipeline(options=options)  # built, never run
        job.chain_wave(p, build, plan, wave)
        read = files_read(p)
        own = [f for f in read if f"wave-{wave:05d}/" in f]
        earlier = [f for f in read if f not in own]
        assert own == state.wave_parts(out, wave, "plan")
        assert earlier == earlier_state_files(out, wave)
        assert all(f"wave-{wave - 1:05d}/seen-" in f for f in earlier)
        earlier_counts.append(len(earlier))
    assert earlier_counts[0] == 0 and set(earlier_counts[1:]) == {plan.seen_parts}
    assert plan.seen_parts == 200  # 100 M sentences / 500 k records a part: bounded by the build, not the wave
