"""``uvd stats``: what a build holds, and how faithful its tokens are, as JSON and a self-contained HTML page.

Counts come from the shards themselves (read back, validated against the manifest), rejects and
dedup counts from the build's records. Detokenization PSNR compares, for a sample of sentences
of each shard, the images decoded from their tokens with the same images rendered again from the
source data (pipeline/tools/local.py): how much the tokens lose. Plots are PNGs embedded in the HTML.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections import Counter, defaultdict

import numpy as np

from uvd.format import storage
from uvd.format.reading import read_shard
from uvd.format.sample import VisualSentence
from uvd.format.tables import SUMMARY_NAME, read_manifest, read_rejects
from uvd.pipeline import steps
from uvd.pipeline.records.config import BuildConfig, SourceConfig
from uvd.pipeline.tools.local import probed_items, sentence_frames
from uvd.tokenizer import decode_frames, load_tokenizer
from uvd.tokenizer.frames import preview


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two uint8 images (inf if identical)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def collect(build_dir: str, *, psnr_per_shard: int = 1) -> dict:
    """Everything the report shows, as plain JSON-able data."""
    manifest = read_manifest(build_dir)
    summary = json.loads(storage.read_text(storage.join(build_dir, SUMMARY_NAME)))
    per_source: dict[str, dict[str, int]] = defaultdict(lambda: {"sentences": 0, "images": 0, "tokens": 0})
    codebook = int(manifest.tokenizer.get("codebook_size") or 8192)
    token_counts = np.zeros(codebook, dtype=np.int64)
    samples: list[VisualSentence] = []
    for shard in manifest.shards:
        for i, sentence in enumerate(read_shard(shard)):
            s = per_source[sentence.meta.source]
            s["sentences"] += 1
            s["images"] += sentence.num_images
            s["tokens"] += sentence.num_tokens
            token_counts += np.bincount(sentence.tokens.reshape(-1), minlength=codebook)[:codebook]
            if i < psnr_per_shard:
                samples.append(sentence)
    shard_bytes = [shard.bytes for shard in manifest.shards]
    probs = token_counts[token_counts > 0] / max(1, token_counts.sum())
    return {
        "build": build_dir,
        "tokenizer": manifest.tokenizer,
        "per_source": dict(sorted(per_source.items())),
        "totals": {"shards": len(manifest.shards), "sentences": manifest.num_samples, "tokens": manifest.num_tokens,
                   "bytes": sum(shard_bytes), "bytes_per_token": sum(shard_bytes) / max(1, manifest.num_tokens)},
        "rejects_by_reason": dict(sorted(Counter(r.reason for r in read_rejects(build_dir)).items())),
        "dedup": summary.get("dedup", {}),
        "items": summary.get("items", {}),
        "shard_bytes": shard_bytes,
        "token_histogram": token_counts.tolist(),
        "codes_used": int((token_counts > 0).sum()),
        "token_entropy_bits": float(-(probs * np.log2(probs)).sum()) if len(probs) else 0.0,
        "detokenization_psnr": detokenization_psnr(manifest.provenance, samples),
    }


def detokenization_psnr(provenance: dict, samples: list[VisualSentence]) -> dict:
    """Per source: mean PSNR of decode(tokens) against the images drawn again from the sources."""
    if not samples:
        return {}
    config = BuildConfig(**provenance["build_config"])
    tokenizer = load_tokenizer(config.tokenizer)
    sources = {s["name"]: SourceConfig(name=s["name"], spec=s["spec"], root=s["root"])
               for s in provenance.get("sources", []) if "spec" in s}
    by_source: dict[str, list[VisualSentence]] = defaultdict(list)
    for s in samples:
        by_source[s.meta.source].append(s)
    out = {}
    with steps.DecodeResources(config) as ctx:
        for name, sentences in sorted(by_source.items()):
            if name not in sources:
                continue
            keys = {k for s in sentences for k in s.meta.item_keys}
            items = probed_items(sources[name], keys, config, ctx)
            values = []
            for sentence in sentences:
                if not set(sentence.meta.item_keys) <= set(items):
                    continue  # the source changed since the build: nothing to compare with
                original = preview(sentence_frames(sources[name], sentence.meta, items, config, ctx))
                values += [psnr(a, b) for a, b in zip(original, decode_frames(tokenizer, sentence.tokens))]
            finite = [v for v in values if math.isfinite(v)]
            if values:
                out[name] = {"images": len(values), "mean_db": float(np.mean(finite)) if finite else math.inf,
                             "min_db": float(np.min(finite)) if finite else math.inf}
    return out


# --- the page ---------------------------------------------------------------------------------------

def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def plots(stats: dict) -> dict[str, str]:
    """Base64 PNGs: shard sizes, token ids, tokens per source."""
    import matplotlib  # noqa: PLC0415 - about 0.5 s to import, and only the HTML report draws

    matplotlib.use("Agg")  # no display: must come before pyplot is imported
    import matplotlib.pyplot as plt  # noqa: PLC0415

    out = {}
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.hist(np.asarray(stats["shard_bytes"]) / 1e3, bins=min(40, max(5, len(stats["shard_bytes"]))))
    ax.set_xlabel("shard size (kB)")
    ax.set_ylabel("shards")
    out["shard_sizes"] = _png(fig)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 3))
    hist = np.asarray(stats["token_histogram"])
    ax.bar(np.arange(len(hist)), hist, width=1.0)
    ax.set_xlabel("token id")
    ax.set_ylabel("count")
    ax.set_title(f"{stats['codes_used']} of {len(hist)} codes used, {stats['token_entropy_bits']:.2f} bits")
    out["token_ids"] = _png(fig)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 0.35 * max(3, len(stats["per_source"])) + 1))
    names = list(stats["per_source"])
    ax.barh(names, [stats["per_source"][n]["tokens"] for n in names])
    ax.set_xlabel("tokens")
    out["tokens_by_source"] = _png(fig)
    plt.close(fig)
    return out


def render_html(stats: dict, images: dict[str, str]) -> str:
    def table(headers, rows) -> str:
        head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
        return f"<table><tr>{head}</tr>{body}</table>"

    t = stats["totals"]
    psnr_rows = [(s, v["images"], f"{v['mean_db']:.2f}", f"{v['min_db']:.2f}")
                 for s, v in stats["detokenization_psnr"].items()]
    parts = [
        f"<h1>uvd build report</h1><p>{html.escape(stats['build'])}: {t['shards']} shards, {t['sentences']:,} "
        f"sentences, {t['tokens']:,} tokens, {t['bytes']:,} bytes ({t['bytes_per_token']:.3f} bytes/token); "
        f"tokenizer {html.escape(str(stats['tokenizer'].get('spec')))} "
        f"({'trained' if stats['tokenizer'].get('trained') else 'UNTRAINED'})</p>",
        "<h2>Per source</h2>" + table(["source", "sentences", "images", "tokens"],
                                     [(s, v["sentences"], v["images"], v["tokens"])
                                      for s, v in stats["per_source"].items()]),
        "<h2>Rejects by reason</h2>" + table(["reason", "count"], stats["rejects_by_reason"].items()),
        "<h2>Dedup</h2>" + table(["kind", "dropped"], stats["dedup"].items()),
        "<h2>Detokenization PSNR</h2><p>decode(tokens) vs the images rendered again from the source data.</p>"
        + table(["source", "images", "mean dB", "min dB"], psnr_rows),
        "<h2>Plots</h2>" + "".join(f'<h3>{html.escape(k.replace("_", " "))}</h3>'
                                   f'<img alt="{k}" src="data:image/png;base64,{v}">' for k, v in images.items()),
    ]
    style = ("body{font-family:sans-serif;max-width:960px;margin:2em auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}td:first-child{text-align:left}")
    return f"<!doctype html><html><head><meta charset='utf-8'><title>uvd stats</title><style>{style}</style>" \
           f"</head><body>{''.join(parts)}</body></html>"
