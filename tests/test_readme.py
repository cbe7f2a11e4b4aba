"""What the README quotes, checked against the code: the spec count, the paths `make demo` writes,
and the bundled tokenizer's held-out PSNR."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import numpy as np
import pytest
import skimage.data
import torch

from uvd.dataset_specs import all_specs
from uvd.media.images import resize_still_fast
from uvd.tokenizer import load_tokenizer
from uvd.tokenizer.losses import psnr

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
GENERIC_SPECS = {"images", "videos"}  # the README names these two, then counts "the other" specs
METRICS = json.loads((REPO / "tokenizer" / "weights" / "bundled" / "metrics.json").read_text())


def one(pattern: str) -> re.Match:
    found = list(re.finditer(pattern, README))
    assert len(found) == 1, f"README quotes {pattern!r} {len(found)} times"
    return found[0]


def test_spec_count():
    assert GENERIC_SPECS <= set(all_specs())
    assert int(one(r"the other (\d+) specs").group(1)) == len(all_specs()) - len(GENERIC_SPECS)


def demo_writes() -> set[str]:
    """Every path the Makefile's demo target writes: sample-data's folder, each --out, and the
    stats prefix's .json and .html."""
    makefile = (REPO / "Makefile").read_text()
    demo = re.search(r"^DEMO\s*:=\s*(\S+)", makefile, re.M).group(1)
    recipe = re.search(r"^demo:.*?\n((?:\t.*\n)+)", makefile, re.M).group(1).replace("\\\n", " ")
    written = set()
    for line in recipe.splitlines():
        words = shlex.split(line.strip().replace("$(DEMO)", demo))
        if "sample-data" in words:
            written.add(words[words.index("sample-data") + 1])
        outs = [words[i + 1] for i, w in enumerate(words) if w == "--out"]
        if "stats" in words:
            written |= {f"{out}.{ext}" for out in outs for ext in ("json", "html")}
        else:
            written |= set(outs)
    return written


def test_demo_paths_are_what_make_demo_writes():
    quoted = set(re.findall(r"`(out/demo/[^`\s]+)`", README))
    assert {"out/demo/stats.html", "out/demo/shards", "out/demo/checkpoint"} <= quoted
    assert quoted <= demo_writes(), quoted - demo_writes()


def test_held_out_psnr_claim_matches_the_bundled_tokenizers_record():
    claim = one(r"(\d+) dB mean PSNR over (\d+) held-out\s+frames, (\d+) of them video")
    mean_db, frames, video = (int(g) for g in claim.groups())
    photos = [f for f in METRICS["val_files"] if f.endswith((".png", ".jpg"))]
    assert round(METRICS["final_validation"]["psnr"]) == mean_db and METRICS["val_frames"] == frames
    assert frames - len(photos) == video  # one frame per held-out photo, the rest from the clip


@pytest.mark.slow
def test_held_out_photos_score_what_the_readme_says():
    claim = one(r"the (\d+) held-out photos score (\d+)-(\d+) dB")
    count, low, high = (int(g) for g in claim.groups())
    names = [f.rsplit(".", 1)[0] for f in METRICS["val_files"] if f.endswith((".png", ".jpg"))]
    assert len(names) == count
    frames = np.stack([resize_still_fast(np.ascontiguousarray(getattr(skimage.data, n)()), 256) for n in names])
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255
    model = load_tokenizer("bundled")
    scores = psnr(model.decode_code(model.encode(x)), x).tolist()
    assert all(low <= s < high + 1 for s in scores), dict(zip(names, scores))
    assert round(min(scores)) == low and round(max(scores)) == high
