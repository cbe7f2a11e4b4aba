import math

import pytest
import torch

from uvd.model.llama import (
    CONFIGS,
    MLP,
    NUM_CODES,
    NUM_SPECIAL,
    Attention,
    Llama,
    LlamaConfig,
    RMSNorm,
    apply_rotary,
    document_causal_mask,
    get_config,
    rotary_cos_sin,
)


def tiny_model(seed: int = 0) -> Llama:
    torch.manual_seed(seed)
    return Llama(get_config("debug", max_seq_len=64)).eval()


def test_vocab_is_codes_plus_specials():
    assert NUM_CODES == 8192 and NUM_SPECIAL == 100
    assert all(cfg.vocab_size == 8292 for cfg in CONFIGS.values())


def test_size_table_matches_lvm_release():
    shapes = {name: (c.d_model, c.ff_dim, c.n_layers, c.n_heads) for name, c in CONFIGS.items()}
    assert shapes == {
        "vqlm_100m": (640, 1664, 22, 10), "vqlm_300m": (1024, 2688, 22, 8),
        "vqlm_600m": (1536, 4096, 22, 16), "vqlm_1b": (2048, 5504, 22, 16),
        "vqlm_3b": (3200, 8640, 26, 32), "vqlm_7b": (4096, 11008, 32, 32),
        "vqlm_13b": (5120, 13824, 40, 40), "vqlm_20b": (6144, 16128, 46, 48),
        "vqlm_30b": (6656, 17920, 60, 52), "debug": (128, 352, 2, 4),
    }
    assert all(c.max_seq_len == 4096 and c.rope_theta == 10000.0 for c in CONFIGS.values())


def test_get_config_unknown_name_lists_choices():
    with pytest.raises(KeyError, match="vqlm_100m.*debug"):
        get_config("vqlm_5b")
    assert get_config("debug", max_seq_len=8).max_seq_len == 8
    assert CONFIGS["debug"].max_seq_len == 4096  # the table itself is untouched


def test_bad_head_split_rejected():
    with pytest.raises(ValueError, match="divisible"):
        LlamaConfig(d_model=100, ff_dim=8, n_layers=1, n_heads=3)


@pytest.mark.parametrize("name", ["vqlm_100m", "vqlm_300m", "vqlm_1b"])
def test_param_count_matches_closed_form(name):
    cfg = CONFIGS[name]
    with torch.device("meta"):
        model = Llama(cfg)
    d, ff, V, L = cfg.d_model, cfg.ff_dim, cfg.vocab_size, cfg.n_layers
    closed_form = V * d + V * d + L * (4 * d * d + 3 * d * ff + 2 * d) + d
    print(f"{name}: {model.num_params():,} parameters")
    assert model.num_params() == closed_form == cfg.num_params()


def test_state_dict_keys_are_hf_llama_keys():
    keys = set(tiny_model().state_dict())
    layer = {f"model.layers.{i}.{k}.weight" for i in range(2) for k in (
        "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
        "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj", "input_layernorm", "post_attention_layernorm")}
    assert keys == layer | {"model.embed_tokens.weight", "model.norm.weight", "lm_head.weight"}


def test_forward_shapes_and_finite_loss():
    model = tiny_model()
    ids = torch.randint(0, NUM_CODES, (2, 16))
    logits, loss = model(ids)
    assert logits.shape == (2, 16, 8292) and loss is None
    logits, loss = model(ids[:, :-1], ids[:, 1:])
    assert logits.shape == (2, 15, 8292) and loss.ndim == 0 and torch.isfinite(loss)
    assert abs(loss.item() - math.log(8292)) < 0.5  # near-uniform at init


def test_loss_mask_averages_only_kept_positions():
    model = tiny_model()
    ids, targets = torch.randint(0, NUM_CODES, (2, 12)), torch.randint(0, NUM_CODES, (2, 12))
    mask = torch.zeros(2, 12, dtype=torch.bool)
    mask[0, :5] = True
    logits, loss = model(ids, targets, mask)
    manual = torch.nn.functional.cross_entropy(logits[0, :5], targets[0, :5])
    assert torch.allclose(loss, manual, atol=1e-5)


def test_causal_future_tokens_do_not_change_earlier_logits():
    model = tiny_model()
    ids = torch.randint(0, NUM_CODES, (1, 20))
    changed = ids.clone()
    changed[0, 12:] = (changed[0, 12:] + 1) % NUM_CODES
    with torch.no_grad():
        a, _ = model(ids)
        b, _ = model(changed)
    assert torch.allclose(a[:, :12], b[:, :12], atol=1e-5)
    assert not torch.allclose(a[:, 12:], b[:, 12:], atol=1e-3)


def test_rejects_sequences_longer_than_max_seq_len():
    with pytest.raises(ValueError, match="max_seq_len"):
        tiny_model()(torch.zeros(1, 65, dtype=torch.long))


def test_rmsnorm_matches_formula():
    norm = RMSNorm(8, eps=1e-6)
    with torch.no_grad():
        norm.weight.copy_(torch.linspace(0.5, 2.0, 8))
    x = torch.randn(3, 5, 8)
    expected = x / torch.sqrt((x * x).mean(-1, keepdim=True) + 1e-6) * norm.weight
    assert torch.allclose(norm(x), expected, atol=1e-6)


def test_rope_scores_depend_only_on_relative_position():
    head_dim, T = 16, 40
    cos, sin = rotary_cos_sin(T, head_dim, 10000.0)
    q, k = torch.randn(head_dim), torch.randn(head_dim)
    # The same q and k placed at every position: (1, 1, T, Dh).
    rq = apply_rotary(q.expand(1, 1, T, head_dim), cos, sin)[0, 0]
    rk = apply_rotary(k.expand(1, 1, T, head_dim), cos, sin)[0, 0]
    scores = rq @ rk.T  # scores[m, n] = <rope(q, m), rope(k, n)>
    for offset in (0, 3, -7):
        diag = torch.diagonal(scores, offset=offset)
        assert torch.allclose(diag, diag[0].expand_as(diag), atol=1e-4)
    assert not torch.allclose(scores[0, 0], scores[0, 5])
    # Rotations preserve norms, and position 0 is the identity.
    assert torch.allclose(rq.norm(dim=-1), q.norm().expand(T), atol=1e-4)
    assert torch.allclose(rq[0], q)


def test_rope_uses_rotate_half_pairing():
    # HF layout: dimension i rotates with i + head_dim/2 at frequency theta^(-2i/head_dim).
    head_dim = 8
    cos, sin = rotary_cos_sin(3, head_dim, 10000.0)
    x = torch.zeros(1, 1, 3, head_dim)
    x[..., 1] = 1.0  # unit vector on dim 1: rotates into dim 1 + 4
    y = apply_rotary(x, cos, sin)[0, 0, 2]
    angle = 2 * 10000.0 ** (-2 * 1 / head_dim)
    expected = torch.zeros(head_dim)
    expected[1], expected[5] = math.cos(angle), math.sin(angle)
    assert torch.allclose(y, expected, atol=1e-6)


def test_document_mask_isolates_packed_sentences():
    model = tiny_model()
    a, b = torch.randint(0, NUM_CODES, (1, 7)), torch.randint(0, NUM_CODES, (1, 9))
    packed = torch.cat([a, b], dim=1)
    doc_ids = torch.tensor([[0] * 7 + [1] * 9])
    with torch.no_grad():
        packed_logits, _ = model(packed, attention_mask=document_causal_mask(doc_ids))
        alone, _ = model(b)
        plain, _ = model(packed, attention_mask=document_causal_mask(torch.zeros_like(doc_ids)))
        causal, _ = model(packed)
    # RoPE is relative, so b's logits do not depend on where b starts in the row.
    assert torch.allclose(packed_logits[:, 7:], alone, atol=1e-4)
    assert torch.allclose(plain, causal, atol=1e-5)


# --- the fast paths (fused projections, signed-sin RoPE, causal SDPA) against plain computations --------

def reference_rope(x: torch.Tensor, theta: float) -> torch.Tensor:
    """x (B, H, T, Dh): each pair (i, i + Dh/2) turned by angle t * theta^(-2i/Dh), in float64."""
    T, Dh = x.shape[-2], x.shape[-1]
    half = Dh // 2
    angle = torch.tensor([[t * theta ** (-2 * i / Dh) for i in range(half)] for t in range(T)], dtype=torch.float64)
    x1, x2 = x[..., :half].double(), x[..., half:].double()
    return torch.cat([x1 * angle.cos() - x2 * angle.sin(), x2 * angle.cos() + x1 * angle.sin()], dim=-1).float()


def reference_attention(attn: Attention, x: torch.Tensor, theta: float) -> torch.Tensor:
    """Separate q/k/v matmuls, explicit causal mask, softmax(q k^T / sqrt(Dh)) v, o_proj."""
    B, T, D = x.shape
    H = attn.n_heads
    Dh = D // H

    def heads(w):
        return (x @ w.T).view(B, T, H, Dh).transpose(1, 2)

    q, k = reference_rope(heads(attn.q_proj.weight), theta), reference_rope(heads(attn.k_proj.weight), theta)
    scores = (q @ k.transpose(-1, -2)) / math.sqrt(Dh)
    scores = scores.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf"))
    y = (scores.softmax(dim=-1) @ heads(attn.v_proj.weight)).transpose(1, 2).reshape(B, T, D)
    return y @ attn.o_proj.weight.T


def outputs_and_grads(module: torch.nn.Module, fn, x: torch.Tensor, upstream: torch.Tensor) -> list[torch.Tensor]:
    """fn(x)'s value, then the gradients of <fn(x), upstream> w.r.t. x and every parameter of module."""
    module.zero_grad(set_to_none=True)
    x = x.detach().requires_grad_(True)
    y = fn(x)
    (y * upstream).sum().backward()
    return [y.detach(), x.grad] + [p.grad for p in module.parameters()]


def test_rope_equals_pairwise_rotation_in_both_layouts():
    torch.manual_seed(0)
    B, H, T, Dh = 2, 3, 17, 16
    x = torch.randn(B, H, T, Dh)
    cos, sin = rotary_cos_sin(T, Dh, 500.0)
    expected = reference_rope(x, 500.0)
    assert torch.allclose(apply_rotary(x, cos, sin), expected, atol=1e-5)
    # The layout Attention uses: q and k side by side, (B, T, 2, H, Dh), tables as (T, 1, 1, Dh).
    qk = torch.stack([x, 2 * x], dim=1).permute(0, 3, 1, 2, 4)  # (B, 2, H, T, Dh) -> (B, T, 2, H, Dh)
    rotated = apply_rotary(qk, cos[:, None, None], sin[:, None, None]).permute(0, 2, 3, 1, 4)  # -> (B, 2, H, T, Dh)
    assert torch.allclose(rotated[:, 0], expected, atol=1e-5) and torch.allclose(rotated[:, 1], 2 * expected, atol=1e-5)


def test_attention_equals_plain_masked_softmax_with_gradients():
    torch.manual_seed(0)
    cfg = LlamaConfig(d_model=48, ff_dim=64, n_layers=1, n_heads=3, rope_theta=100.0)
    attn = Attention(cfg)
    for p in attn.parameters():
        torch.nn.init.normal_(p, std=0.2)  # large enough for attention to be far from uniform
    x, upstream = torch.randn(2, 21, 48), torch.randn(2, 21, 48)
    cos, sin = rotary_cos_sin(21, cfg.head_dim, cfg.rope_theta)
    fast = outputs_and_grads(attn, lambda x: attn(x, cos, sin), x, upstream)
    plain = outputs_and_grads(attn, lambda x: reference_attention(attn, x, cfg.rope_theta), x, upstream)
    assert len(fast) == 2 + 4  # output, x and the four projection weights
    for a, b in zip(fast, plain):
        assert torch.allclose(a, b, atol=1e-5), (a - b).abs().max()


def test_swiglu_equals_separate_projections_with_gradients():
    torch.manual_seed(0)
    mlp = MLP(LlamaConfig(d_model=32, ff_dim=80, n_layers=1, n_heads=2))
    x, upstream = torch.randn(3, 7, 32), torch.randn(3, 7, 32)

    def plain(x):
        gate, up = x @ mlp.gate_proj.weight.T, x @ mlp.up_proj.weight.T
        return (gate * torch.sigmoid(gate) * up) @ mlp.down_proj.weight.T

    fast, reference = outputs_and_grads(mlp, mlp, x, upstream), outputs_and_grads(mlp, plain, x, upstream)
    for a, b in zip(fast, reference):
        assert torch.allclose(a, b, atol=1e-6), (a - b).abs().max()
