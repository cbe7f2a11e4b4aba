import hashlib

from uvd.pipeline import shards
from test_pipeline_format import make_sentence


def test_shard_index_is_stable_and_in_range():
    keys = [f"k_{i:05d}" for i in range(200)]
    first = [shards.shard_index(k, 7) for k in keys]
    assert first == [shards.shard_index(k, 7) for k in keys]
    assert set(first) == set(range(7))


def test_num_shards_for():
    assert shards.num_shards_for(0, 10) == 1
    assert shards.num_shards_for(10, 10) == 1
    assert shards.num_shards_for(11, 10) == 2


def test_write_shard_is_atomic_and_reports_counts(tmp_path):
    sents = [make_sentence(n_images=2, index=i) for i in range(3)]
    info = shards.write_shard(str(tmp_path), 3, sents)
    path = tmp_path / "shard-000003.tar"
    assert info.path == "shard-000003.tar" and info.samples == 3 and info.images == 6 and info.tokens == 6 * 256
    assert info.sha256 == hashlib.sha256(path.read_bytes()).hexdigest() and info.bytes == path.stat().st_size
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shard-000003.tar"]  # no temp file left


def test_manifest_round_trip(tmp_path):
    info = shards.write_shard(str(tmp_path), 0, [make_sentence()])
    shards.atomic_write(str(tmp_path / "manifest.parquet"),
                        shards.parquet_bytes(shards.manifest_table([info], {"seed": 1})))
    table, prov = shards.read_manifest(str(tmp_path))
    assert table.column("path").to_pylist() == ["shard-000000.tar"] and prov == {"seed": 1}
    assert table.column("sources").to_pylist() == [["videos"]]
