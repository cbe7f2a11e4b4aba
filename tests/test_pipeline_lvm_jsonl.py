"""LVM JSONL interop: lossless both ways, LVM's line format, clear errors."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from uvd.cli import main
from uvd.format.reading import iter_sentences
from uvd.format.sample import SentenceMeta, VisualSentence, sentence_key
from uvd.format.shards import write_shard
from uvd.format.tables import MANIFEST_SCHEMA, manifest_table, parquet_bytes
from uvd.pipeline.tools.lvm_jsonl import decode_line, encode_line, export_jsonl, import_jsonl


def build_dir(tmp_path, n_sentences=11, per_shard=4):
    """A small build: sentences of 1..16 images with varied tokens, over several shards."""
    rng = np.random.default_rng(0)
    sentences = []
    for i in range(n_sentences):
        n = 1 + (i * 5) % 16
        meta = SentenceMeta(source="src", group="videos", layout="video", item_keys=(f"v{i}.mp4",),
                            image_items=(0,) * n, frame_indices=tuple(range(n)), views=("frame",) * n, seed=i)
        tokens = rng.integers(0, 8192, size=(n, 256)).astype(np.uint16)
        sentences.append(VisualSentence(key=sentence_key("src", f"v{i}.mp4", 0), tokens=tokens, meta=meta))
    out = tmp_path / "build"
    out.mkdir()
    infos = [write_shard(str(out), i // per_shard, sentences[i:i + per_shard])
             for i in range(0, n_sentences, per_shard)]
    (out / "manifest.parquet").write_bytes(parquet_bytes(manifest_table(infos, {"tokenizer": {"sha256": "x"}})))
    return out


def test_line_format_is_lvms():
    tokens = np.array([0, 1, 8191, 300], dtype=np.int64)
    line = encode_line(tokens)
    # what LVM's tokenize scripts write: json.dumps({'tokens': b64encode(int32 bytes).decode('utf-8')})
    assert line == json.dumps({"tokens": base64.b64encode(tokens.astype(np.int32).tobytes()).decode("utf-8")})
    np.testing.assert_array_equal(decode_line(line, where="x"), tokens)


def test_shards_to_jsonl_to_shards_keeps_every_token_and_sentence(tmp_path):
    src = build_dir(tmp_path)
    original = [s.tokens for s in iter_sentences(src)]
    assert export_jsonl(src, tmp_path / "a.jsonl") == len(original) == 11
    counts = import_jsonl([tmp_path / "a.jsonl"], tmp_path / "imported", samples_per_shard=3)
    assert counts["sentences"] == 11 and counts["shards"] == 4
    back = [s.tokens for s in iter_sentences(tmp_path / "imported")]
    assert len(back) == len(original) and all(np.array_equal(a, b) for a, b in zip(original, back))


def test_jsonl_to_shards_to_jsonl_gives_the_same_bytes(tmp_path):
    rng = np.random.default_rng(1)
    lines = [encode_line(rng.integers(0, 8192, size=256 * n)) for n in (16, 16, 1, 4, 16)]
    (tmp_path / "lvm.jsonl").write_text("\n".join(lines) + "\n")
    import_jsonl([tmp_path / "lvm.jsonl"], tmp_path / "shards", samples_per_shard=2)
    export_jsonl(tmp_path / "shards", tmp_path / "again.jsonl")
    assert (tmp_path / "again.jsonl").read_bytes() == (tmp_path / "lvm.jsonl").read_bytes()


def test_release_lines_of_64_and_32_images_round_trip_through_the_cli(tmp_path):
    """LVM's multi-sequence (2 shots x 2 tasks x 16 frames) and CO3D (4 x 8) lines: import, export, same bytes."""
    rng = np.random.default_rng(2)
    lines = [encode_line(rng.integers(0, 8192, size=256 * n)) for n in (64, 64, 32, 16, 64)]
    (tmp_path / "multi_seq.jsonl").write_text("\n".join(lines) + "\n")
    runner = CliRunner()
    res = runner.invoke(main, ["jsonl", "import", str(tmp_path / "multi_seq.jsonl"), "--out", str(tmp_path / "shards"),
                               "--samples-per-shard", "2"])
    assert res.exit_code == 0 and "5 sentences" in res.output and "61,440 tokens" in res.output, res.output
    assert [s.num_images for s in iter_sentences(tmp_path / "shards")] == [64, 64, 32, 16, 64]
    res = runner.invoke(main, ["jsonl", "export", str(tmp_path / "shards"), "--out", str(tmp_path / "again.jsonl")])
    assert res.exit_code == 0 and "5 lines" in res.output, res.output
    assert (tmp_path / "again.jsonl").read_bytes() == (tmp_path / "multi_seq.jsonl").read_bytes()
    small = tmp_path / "small_codes.jsonl"  # codes a random:tiny tokenizer (512 codes) can decode
    small.write_text(encode_line(rng.integers(0, 512, size=256 * 20)) + "\n")  # 20 images: decoding is slow
    runner.invoke(main, ["jsonl", "import", str(small), "--out", str(tmp_path / "small")])
    res = runner.invoke(main, ["show", str(tmp_path / "small"), "--out", str(tmp_path / "long.png"),
                               "--tokenizer", "random:tiny", "--cols", "5"])
    assert res.exit_code == 0 and "20 image(s) x 256 tokens" in res.output, res.output
    grid = np.asarray(Image.open(tmp_path / "long.png"))
    assert grid.shape[:2] == (4 * 256 + 5 * 4, 5 * 256 + 6 * 4)  # 20 decoded images, 4 rows of 5
    too_long = tmp_path / "too_long.jsonl"
    too_long.write_text(encode_line(np.zeros(256 * 257)) + "\n")
    res = runner.invoke(main, ["jsonl", "import", str(too_long), "--out", str(tmp_path / "no")])
    assert res.exit_code != 0 and "too_long.jsonl:1: 65792 tokens is not 1..256 images" in res.output


def test_packed_export_cuts_4096_token_lines_and_keeps_the_tail(tmp_path):
    src = build_dir(tmp_path)
    total = sum(s.tokens.size for s in iter_sentences(src))
    n = export_jsonl(src, tmp_path / "packed.jsonl", pack=4096)
    lengths = [len(decode_line(line, where="x")) for line in (tmp_path / "packed.jsonl").read_text().splitlines()]
    assert n == len(lengths) and sum(lengths) == total
    assert all(length == 4096 for length in lengths[:-1]) and 0 < lengths[-1] <= 4096
    stream = np.concatenate([s.tokens.reshape(-1) for s in iter_sentences(src)])
    packed = np.concatenate([decode_line(line, where="x") for line in (tmp_path / "packed.jsonl").read_text().splitlines()])
    np.testing.assert_array_equal(packed, stream)


def test_bad_lines_name_the_file_and_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(encode_line(np.zeros(256)) + "\n" + encode_line(np.zeros(100)) + "\n")
    with pytest.raises(ValueError, match=r"bad.jsonl:2: 100 tokens"):
        import_jsonl([bad], tmp_path / "o1")
    bad.write_text('{"tokens": "not base64!"}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:1: not an LVM token line"):
        import_jsonl([bad], tmp_path / "o2")
    bad.write_text(encode_line(np.full(256, 9000)) + "\n")
    with pytest.raises(ValueError, match=r"outside \[0, 8192\)"):
        import_jsonl([bad], tmp_path / "o3")


def test_cli_round_trip(tmp_path):
    src = build_dir(tmp_path, n_sentences=3)
    runner = CliRunner()
    res = runner.invoke(main, ["jsonl", "export", str(src), "--out", str(tmp_path / "x.jsonl")])
    assert res.exit_code == 0 and "3 lines" in res.output, res.output
    res = runner.invoke(main, ["jsonl", "import", str(tmp_path / "x.jsonl"), "--out", str(tmp_path / "y")])
    assert res.exit_code == 0 and "3 sentences" in res.output, res.output
    assert MANIFEST_SCHEMA.names == ["path", "samples", "images", "tokens", "bytes", "sha256", "sources"]
