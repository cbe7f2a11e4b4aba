"""The training loader: streams with cursors, the mixture order, and resuming anywhere with any
number of ranks, workers and batch size."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
from shard_helpers import make_sentence, write_test_shards
from torch.utils.data import DataLoader

from uvd.model.loader import (
    Cursor,
    LoaderState,
    MixtureRows,
    Partition,
    RoundRobin,
    Stream,
    StreamConfig,
    in_validation,
    streams_from,
)

SENTENCES = [make_sentence(i, n_images=1 + i % 3) for i in range(20)]


@pytest.fixture
def two_dirs(tmp_path):
    write_test_shards(tmp_path / "a", SENTENCES[:12], 3)
    write_test_shards(tmp_path / "b", SENTENCES[12:], 2)
    return tmp_path / "a", tmp_path / "b"


def stream(d, name="a", seq_len=7, packing="stream", **kw):
    return Stream(StreamConfig(name=name, dirs=(str(d),), **{k: kw.pop(k) for k in ("weight", "source") if k in kw}),
                  seq_len=seq_len, packing=packing, seed=kw.pop("seed", 0), **kw)


def take(iterator, n):
    return [next(iterator) for _ in range(n)]


def row_tokens(rows):
    return [r["tokens"].tolist() for r, _ in rows]


# --- a stream ---------------------------------------------------------------------------------

def test_stream_rows_are_the_epochs_concatenated_tokens_shifted_by_one(two_dirs):
    s = stream(two_dirs[0])
    epoch0 = np.concatenate([x.tokens.reshape(-1) for _, _, x in s.sentences(0)]).astype(np.int64)
    n = (len(epoch0) - 1) // 7
    rows = take(s.rows(), n + 2)
    for i, (row, _) in enumerate(rows[:n]):
        np.testing.assert_array_equal(row["tokens"], epoch0[i * 7:i * 7 + 8])
    epoch1 = np.concatenate([x.tokens.reshape(-1) for _, _, x in s.sentences(1)]).astype(np.int64)
    np.testing.assert_array_equal(rows[n][0]["tokens"], epoch1[:8])  # a new epoch, a new shard order
    assert rows[n - 1][1].epoch == 0 and rows[n][1].epoch == 1
    assert [sh.path for sh in s.shard_order(0)] != [sh.path for sh in s.shard_order(1)]


@pytest.mark.parametrize("packing", ["stream", "rows"])
def test_a_stream_restarts_exactly_at_any_cursor(two_dirs, packing):
    s = stream(two_dirs[0], packing=packing, seq_len=5)
    rows = take(s.rows(), 60)  # crosses at least one epoch
    for i in (0, 1, 7, 23, 41):
        resumed = take(s.rows(rows[i][1]), 60 - i - 1)
        assert row_tokens(resumed) == row_tokens(rows[i + 1:])
        assert [c for _, c in resumed] == [c for _, c in rows[i + 1:]]


def test_rows_packing_pads_and_masks_each_sentence(two_dirs):
    s = stream(two_dirs[0], packing="rows", seq_len=15)
    (first, _), = take(s.rows(), 1)
    _, _, sentence = next(s.sentences(0))
    tokens = sentence.tokens.reshape(-1)
    n = min(len(tokens), 16)
    assert first["tokens"][:n].tolist() == tokens[:n].tolist()
    assert int(first["target_mask"].sum()) == min(len(tokens) - 1, 15)


def test_validation_split_is_stable_and_disjoint(two_dirs):
    train, val = (stream(two_dirs[0], split=split, val_fraction=0.3) for split in ("train", "val"))
    keys = lambda st: {x.key for _, _, x in st.sentences(0)}  # noqa: E731
    assert keys(train).isdisjoint(keys(val)) and keys(train) | keys(val) == {s.key for s in SENTENCES[:12]}
    assert keys(val) and all(in_validation(k, 0.3) for k in keys(val))


# --- the mixture ----------------------------------------------------------------------------------

def test_round_robin_follows_the_weights_and_resumes():
    rr = RoundRobin([3, 1])
    picks = [rr.next() for _ in range(400)]
    assert Counter(picks) == {0: 300, 1: 100}
    assert all(abs(picks[:k].count(1) - k / 4) <= 1 for k in range(1, 400))  # smooth, not bursty
    again = RoundRobin([3, 1])
    first = [again.next() for _ in range(7)]
    resumed = RoundRobin([3, 1], state=again.current)
    assert first + [resumed.next() for _ in range(393)] == picks
    with pytest.raises(ValueError):
        RoundRobin([0, 0])


def global_rows(streams, partition, n_batches, workers=0, **kw):
    loader = DataLoader(MixtureRows(streams, partition, **kw), batch_size=None, num_workers=workers)
    out = []
    for i, batch in enumerate(loader):
        out.append(batch)
        if i + 1 == n_batches:
            break
    return out


def flat(batches):
    return [row.tolist() for b in batches for row in b["input_ids"]]


def make_streams(two_dirs, seq_len=6):
    return [Stream(c, seq_len=seq_len, seed=1) for c in streams_from([str(d) for d in two_dirs], {"a": 2, "b": 1})]


def test_order_is_the_same_for_any_ranks_and_workers(two_dirs):
    streams = make_streams(two_dirs)
    reference = flat(global_rows(streams, Partition(batch_size=2), 12))
    assert len(reference) == 24
    assert flat(global_rows(streams, Partition(batch_size=2), 12, workers=3)) == reference
    # 2 ranks: interleaving their micro-batches in micro-batch order gives the same rows
    ranks = [global_rows(streams, Partition(batch_size=2, rank=r, world_size=2), 6, workers=2) for r in (0, 1)]
    interleaved = [b for pair in zip(*ranks) for b in pair]
    assert flat(interleaved) == reference
    batches = global_rows(streams, Partition(batch_size=2), 12)
    weights = Counter(int(s) for b in batches for s in b["stream"])
    assert weights == {0: 16, 1: 8}  # the 2:1 mixture


def test_resume_from_a_batch_state_with_other_workers_and_batch_size(two_dirs):
    streams = make_streams(two_dirs)
    whole = flat(global_rows(streams, Partition(batch_size=2, accumulation=2), 20))
    first = global_rows(streams, Partition(batch_size=2, accumulation=2), 6, workers=2)
    # after 3 optimizer steps (6 micro-batches of 2 rows): the state at the start of step 3, plus its rows
    state = LoaderState.from_json(json.loads(first[-1]["state"]))
    assert state.row == 8
    resumed = global_rows(streams, Partition(batch_size=4), 4, workers=3, start=state, resume_row=state.row + 4)
    seen = flat(first) + flat(resumed)
    assert seen == whole[:len(seen)]  # nothing twice, nothing missed, same order
    assert len(seen) == 12 + 16


def test_source_streams_and_clear_errors(two_dirs, tmp_path):
    configs = streams_from([str(d) for d in two_dirs], by="source")
    assert [c.name for c in configs] == ["synthetic"] and configs[0].dirs == tuple(str(d) for d in two_dirs)
    with pytest.raises(ValueError, match="unknown streams"):
        streams_from([str(d) for d in two_dirs], {"c": 1})
    with pytest.raises(ValueError, match="no shard"):
        stream(two_dirs[0], source="nope")
    with pytest.raises(ValueError, match="too few tokens"):
        take(stream(two_dirs[1], split="val", val_fraction=1e-9, seq_len=7).rows(), 1)
    assert Cursor(0, 1) < Cursor(1, 0)


# --- sentences longer than a row (LVM's 64-image multi-sequence and 32-image CO3D lines) --------

def easylm_rows(lines: list[np.ndarray], seq_len: int) -> list[np.ndarray]:
    """EasyLM's JsonDataset + TextProcessor with fields '{tokens}': append every line's tokens to one
    buffer (no BOS, EOS or separator) and cut rows of seq_len inputs, each with its next-token target,
    while more than seq_len + 1 tokens are buffered (batch size 1)."""
    buf, rows = np.empty(0, np.int64), []
    for line in lines:
        buf = np.concatenate([buf, line])
        while len(buf) > seq_len + 1:
            rows.append(buf[:seq_len + 1])
            buf = buf[seq_len:]
    return rows


def test_long_sentences_are_cut_across_rows_as_lvms_easylm_loader_cuts_them(tmp_path):
    long = [make_sentence(i, n_images=n, tokens_per_image=256) for i, n in enumerate((64, 32, 16, 64, 5, 32))]
    write_test_shards(tmp_path / "long", long, 2)
    s = stream(tmp_path / "long", seq_len=4096)
    lines = [x.tokens.reshape(-1).astype(np.int64) for _, _, x in s.sentences(0)]
    assert max(len(line) for line in lines) == 16384 and sum(map(len, lines)) == 213 * 256
    expected = easylm_rows(lines, 4096)
    rows = take(s.rows(), len(expected))
    assert len(expected) == 13 and all(r[1].epoch == 0 for r in rows)
    for (row, _), want in zip(rows, expected):
        np.testing.assert_array_equal(row["tokens"], want)
        assert row["target_mask"].all()  # every token is trained on, as EasyLM's mask of ones
    # packing="rows": each sentence alone, cut into windows of 4096 (+1) tokens, the last padded and masked
    wanted = [(line[start:start + 4097], len(line[start:start + 4097]) - 1)
              for line in lines for start in range(0, len(line) - 1, 4096)]
    assert len(wanted) == 4 + 2 + 1 + 4 + 1 + 2
    windows = take(stream(tmp_path / "long", seq_len=4096, packing="rows").rows(), len(wanted))
    for (row, _), (piece, targets) in zip(windows, wanted):
        np.testing.assert_array_equal(row["tokens"][:len(piece)], piece)
        assert row["target_mask"].sum() == targets and row["target_mask"][:targets].all()
