"""Every dataset spec: it covers the UVDv1 table, builds from its fixture in its real layout into
its sentence layout, rebuilds identically from its metadata, and mixes to UVDv1's shares."""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from annotator_models import export_all
from click.testing import CliRunner
from fixtures import all_fixtures
from PIL import Image
from spec_harness import build_specs, fixture_root_for, read_sentences

from uvd.cli import main
from uvd.dataset_specs import DatasetSpec, all_specs, get_spec, register, uvdv1_rows
from uvd.dataset_specs.base import MODEL_VIEWS, TRANSFORM_VIEWS
from uvd.format.tables import read_manifest
from uvd.pipeline import steps
from uvd.pipeline.graph import job
from uvd.pipeline.planning.layouts import LAYOUTS
from uvd.pipeline.readers import make_reader, reader_class
from uvd.pipeline.records.config import BuildConfig, SourceConfig
from uvd.pipeline.tools.local import rebuild_sentence
from uvd.pipeline.views.annotators import AnnotatorMissing

SPECS = all_specs()
GENERIC = ("images", "videos")  # folders, not UVDv1 rows


# --- the registry -------------------------------------------------------------------------------

def test_every_uvdv1_row_is_covered_once():
    """Each row of the table maps to one or more specs whose shares of it sum to 1."""
    shares: dict[tuple[str, str], float] = defaultdict(float)
    for spec in SPECS.values():
        if spec.uvdv1:
            shares[(spec.uvdv1.dataset, spec.uvdv1.annotation_type)] += spec.uvdv1.fraction
    rows = {(r.dataset, r.annotation_type): r for r in uvdv1_rows()}
    assert len(rows) == 41  # the paper's table, packaged verbatim
    missing = sorted(set(rows) - set(shares))
    assert not missing, f"UVDv1 rows without a spec: {missing}"
    assert set(shares) <= set(rows)
    for row, share in shares.items():
        assert share == pytest.approx(1.0, abs=1e-3), f"{row}: fractions sum to {share}"
    total = sum(s.uvdv1_tokens_millions for s in SPECS.values())
    assert total == pytest.approx(sum(r.tokens_millions for r in rows.values()), rel=1e-3)
    assert len(SPECS) >= 50


def test_duplicate_spec_names_are_refused():
    spec = get_spec("images")
    with pytest.raises(ValueError, match="registered twice"):
        register(DatasetSpec(name=spec.name, title="again", group=spec.group, reader=spec.reader,
                             layout=spec.layout, views=spec.views))


def test_specs_name_real_readers_layouts_and_views():
    for spec in SPECS.values():
        reader = make_reader(spec)  # refuses unknown reader_args
        assert spec.layout in LAYOUTS, spec.name
        assert set(spec.layout_args) <= set(LAYOUTS[spec.layout].defaults), spec.name
        for view in spec.views:
            base, _, derived = view.partition("|")
            assert base in reader_class(spec.reader).views, f"{spec.name}: {reader.name} has no view {base!r}"
            assert not derived or derived in TRANSFORM_VIEWS + MODEL_VIEWS, f"{spec.name}: {view}"
        if spec.name not in GENERIC:  # plain folders have no license or paper of their own
            assert spec.license and spec.homepage and spec.citation, f"{spec.name}: license, homepage, citation"


def test_every_spec_folder_has_a_fixture():
    assert {s.folder for s in SPECS.values()} <= set(all_fixtures())


def test_datasets_list_shows_every_spec_and_what_is_found(tmp_path):
    fixture_root_for(["coco_detection", "images"], tmp_path)
    result = CliRunner().invoke(main, ["datasets", "list", "--root", str(tmp_path)])
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.output.splitlines() if line.strip()}
    for name, spec in SPECS.items():
        assert name in lines, name
        assert spec.group in lines[name] and spec.layout in lines[name]
    assert lines["coco_detection"].rstrip().endswith("yes") and lines["kinetics700"].rstrip().endswith("no")
    assert "363.00" in lines["coco_detection"]  # its UVDv1 tokens (millions)


def test_datasets_show_explains_a_spec_and_renders_its_sentence(tmp_path):
    fixture_root_for(["coco_pose"], tmp_path)
    png = tmp_path / "pose.png"
    result = CliRunner().invoke(main, ["datasets", "show", "coco_pose", "--root", str(tmp_path), "--out", str(png)])
    assert result.exit_code == 0, result.output
    assert "coco_pose" in result.output and get_spec("coco_pose").layout in result.output
    grid = np.asarray(Image.open(png).convert("RGB"))
    assert grid.shape[0] >= 2 * 256 and grid.shape[1] >= 4 * 256  # [x, y] x 8 pairs: a 4-wide grid of 256-px images
    assert grid.std() > 10  # real pixels, not a blank canvas
    missing = CliRunner().invoke(main, ["datasets", "show", "coco_pose", "--root", str(tmp_path / "nowhere"),
                                        "--out", str(tmp_path / "x.png")])
    assert missing.exit_code != 0 and "nowhere" in missing.output


def test_models_are_required_clearly(tmp_path):
    source = SourceConfig(name="coco_depth", spec="coco_depth", root=str(tmp_path))
    with pytest.raises(AnnotatorMissing, match="coco_depth.*depth annotator.*DPT.*--annotator depth=DIR"):
        steps.validate_sources([source], BuildConfig())
    steps.validate_sources([SourceConfig(name="coco_edges", spec="coco_edges", root=str(tmp_path))], BuildConfig())


# --- every spec, built from its fixture ------------------------------------------------------------

@pytest.fixture(scope="session")
def fixture_root(tmp_path_factory) -> Path:
    return fixture_root_for(SPECS, tmp_path_factory.mktemp("datasets"))


@pytest.fixture(scope="session")
def annotators(tmp_path_factory) -> dict[str, str]:
    return export_all(tmp_path_factory.mktemp("annotators"))


@pytest.fixture(scope="session")
def all_built(fixture_root, annotators, tmp_path_factory):
    out = tmp_path_factory.mktemp("all_specs")
    summary = build_specs(list(SPECS), fixture_root, out, annotators=annotators)
    by_source = defaultdict(list)
    for sentence in read_sentences(out):
        by_source[sentence.meta.source].append(sentence)
    return out, summary, by_source


def check_structure(spec: DatasetSpec, meta) -> None:
    """The sentence has the shape its layout promises, with the spec's views."""
    views, frames, items = list(meta.views), list(meta.frame_indices), list(meta.image_items)
    n = len(views)
    if spec.layout == "single_image":
        assert views == list(spec.views)
    elif spec.layout in ("video", "frame_sequence"):
        assert n == 16 and set(views) == {spec.views[0]} and len(set(items)) == 1
        steps = {b - a for a, b in zip(frames, frames[1:])}
        assert len(steps) == 1 and steps.pop() >= 1
    elif spec.layout in ("pairs", "colorization", "inpainting"):
        assert n % 2 == 0 and 2 <= n <= 16 and views == list(spec.views) * (n // 2)
        assert all(items[i] == items[i + 1] for i in range(0, n, 2))
        assert len(set(items)) == n // 2  # unrelated pairs: each item once
    elif spec.layout == "multimodal":
        k = len(spec.views)
        shots = [views[i:i + k] for i in range(0, n, k)]
        assert n % k == 0 and all(sorted(s) == sorted(spec.views) for s in shots) and len(set(map(tuple, shots))) == 1
    elif spec.layout == "category":
        assert set(views) == {spec.views[0]} and len(set(items)) == n
    elif spec.layout == "multiview":
        assert set(views) == {spec.views[0]} and frames == sorted(frames) and len(set(items)) == 1
    elif spec.layout == "multi_sequence":  # shots x tasks x 16 frames: tasks separate, or interleaved
        k = len(spec.views)
        separate = views[:16] == [spec.views[0]] * 16
        assert n % (16 * k) == 0 and len(set(items)) == n // (16 * k)
        if not separate:
            assert views == list(spec.views) * (n // k) and all(len(set(frames[i:i + k])) == 1 for i in range(0, n, k))
    elif spec.layout == "co3d":  # shots x [4 frames, 4 of one annotation]
        assert n % 8 == 0 and views[:4] == [spec.views[0]] * 4 and views[4] in spec.views[1:]
        assert frames[:4] == frames[4:8] and len(set(items)) == n // 8
    else:
        raise AssertionError(f"no structure check for layout {spec.layout}")


@pytest.mark.parametrize("name", sorted(SPECS))
def test_spec_builds_from_its_fixture(name, all_built):
    _, summary, by_source = all_built
    spec = SPECS[name]
    sentences = by_source[name]
    assert sentences, f"{name}: no sentence built; rejects: {summary['rejects']}"
    for s in sentences:
        assert s.meta.layout == spec.layout and s.meta.group == spec.group
        assert s.tokens.shape == (s.num_images, 256)
        check_structure(spec, s.meta)
    counts = summary["items"][name]
    assert counts["written"] > 0 and counts["unaccounted"] == 0, counts


def test_every_listed_item_is_accounted_for(all_built):
    _, summary, _ = all_built
    assert summary["unaccounted_items"] == 0
    assert set(summary["inputs"]) == set(SPECS)


def test_sentences_rebuild_identically_from_their_metadata(all_built, fixture_root, annotators):
    """One sentence of every layout, made again from its meta.json alone: the same tokens."""


    out, _, by_source = all_built
    prov = read_manifest(str(out)).provenance
    config = BuildConfig(**prov["build_config"])
    one_per_layout = {}
    for name in sorted(by_source):
        one_per_layout.setdefault(SPECS[name].layout, by_source[name][0])
    assert len(one_per_layout) == 11
    for layout, sentence in sorted(one_per_layout.items()):
        spec = SPECS[sentence.meta.source]
        source = SourceConfig(name=spec.name, spec=spec.name, root=str(fixture_root / spec.folder))
        again = rebuild_sentence(source, sentence.meta, dataclasses.replace(config))
        assert (again == sentence.tokens).all(), f"{layout}: {int((again != sentence.tokens).sum())} tokens differ"


# --- mixtures ------------------------------------------------------------------------------------

def test_uvdv1_mixture_over_all_fixtures_follows_the_group_shares(fixture_root, annotators, tmp_path):
    out = tmp_path / "mix"
    result = CliRunner().invoke(main, ["build", "--root", str(fixture_root), "--mix", "uvdv1", "--out", str(out),
                                       "--tokenizer", "random:tiny", "--no-progress", "--device", "cpu",
                                       *[f"--annotator={k}={v}" for k, v in annotators.items()]])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "build_summary.json").read_text())
    mixture = summary["mixture"]
    uvdv1 = {n for n, s in SPECS.items() if s.uvdv1}
    assert set(mixture["sources"]) == uvdv1  # every UVDv1 spec found under the root, and only those
    for group, shares in mixture["groups"].items():
        assert abs(shares["target_share"] - shares["actual_share"]) <= 0.10, (group, shares)
    assert "target vs actual" in result.output and "group videos" in result.output
    assert summary["unaccounted_items"] == 0 and summary["skipped_items"] > 0


def test_weighted_mixture_selects_each_source_to_its_share(fixture_root, tmp_path):
    weights = tmp_path / "mix.toml"
    weights.write_text("ucf101 = 1\ndavis = 1\nlol_enhance = 1\n")
    specs = ["ucf101", "davis", "lol_enhance"]
    out = tmp_path / "weighted"
    sources = [SourceConfig(name=n, spec=n, root=str(fixture_root / SPECS[n].folder)) for n in specs]

    summary = job.run(sources, str(out), BuildConfig(tokenizer="random:tiny", mix=str(weights),
                                                     layout_args={"lol_enhance": {"epochs": 1}}), device="cpu")
    shares = summary["mixture"]["sources"]
    assert shares["lol_enhance"]["target_share"] == pytest.approx(1 / 3)
    for name in specs:
        assert abs(shares[name]["actual_share"] - shares[name]["target_share"]) <= 0.10, shares
