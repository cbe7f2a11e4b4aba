"""Pure sentence assembly: a planned sentence, and putting its tokens together.

A :class:`SentencePlan` is decided before decoding (by the source's layout, see layouts.py)
and travels beside the frames; :func:`assemble_sentence` joins it with the frames' tokens
afterwards and refuses anything incomplete instead of padding it.
"""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np

from uvd.format.sample import SentenceMeta, VisualSentence

# LVM's sentences are mostly up to 16 images (4096 tokens, its context), but its multi-sequence
# lines hold 2 shots x tasks x 16 frames (64 images for 2 tasks) and its CO3D lines 32; the
# trainer cuts long sentences across rows as LVM's EasyLM loader does. The limit only keeps a
# sentence's tokens a sane size (256 images = 65536 tokens).
MAX_IMAGES_PER_SENTENCE = 256


@dataclasses.dataclass(frozen=True)
class SentencePlan:
    """A sentence before tokenization: its key and what each position holds."""

    key: str
    meta: SentenceMeta

    @property
    def num_images(self) -> int:
        return len(self.meta.frame_indices)


class IncompleteSentence(Exception):
    """Some frames of a planned sentence never arrived (or arrived twice)."""

def item_seed(global_seed: int, source: str, item_key: str) -> int:
    """The seed of every random choice for one item, from (global seed, source, item key)."""
    digest = hashlib.sha256(f"{global_seed}\x00{source}\x00{item_key}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1  # fits in int64


def assemble_sentence(plan: SentencePlan, tokens_by_position: list[tuple[int, np.ndarray]]) -> VisualSentence:
    """Order the per-image tokens by position; every position exactly once, or raise."""
    positions = sorted(p for p, _ in tokens_by_position)
    if positions != list(range(plan.num_images)):
        raise IncompleteSentence(
            f"{plan.key} ({plan.meta.item_keys[0]}): expected positions 0..{plan.num_images - 1}, got {positions}")
    ordered = [np.asarray(t, dtype=np.uint16) for _, t in sorted(tokens_by_position, key=lambda pt: pt[0])]
    lengths = {t.shape for t in ordered}
    if len(lengths) != 1:
        raise IncompleteSentence(f"{plan.key}: images have different token counts {sorted(lengths)}")
    return VisualSentence(key=plan.key, tokens=np.stack(ordered), meta=plan.meta)


def token_sha256(sentence: VisualSentence) -> str:
    """Identity of a sentence's tokens (shape included), for exact dedup across the build."""
    tokens = sentence.tokens
    return hashlib.sha256(f"{tokens.shape}".encode() + tokens.astype("<u2").tobytes()).hexdigest()
