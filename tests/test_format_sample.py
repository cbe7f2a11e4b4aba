import io
import json

import numpy as np
import pytest
import webdataset as wds

from uvd.format import sample as fmt
from uvd.format.shards import tar_bytes


def make_sentence(n_images=3, key_item="dir/x.y.mp4", index=0):
    meta = fmt.SentenceMeta(source="videos", group="videos", layout="video", item_keys=(key_item,),
                            image_items=(0,) * n_images, frame_indices=tuple(range(0, 8 * n_images, 8)),
                            views=("frame",) * n_images, seed=42, sentence_index=index)
    tokens = (np.arange(n_images * 256) % 8192).astype(np.uint16).reshape(n_images, 256)
    return fmt.VisualSentence(key=fmt.sentence_key("videos", key_item, index), tokens=tokens, meta=meta)


def test_key_is_stable_and_dot_free():
    k = fmt.sentence_key("My Source.v2", "a b/é.c.mp4", 7)
    assert k == fmt.sentence_key("My Source.v2", "a b/é.c.mp4", 7)
    assert "." not in k and k.endswith("_00007") and k.startswith("my_source_v2_")
    assert k != fmt.sentence_key("My Source.v2", "a b/é.c.mp4", 8)


def test_encode_decode_round_trip():
    s = make_sentence()
    back = fmt.decode_sample(fmt.encode_sample(s))
    assert back.key == s.key and back.meta == s.meta
    np.testing.assert_array_equal(back.tokens, s.tokens)
    assert back.tokens.dtype == np.uint16


def test_plain_webdataset_reads_documented_fields(tmp_path):
    sentences = [make_sentence(index=i) for i in range(3)]
    path = tmp_path / "shard-000000.tar"
    path.write_bytes(tar_bytes(sentences))
    samples = list(wds.WebDataset(str(path), shardshuffle=False).decode())
    assert len(samples) == 3
    for sample in samples:
        assert set(sample) >= {"__key__", "tokens.npy", "meta.json"}
        tokens, meta = sample["tokens.npy"], sample["meta.json"]
        assert tokens.dtype == np.uint16 and tokens.shape == (meta["num_images"], meta["tokens_per_image"])
        for field in ("source", "group", "layout", "item_keys", "frame_indices", "seed", "num_images",
                      "tokens_per_image", "format_version"):
            assert field in meta
        assert sample["__key__"] == meta["key"]


def test_tar_bytes_are_deterministic_and_sorted(tmp_path):
    sentences = [make_sentence(index=i) for i in range(4)]
    a = tar_bytes(sentences)
    b = tar_bytes(list(reversed(sentences)))
    assert a == b
    path = tmp_path / "s.tar"
    path.write_bytes(a)
    keys = [s["__key__"] for s in wds.WebDataset(str(path), shardshuffle=False)]
    assert keys == sorted(keys)


def test_decode_rejects_shape_mismatch():
    sample = fmt.encode_sample(make_sentence())
    meta = json.loads(sample["meta.json"])
    meta["num_images"] = 5
    sample["meta.json"] = json.dumps(meta).encode()
    with pytest.raises(ValueError, match="disagrees"):
        fmt.decode_sample(sample)


def test_no_pickle_in_tokens():
    sample = fmt.encode_sample(make_sentence())
    buf = io.BytesIO()
    np.save(buf, np.array([object()], dtype=object), allow_pickle=True)
    sample["tokens.npy"] = buf.getvalue()
    with pytest.raises(ValueError):
        fmt.decode_sample(sample)


def test_sentences_longer_than_16_images_round_trip():
    """LVM's multi-sequence lines hold 64 images (16384 tokens); format version 3 stores them as any other."""
    s = make_sentence(n_images=64)
    sample = fmt.encode_sample(s)
    meta = json.loads(sample["meta.json"])
    assert meta["format_version"] == 3 and meta["num_images"] == 64
    back = fmt.decode_sample(sample)
    assert back.num_images == 64 and back.num_tokens == 16384 and back.meta == s.meta
    np.testing.assert_array_equal(back.tokens, s.tokens)


def test_version_2_samples_still_read_and_unknown_versions_are_refused():
    sample = fmt.encode_sample(make_sentence())
    meta = json.loads(sample["meta.json"])
    for version, readable in ((2, True), (3, True), (1, False), (4, False)):
        sample["meta.json"] = json.dumps({**meta, "format_version": version}).encode()
        if readable:
            assert fmt.decode_sample(sample).meta == make_sentence().meta
        else:
            with pytest.raises(ValueError, match="unsupported format_version"):
                fmt.decode_sample(sample)
