import hashlib
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
import webdataset as wds
from torch.utils.data import DataLoader

from uvd.model.data import PackedTokens, ShardDataset, ShardError
from uvd.pipeline.format import MANIFEST_NAME, SentenceMeta, VisualSentence, encode_sample


def make_sentence(index: int, n_images: int = 2, tokens_per_image: int = 8) -> VisualSentence:
    """A sentence whose token ids are distinct per index (so packing order is checkable)."""
    meta = SentenceMeta(source="synthetic", group="unpaired_images", layout="single_image",
                        item_keys=(f"item/{index}.png",), image_items=(0,) * n_images,
                        frame_indices=(0,) * n_images, views=("image",) * n_images, seed=index)
    start = index * 100
    tokens = (np.arange(start, start + n_images * tokens_per_image) % 8192).astype(np.uint16)
    return VisualSentence(key=f"synthetic_{index:05d}", tokens=tokens.reshape(n_images, tokens_per_image),
                          meta=meta)


def write_shard_tar(path: Path, samples: list[dict]) -> None:
    with wds.TarWriter(str(path), encoder=False) as writer:
        for sample in samples:
            writer.write(sample)


def write_manifest(out_dir: Path, shard_files: list[Path], samples: list[int], tokens: list[int]) -> None:
    table = pa.table({
        "path": [p.name for p in shard_files],
        "samples": pa.array(samples, pa.int64()),
        "images": pa.array([0] * len(shard_files), pa.int64()),
        "tokens": pa.array(tokens, pa.int64()),
        "bytes": pa.array([p.stat().st_size for p in shard_files], pa.int64()),
        "sha256": [hashlib.sha256(p.read_bytes()).hexdigest() for p in shard_files],
        "sources": [["synthetic"]] * len(shard_files),
    })
    pq.write_table(table, out_dir / MANIFEST_NAME)


def write_test_shards(out_dir: str | Path, sentences: list[VisualSentence], samples_per_shard: int) -> list[Path]:
    """A build output directory: consecutive runs of ``samples_per_shard`` sentences in
    shard-NNNNNN.tar files (in the given order) plus manifest.parquet."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    chunks = [sentences[i:i + samples_per_shard] for i in range(0, len(sentences), samples_per_shard)]
    files = []
    for index, chunk in enumerate(chunks):
        files.append(out_dir / f"shard-{index:06d}.tar")
        write_shard_tar(files[-1], [encode_sample(s) for s in chunk])
    write_manifest(out_dir, files, [len(c) for c in chunks], [sum(s.num_tokens for s in c) for c in chunks])
    return files


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


def test_stream_packing_is_the_concatenated_stream_shifted_by_one(tmp_path):
    write_test_shards(tmp_path, SENTENCES, 4)
    stream = np.concatenate([s.tokens.reshape(-1) for s in SENTENCES]).astype(np.int64)
    seq_len = 7
    rows = list(PackedTokens(ShardDataset(tmp_path), seq_len))
    n = len(rows)
    assert n == (len(stream) - 1) // seq_len  # only the tail shorter than a window is dropped
    inputs = torch.cat([r["input_ids"] for r in rows]).numpy()
    targets = torch.cat([r["targets"] for r in rows]).numpy()
    assert np.array_equal(inputs, stream[: n * seq_len])
    assert np.array_equal(targets, stream[1: n * seq_len + 1])
    for row in rows:
        assert row["input_ids"].dtype == torch.int64 and row["input_ids"].shape == (seq_len,)
        assert torch.equal(row["input_ids"][1:], row["targets"][:-1]) and bool(row["loss_mask"].all())


def test_row_packing_pads_and_masks(tmp_path):
    sentences = [make_sentence(0, n_images=1), make_sentence(1, n_images=3)]  # 8 and 24 tokens
    rows = list(PackedTokens(sentences, seq_len=15, packing="rows", pad_id=0))
    # sentence 0: one row, 7 real targets; sentence 1: rows at 0 (15 targets) and 15 (8 targets)
    assert [int(r["loss_mask"].sum()) for r in rows] == [7, 15, 8]
    first = sentences[0].tokens.reshape(-1)
    assert rows[0]["input_ids"][:8].tolist() == first.tolist() and rows[0]["targets"][:7].tolist() == first[1:].tolist()
    assert rows[0]["input_ids"][8:].eq(0).all()
    second = sentences[1].tokens.reshape(-1).astype(np.int64)
    assert rows[2]["input_ids"][:9].tolist() == second[15:].tolist()


def test_packed_rows_under_dataloader_workers_cover_the_stream_once(tmp_path):
    write_test_shards(tmp_path, SENTENCES, 2)  # 5 shards, 2 workers
    rows = PackedTokens(ShardDataset(tmp_path), seq_len=4, packing="rows")
    loader = DataLoader(rows, batch_size=3, num_workers=2)
    targets = sum(int(batch["loss_mask"].sum()) for batch in loader)
    assert targets == sum(s.num_tokens - 1 for s in SENTENCES)


def test_slot_assignment_whole_shards_or_striding(tmp_path, monkeypatch):
    import types
    import uvd.model.data as data

    monkeypatch.setattr(data, "get_worker_info", lambda: types.SimpleNamespace(id=1, num_workers=2))
    write_test_shards(tmp_path / "three", SENTENCES, 4)  # shards: 0-3, 4-7, 8-9
    assert [s.key for s in ShardDataset(tmp_path / "three")] == [s.key for s in SENTENCES[4:8]]
    write_test_shards(tmp_path / "one", SENTENCES, 10)
    assert [s.key for s in ShardDataset(tmp_path / "one")] == [s.key for s in SENTENCES[1::2]]
    # rank 1 of 2 with 2 workers is slot 3 of 4
    assert [s.key for s in ShardDataset(tmp_path / "one", rank=1, world_size=2)] == [s.key for s in SENTENCES[3::4]]
