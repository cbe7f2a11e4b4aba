"""The durable state of a build: placement of sentences in shards (stable across processes)."""

from uvd.pipeline.graph import state


def test_shard_index_is_stable_and_in_range():
    keys = [f"k_{i:05d}" for i in range(200)]
    first = [state.shard_index(k, 7) for k in keys]
    assert first == [state.shard_index(k, 7) for k in keys]
    assert set(first) == set(range(7))


def test_num_shards_for():
    assert state.num_shards_for(0, 10) == 1
    assert state.num_shards_for(10, 10) == 1
    assert state.num_shards_for(11, 10) == 2
