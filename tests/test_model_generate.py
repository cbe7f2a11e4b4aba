"""Generation as LVM's generate_once: whole-frame windows, the frame schedule, candidates, sampling,
and the key/value cache it runs on."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from uvd.model.generate import GenerationConfig, filter_logits, frame_schedule, generate_frames
from uvd.model.llama import KVCache, Llama, LlamaConfig

CTX = 4  # context_frames of the window tests: small, so 1..20 context images cross it many times


class Recording(Llama):
    """A tiny Llama that records the ids each fresh window (a forward on an empty cache) starts with."""

    def __init__(self):
        torch.manual_seed(0)
        # a small vocabulary keeps sampling cheap; ids >= 256 play the special ids
        super().__init__(LlamaConfig(d_model=32, ff_dim=64, n_layers=1, n_heads=2, vocab_size=300,
                                     max_seq_len=CTX * 256))
        self.windows: list[torch.Tensor] = []

    def forward(self, input_ids, *args, cache=None, **kw):
        if cache is not None and cache.length == 0:
            self.windows.append(input_ids.clone())
        return super().forward(input_ids, *args, cache=cache, **kw)


@pytest.fixture(scope="module")
def recording():
    return Recording().eval()


@pytest.mark.parametrize("n_context, T", [(n, 16) for n in range(1, 21)] + [(6, 256)])
def test_no_window_starts_inside_an_image(recording, n_context, T):
    """Every window the model sees is whole images and ends where the stream ends (images of 16
    tokens keep the 20 context lengths cheap; the window logic counts images, and one case runs
    LVM's 256)."""
    context = np.random.default_rng(n_context).integers(0, 256, (n_context, T))
    recording.windows.clear()
    cfg = GenerationConfig(n_new_frames=3, n_candidates=2, context_frames=CTX, seed=n_context, num_codes=256,
                           tokens_per_image=T)
    new = generate_frames(recording, context, cfg)
    assert new.shape == (2, 3, T) and new.max() < 256
    schedule = frame_schedule(n_context, 3, CTX)
    assert len(recording.windows) == len(schedule)
    for c in range(2):
        stream = np.concatenate([context.reshape(-1), new[c].reshape(-1)])
        end = n_context * T
        for window, n_frames in zip(recording.windows, schedule):
            length = window.shape[1]
            start = end - length
            assert length % T == 0 and start % T == 0, (length, start)  # whole images only
            assert length <= (CTX - 1) * T and length + n_frames * T <= CTX * T
            assert np.array_equal(window[c].numpy(), stream[start:end])  # the latest images of the stream
            end += n_frames * T


def test_frame_schedule_follows_generate_once():
    assert frame_schedule(12, 4, 16) == [4]  # LVM's video setting: 12 + 4 fit in one window
    assert frame_schedule(1, 20, 16) == [15, 1, 1, 1, 1, 1]  # fill the window, then one at a time
    assert frame_schedule(20, 2, 16) == [1, 1]  # context trimmed to 15 images: room for one
    assert frame_schedule(15, 1, 16) == [1]
    with pytest.raises(ValueError, match="at least one context image"):
        frame_schedule(0, 1)


T = 256


def test_candidates_are_independent_seeded_and_within_the_codebook():
    torch.manual_seed(1)
    model = Llama(LlamaConfig(d_model=32, ff_dim=64, n_layers=1, n_heads=2, vocab_size=1100)).eval()
    context = np.random.default_rng(0).integers(0, 1024, (2, T))
    cfg = GenerationConfig(n_new_frames=1, n_candidates=3, num_codes=1024, seed=5, tokens_per_image=T)
    a = generate_frames(model, context, cfg)
    assert a.shape == (3, 1, T) and a.max() < 1024
    assert not np.array_equal(a[0], a[1])  # independent draws
    assert np.array_equal(a, generate_frames(model, context, cfg))  # seeded
    greedy = GenerationConfig(temperature=0, n_candidates=2, num_codes=1024)
    g = generate_frames(model, context, greedy)
    assert np.array_equal(g[0], g[1])  # greedy candidates coincide
    with pytest.raises(ValueError, match="exceed"):
        generate_frames(model, context, GenerationConfig(context_frames=17))


def test_cached_logits_equal_the_full_forward():
    torch.manual_seed(2)
    model = Llama(LlamaConfig(d_model=32, ff_dim=64, n_layers=2, n_heads=2)).eval()
    ids = torch.randint(0, 8292, (2, 40))
    with torch.no_grad():
        full, _ = model(ids)
        cache = KVCache(capacity=40)
        parts = [model(ids[:, :25], cache=cache)[0], model(ids[:, 25:28], cache=cache)[0]]
        parts += [model(ids[:, t:t + 1], cache=cache)[0] for t in range(28, 40)]
        last, _ = model(ids[:, :10], cache=KVCache(capacity=10), logits_to_keep=1)
    assert torch.allclose(torch.cat(parts, dim=1), full, atol=1e-5)
    assert torch.allclose(last[:, 0], full[:, 9], atol=1e-5)
    with pytest.raises(ValueError, match="KV cache"):
        model(ids[:, :3], cache=KVCache(capacity=2))


def test_filter_logits_suppresses_specials_and_applies_top_k_and_top_p_as_hf():
    logits = torch.full((1, 8292), -1e4)
    logits[0, :4] = torch.tensor([4.0, 3.0, 2.0, 1.0])  # softmax: 0.64, 0.24, 0.09, 0.03
    logits[0, 8200] = 100.0  # a special id: never sampled
    kept = torch.isfinite(filter_logits(logits, top_k=2))
    assert kept[0, :2].all() and not kept[0, 2:].any()
    probs = filter_logits(logits, top_p=0.5).softmax(-1)
    assert probs[0, 0] == 1 and probs[0, 1:].sum() == 0  # the top token alone holds > 50%
    probs = filter_logits(logits, top_p=0.8).softmax(-1)
    assert (probs[0, :2] > 0).all() and probs[0, 2:].sum() == 0  # 0.64 < 0.8 <= 0.88
    assert filter_logits(logits, top_p=0.0).softmax(-1)[0, 0] == 1  # the first token always stays
    assert not torch.isfinite(filter_logits(logits)[0, 8192:]).any()
    assert torch.isfinite(filter_logits(logits, num_codes=1024)[0, :1024]).all()
    assert not torch.isfinite(filter_logits(logits, num_codes=1024)[0, 1024:]).any()
