"""`uvd stats`: the JSON + HTML report of a build (`uvd plan` is in test_pipeline_estimate.py)."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
from click.testing import CliRunner
from fixtures.common import photo, video_frames, write_image, write_video

from uvd.cli import main
from uvd.pipeline.graph import job
from uvd.pipeline.records.config import BuildConfig, SourceConfig
from uvd.pipeline.tools.stats import psnr


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    root = tmp_path_factory.mktemp("stats")
    for i in range(5):
        write_image(root / "images" / f"p{i}.jpg", photo(i))
    write_video(root / "videos" / "v.mp4", video_frames(24))
    (root / "images" / "broken.png").write_bytes(b"not a png")
    sources = [SourceConfig(name="images", spec="images", root=str(root / "images")),
               SourceConfig(name="videos", spec="videos", root=str(root / "videos"))]
    job.run(sources, str(root / "out"), BuildConfig(tokenizer="random:tiny", samples_per_shard=2), device="cpu")
    return root / "out"


def test_stats_report_counts_rejects_histograms_and_psnr(build):
    result = CliRunner().invoke(main, ["stats", str(build), "--psnr-per-shard", "2"])
    assert result.exit_code == 0, result.output
    report = json.loads((build / "stats.json").read_text())
    assert report["per_source"]["images"] == {"sentences": 5, "images": 5, "tokens": 5 * 256}
    assert report["per_source"]["videos"]["images"] == 16
    assert report["rejects_by_reason"] == {"unreadable_image": 1}
    assert report["totals"]["tokens"] == sum(v["tokens"] for v in report["per_source"].values())
    assert len(report["shard_bytes"]) == report["totals"]["shards"] >= 2
    assert sum(report["token_histogram"]) == report["totals"]["tokens"]
    assert report["dedup"] == {"duplicate_images": 0, "duplicate_sentences": 0}
    measured = report["detokenization_psnr"]
    assert measured and all(5 < v["mean_db"] < 60 for v in measured.values())  # random weights: poor, but finite
    page = (build / "stats.html").read_text()
    assert len(re.findall(r'<img alt="[a-z_]+" src="data:image/png;base64,', page)) == 3
    assert "Rejects by reason" in page and "unreadable_image" in page


def test_psnr():
    a = np.zeros((4, 4, 3), np.uint8)
    assert math.isinf(psnr(a, a))
    assert psnr(a, a + 255) == pytest.approx(0.0)
    assert psnr(a, a + 1) == pytest.approx(10 * math.log10(255**2))
