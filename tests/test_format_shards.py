import hashlib

import webdataset as wds
from test_format_sample import make_sentence

from uvd.format import shards, storage, tables


def test_write_shard_is_atomic_and_reports_counts(tmp_path):
    sents = [make_sentence(n_images=2, index=i) for i in range(3)]
    out = tmp_path / "out"
    info = shards.write_shard(str(out), 3, sents, staging=storage.staging_dir_for(str(out)))
    path = out / "shard-000003.tar.gz"
    assert info.path == "shard-000003.tar.gz" and info.samples == 3 and info.images == 6 and info.tokens == 6 * 256
    assert info.sha256 == hashlib.sha256(path.read_bytes()).hexdigest() and info.bytes == path.stat().st_size
    assert sorted(p.name for p in out.iterdir()) == ["shard-000003.tar.gz"]  # staged outside, then renamed in
    assert storage.staging_dir_for(str(out)) == str(tmp_path / ".out.uvd-tmp")  # a sibling, not under out/
    assert storage.staging_dir_for("s3://bucket/out") is None  # uploads appear whole


def test_gzip_shards_are_deterministic_and_read_by_plain_webdataset(tmp_path):
    sents = [make_sentence(n_images=2, index=i) for i in range(4)]
    first, second = shards.shard_bytes(sents), shards.shard_bytes(list(reversed(sents)))
    assert first == second and first[:2] == b"\x1f\x8b"  # gzip, same bytes whatever the arrival order
    assert len(first) < len(shards.shard_bytes(sents, "none")) / 2
    (tmp_path / "shard-000000.tar.gz").write_bytes(first)
    read = list(wds.WebDataset(str(tmp_path / "shard-000000.tar.gz"), shardshuffle=False).decode())
    assert [s["__key__"] for s in read] == sorted(s.key for s in sents)


def test_manifest_round_trip(tmp_path):
    info = shards.write_shard(str(tmp_path), 0, [make_sentence()])
    empty = shards.write_shard(str(tmp_path), 1, [])
    storage.atomic_write(str(tmp_path / "manifest.parquet"),
                         tables.parquet_bytes(tables.manifest_table([info, empty], {"seed": 1})))
    manifest = tables.read_manifest(str(tmp_path))
    assert [s.name for s in manifest.shards] == ["shard-000000.tar.gz"] and manifest.provenance == {"seed": 1}
    assert manifest.shards[0].sources == ("videos",) and manifest.shards[0].path == str(tmp_path / "shard-000000.tar.gz")
