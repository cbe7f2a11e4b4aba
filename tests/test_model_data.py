"""Reading shards back: manifest order, validation, and the split over ranks and workers."""

import types
from collections import Counter

import numpy as np
import pytest
from shard_helpers import make_sentence, write_manifest, write_shard_tar, write_test_shards
from torch.utils.data import DataLoader

import uvd.model.data as data
from uvd.format.sample import encode_sample
from uvd.model.data import ShardDataset, ShardError


def keys_read(dataset, num_workers: int) -> list[str]:
    loader = DataLoader(dataset, batch_size=None, num_workers=num_workers)
    return [sentence.key for sentence in loader]


SENTENCES = [make_sentence(i, n_images=1 + i % 3) for i in range(10)]
ALL_KEYS = sorted(s.key for s in SENTENCES)


def test_single_reader_keeps_manifest_then_tar_order(tmp_path):
    write_test_shards(tmp_path, SENTENCES, samples_per_shard=4)
    dataset = ShardDataset(tmp_path)
    assert dataset.num_samples == 10 and dataset.num_tokens == sum(s.num_tokens for s in SENTENCES)
    sentences = list(dataset)
    assert [s.key for s in sentences] == [s.key for s in SENTENCES]
    assert all(np.array_equal(a.tokens, b.tokens) and a.meta == b.meta for a, b in zip(sentences, SENTENCES))


@pytest.mark.parametrize("samples_per_shard, world_size, num_workers", [
    (4, 1, 2),  # 3 shards, 2 slots: whole shards per worker
    (10, 1, 2),  # 1 shard, 2 slots: sample striding
    (4, 2, 2),  # 3 shards, 4 slots: sample striding over ranks x workers
    (2, 2, 2),  # 5 shards, 4 slots: whole shards over ranks x workers
])
def test_every_key_exactly_once_across_ranks_and_workers(tmp_path, samples_per_shard, world_size, num_workers):
    write_test_shards(tmp_path, SENTENCES, samples_per_shard)
    keys = []
    for rank in range(world_size):
        part = keys_read(ShardDataset(tmp_path, rank=rank, world_size=world_size), num_workers)
        assert part, f"rank {rank} read nothing"
        keys += part
    counts = Counter(keys)
    assert sorted(counts) == ALL_KEYS and set(counts.values()) == {1}


def test_several_dirs_and_seeded_shuffle(tmp_path):
    write_test_shards(tmp_path / "a", SENTENCES[:6], 2)
    write_test_shards(tmp_path / "b", SENTENCES[6:], 2)
    plain = ShardDataset([tmp_path / "a", str(tmp_path / "b")])
    assert [s.key for s in plain] == [s.key for s in SENTENCES]

    shuffled = ShardDataset([tmp_path / "a", tmp_path / "b"], shuffle_shards=True, seed=3)
    orders = []
    for epoch in (0, 0, 1):
        shuffled.set_epoch(epoch)
        orders.append([s.key for s in shuffled])
    assert orders[0] == orders[1]  # deterministic
    assert all(sorted(o) == ALL_KEYS for o in orders)
    assert len({tuple(o) for o in orders}) >= 2  # 5 shards: epochs 0 and 1 differ (seeded)


def test_corrupt_sample_error_names_shard_and_key(tmp_path):
    samples = [encode_sample(s) for s in SENTENCES[:3]]
    samples[1]["tokens.npy"] = b"not a numpy file"
    shard = tmp_path / "shard-000000.tar"
    write_shard_tar(shard, samples)
    write_manifest(tmp_path, [shard], [3], [0])
    with pytest.raises(ShardError, match=rf"corrupt sample '{SENTENCES[1].key}' in shard .*shard-000000\.tar"):
        list(ShardDataset(tmp_path))


def test_missing_member_and_out_of_range_tokens_are_reported(tmp_path):
    samples = [encode_sample(s) for s in SENTENCES[:2]]
    del samples[0]["tokens.npy"]
    shard = tmp_path / "shard-000000.tar"
    write_shard_tar(shard, samples)
    write_manifest(tmp_path, [shard], [2], [0])
    with pytest.raises(ShardError, match=rf"{SENTENCES[0].key}.*KeyError"):
        list(ShardDataset(tmp_path))

    bad = make_sentence(0)
    bad.tokens[0, 0] = 9000
    write_test_shards(tmp_path / "range", [bad], 1)
    with pytest.raises(ShardError, match="token id 9000"):
        list(ShardDataset(tmp_path / "range"))


def test_damaged_shard_detected(tmp_path):
    (shard,) = write_test_shards(tmp_path, SENTENCES[:3], 3)
    data = bytearray(shard.read_bytes())
    token_bytes = data.index(b"\x93NUMPY") + 128 + 1  # inside the first sample's token array
    data[token_bytes] ^= 0x01  # still a valid tar and npy: only the checksum can tell
    shard.write_bytes(bytes(data))
    with pytest.raises(ShardError, match="sha256 differs"):
        list(ShardDataset(tmp_path))
    assert len(list(ShardDataset(tmp_path, verify_sha256=False))) == 3

    shard.write_bytes(bytes(data[: len(data) // 2]))  # truncated
    with pytest.raises(ShardError, match="shard-000000.tar"):
        list(ShardDataset(tmp_path, verify_sha256=False))


def test_manifest_problems_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="manifest.parquet"):
        ShardDataset(tmp_path)
    (shard,) = write_test_shards(tmp_path, SENTENCES[:2], 2)
    shard.unlink()
    with pytest.raises(FileNotFoundError, match="shard-000000.tar"):
        ShardDataset(tmp_path)


def test_slot_assignment_whole_shards_or_striding(tmp_path, monkeypatch):


    monkeypatch.setattr(data, "get_worker_info", lambda: types.SimpleNamespace(id=1, num_workers=2))
    write_test_shards(tmp_path / "three", SENTENCES, 4)  # shards: 0-3, 4-7, 8-9
    assert [s.key for s in ShardDataset(tmp_path / "three")] == [s.key for s in SENTENCES[4:8]]
    write_test_shards(tmp_path / "one", SENTENCES, 10)
    assert [s.key for s in ShardDataset(tmp_path / "one")] == [s.key for s in SENTENCES[1::2]]
    # rank 1 of 2 with 2 workers is slot 3 of 4
    assert [s.key for s in ShardDataset(tmp_path / "one", rank=1, world_size=2)] == [s.key for s in SENTENCES[3::4]]
