"""COCO (coco reader) and ADE20K / Cityscapes (segmentation_masks reader): listing, rendering,
malformed inputs, and an end-to-end build of every spec of the family from its fixture."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
from annotator_models import export_all
from fixtures import make_fixture
from fixtures.coco import IMAGE_IDS, coco_file_name, counts_to_string, mask_to_counts
from fixtures.common import write_image
from spec_harness import build_specs, listing, read_sentences, sentences_by_source, spec_listing

from uvd.dataset_specs import get_spec
from uvd.media.drawing import PALETTE
from uvd.media.images import DecodeError
from uvd.pipeline.readers import DecodeContext, make_reader
from uvd.pipeline.readers.coco import CocoReader, decode_rle, rle_string_to_counts
from uvd.pipeline.readers.segmentation import SegmentationMasksReader

CTX = DecodeContext(max_pixels=10**8)
COCO_SPECS = ("coco_detection", "coco_pose", "coco_segmentation", "coco_depth", "coco_normals", "coco_edges",
              "coco_multimodal")
SPECS = COCO_SPECS + ("ade20k_segmentation", "cityscapes_segmentation")


@pytest.fixture(scope="module")
def fixture_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("family_coco")
    for folder in ("coco", "ade20k", "cityscapes"):
        make_fixture(folder, root)
    return root






def colour(cat: int) -> np.ndarray:
    return PALETTE[cat]


def instances(root: Path) -> dict:
    return json.loads((root / "coco" / "annotations" / "instances_train2017.json").read_text())


# --- COCO run-length encoding ---------------------------------------------------------------------

def test_compressed_rle_decodes_a_hand_worked_mask():
    # 10x10 with rows 2-3, columns 3-5 set (pycocotools' toBbox test mask): column-major runs
    # [32, 2, 8, 2, 8, 2, 46]; from the 4th count on the string stores differences from two back.
    assert rle_string_to_counts("P128000V1") == [32, 2, 8, 2, 8, 2, 46]
    expected = np.zeros((10, 10), np.uint8)
    expected[2:4, 3:6] = 1
    np.testing.assert_array_equal(decode_rle({"size": [10, 10], "counts": "P128000V1"}), expected)
    np.testing.assert_array_equal(decode_rle({"size": [10, 10], "counts": [32, 2, 8, 2, 8, 2, 46]}), expected)


def test_rle_forms_agree_on_irregular_masks():
    rng = np.random.default_rng(3)
    for h, w in ((7, 13), (40, 33), (1, 5)):
        mask = (rng.random((h, w)) < 0.4).astype(np.uint8)
        mask[0, 0] = 1  # a leading run of 0 zeros
        counts = mask_to_counts(mask)
        np.testing.assert_array_equal(decode_rle({"size": [h, w], "counts": counts}), mask)
        np.testing.assert_array_equal(decode_rle({"size": [h, w], "counts": counts_to_string(counts)}), mask)


def test_rle_counts_that_do_not_cover_the_mask_are_refused():
    with pytest.raises(ValueError, match="cover"):
        decode_rle({"size": [10, 10], "counts": [32, 2, 8]})
    with pytest.raises(ValueError, match="cover"):
        decode_rle({"size": [12, 10], "counts": "P128000V1"})


# --- COCO listing ----------------------------------------------------------------------------------

def test_detection_lists_annotated_images_with_their_boxes(fixture_root):
    items, rejects = spec_listing("coco_detection", fixture_root)
    assert rejects == []
    assert [it.key for it in items] == [coco_file_name(i) for i in IMAGE_IDS[:9]]  # 1000 has no annotations
    assert items[0].paths == (str(fixture_root / "coco" / "train2017" / "000000000139.jpg"),)
    data = instances(fixture_root)
    for item in items:
        image = next(im for im in data["images"] if im["file_name"] == item.key)
        anns = sorted((a for a in data["annotations"] if a["image_id"] == image["id"]), key=lambda a: a["id"])
        ann = item.annotation_json()
        assert ann["size"] == [image["height"], image["width"]]
        assert ann["boxes"] == [[round(v, 1) for v in a["bbox"]] + [a["category_id"]] for a in anns]


def test_pose_lists_people_with_keypoints_only(fixture_root):
    items, rejects = spec_listing("coco_pose", fixture_root)
    assert rejects == []
    keys = [it.key for it in items]
    # 872 has only a crowd (num_keypoints 0), 1000 nothing; 785 has a second person without keypoints
    assert keys == [coco_file_name(i) for i in IMAGE_IDS if i not in (872, 1000)]
    people = {it.key: it.annotation_json()["keypoints"] for it in items}
    assert all(len(p) == 1 and len(p[0]) == 51 for p in people.values())
    assert people[coco_file_name(785)][0][3 * 3 + 2] == 0  # an unlabelled ear stays invisible


def test_segmentation_keeps_polygons_and_both_rle_forms(fixture_root):
    items, rejects = spec_listing("coco_segmentation", fixture_root)
    assert rejects == [] and len(items) == 9
    masks = {it.key: it.annotation_json()["segmentation"] for it in items}
    rle = {k: [m["rle"]["counts"] for m in v if "rle" in m] for k, v in masks.items()}
    assert isinstance(rle[coco_file_name(724)][0], str)  # compressed string
    assert isinstance(rle[coco_file_name(872)][0], list)  # uncompressed counts
    areas = [m for m in masks[coco_file_name(139)]]
    assert [m["category"] for m in areas][0] in (1, 3, 17, 44, 47, 62, 64) and all("polygons" in m for m in areas)


def test_depth_lists_every_image(fixture_root):
    items, _ = spec_listing("coco_depth", fixture_root)
    assert sorted(it.key for it in items) == sorted(coco_file_name(i) for i in IMAGE_IDS)
    assert {it.key: it.annotation_json()["size"] for it in items}[coco_file_name(776)] == [96, 72]


# --- COCO rendering ---------------------------------------------------------------------------------

def render_one(name: str, root: Path, key: str, views: tuple[str, ...]):
    spec = get_spec(name)
    reader = make_reader(spec)
    items, _ = listing(reader, root / spec.folder)
    item = next(it for it in items if it.key == key)
    return item, reader.pictures(item, [(0, v) for v in views], CTX)


def test_boxes_are_drawn_over_the_photo_where_annotated(fixture_root):
    item, out = render_one("coco_detection", fixture_root, coco_file_name(139), ("image", "boxes"))
    photo, boxed = out[(0, "image")].pixels, out[(0, "boxes")].pixels
    assert photo.shape == boxed.shape == (72, 96, 3)
    for x, y, _, h, cat in item.annotation_json()["boxes"]:
        left, top, bottom = int(round(x)), int(round(y)), int(round(y + h))
        middle = (top + bottom) // 2
        assert (boxed[middle, left] == colour(1 + cat)).all()  # the left edge, in the category's colour
    changed = (boxed != photo).any(axis=2)
    assert 0 < changed.mean() < 0.5  # lines only: the photo shows through
    assert not changed[0:5, 0:5].any()  # nothing annotated there


def test_keypoints_are_skeletons_on_black(fixture_root):
    item, out = render_one("coco_pose", fixture_root, coco_file_name(776), ("image", "keypoints"))
    drawing = out[(0, "keypoints")].pixels
    assert drawing.shape == (96, 72, 3)  # the portrait image: (height, width) from the JSON
    person = np.asarray(item.annotation_json()["keypoints"][0]).reshape(17, 3)
    for x, y, v in person:
        if v > 0:
            assert (drawing[int(round(y)), int(round(x))] == 255).all()  # joints are white dots
    assert (drawing[:, -8:] == 0).all()  # away from the person: black
    lit = drawing.any(axis=2)
    assert 0.02 < lit.mean() < 0.5


def test_segmentation_paints_polygons_and_decoded_crowds(fixture_root):
    # 724: a crowd (compressed string RLE) over x 4..43, y 50..67, painted over the larger person
    item, out = render_one("coco_segmentation", fixture_root, coco_file_name(724), ("segmentation",))
    seg = out[(0, "segmentation")]
    assert seg.pixels.shape == (72, 96, 3)
    assert (seg.pixels[50:68, 4:44] == colour(1)).all()
    assert (seg.pixels[49, 4:12] == 0).all() and (seg.pixels[50:68, 3] == 0).all()
    for m in item.annotation_json()["segmentation"]:
        if "polygons" in m and m["category"] != 1:
            pts = np.asarray(m["polygons"][0]).reshape(-1, 2)
            cx, cy = pts.mean(axis=0)
            assert (seg.pixels[int(cy), int(cx)] == colour(m["category"])).all()
    # 872: a crowd as a list of counts over x 10..39, y 8..57
    _, out = render_one("coco_segmentation", fixture_root, coco_file_name(872), ("segmentation",))
    crowd = out[(0, "segmentation")].pixels
    assert (crowd[8:58, 10:40] == colour(1)).all() and (crowd[8:58, 9] == 0).all() and (crowd[58, 10:40] == 0).all()


def test_views_the_item_keeps_no_data_for_are_refused(fixture_root):
    with pytest.raises(ValueError, match="keeps no data"):
        render_one("coco_pose", fixture_root, coco_file_name(139), ("boxes",))


# --- COCO malformed inputs ----------------------------------------------------------------------------

@pytest.fixture
def coco_copy(fixture_root, tmp_path) -> Path:
    return Path(shutil.copytree(fixture_root / "coco", tmp_path / "coco"))


def test_broken_json_is_rejected_and_other_files_still_list(coco_copy):
    broken = coco_copy / "annotations" / "instances_val2017.json"
    broken.write_text('{"images": [{"id": 1, "file_name": "000000000001.jpg"')
    reader = CocoReader("coco_detection", {"annotation_files": ["annotations/instances_train2017.json",
                                                                 "annotations/instances_val2017.json"]})
    items, rejects = listing(reader, coco_copy)
    assert len(items) == 9
    assert [(r.item_key, r.reason) for r in rejects] == [("annotations/instances_val2017.json",
                                                          "unreadable_annotation")]
    assert str(broken) in rejects[0].message and "not valid JSON" in rejects[0].message
    out = reader.pictures(items[-1], [(0, "image"), (0, "boxes")], CTX)  # the others still render
    assert out[(0, "boxes")].pixels.shape == (72, 96, 3)


def test_bad_annotations_reject_their_image_only(coco_copy):
    path = coco_copy / "annotations" / "instances_train2017.json"
    data = json.loads(path.read_text())
    bad = next(a for a in data["annotations"] if a["image_id"] == 285 and not a["iscrowd"])
    bad["segmentation"] = [[1.0, 2.0, 3.0, 4.0, 5.0]]  # odd number of coordinates
    data["annotations"].append({**bad, "id": 99, "image_id": 424242})  # names no listed image
    path.write_text(json.dumps(data))
    items, rejects = listing(CocoReader("s", {"annotations": "segmentation"}), coco_copy)
    assert len(items) == 8 and coco_file_name(285) not in {it.key for it in items}
    assert {(r.item_key, r.reason) for r in rejects} == {
        (coco_file_name(285), "bad_annotation"), ("annotations/instances_train2017.json#annotation=99",
                                                  "unknown_image")}
    assert all(str(path) in r.message for r in rejects)


def test_missing_photo_is_a_decode_error_naming_it(coco_copy):
    missing = coco_copy / "train2017" / coco_file_name(632)
    missing.unlink()
    reader = CocoReader("coco_detection", {})
    items, rejects = listing(reader, coco_copy)
    assert rejects == [] and len(items) == 9  # listing does not open photos
    item = next(it for it in items if it.key == coco_file_name(632))
    with pytest.raises(DecodeError) as err:
        reader.pictures(item, [(0, "image"), (0, "boxes")], CTX)
    assert str(missing) in err.value.message


def test_photo_that_disagrees_with_the_json_size_is_refused(coco_copy):
    write_image(coco_copy / "train2017" / coco_file_name(139), np.zeros((40, 50, 3), np.uint8))
    reader = CocoReader("coco_detection", {})
    item = next(it for it in listing(reader, coco_copy)[0] if it.key == coco_file_name(139))
    with pytest.raises(DecodeError) as err:
        reader.pictures(item, [(0, "image")], CTX)
    assert err.value.reason == "size_mismatch" and "instances_train2017.json" in err.value.message


# --- segmentation_masks -----------------------------------------------------------------------------------

def test_ade20k_pairs_training_images_with_label_maps(fixture_root):
    items, rejects = spec_listing("ade20k_segmentation", fixture_root)
    assert rejects == []
    assert [it.key for it in items] == [f"images/training/ADE_train_{i:08d}.jpg" for i in range(1, 11)]
    assert items[0].paths[1] == str(fixture_root / "ade20k" / "annotations" / "training" / "ADE_train_00000001.png")


def test_cityscapes_pairs_left_images_with_label_ids(fixture_root):
    items, rejects = spec_listing("cityscapes_segmentation", fixture_root)
    assert rejects == [] and len(items) == 10
    assert Counter(it.key.split("/")[2] for it in items) == {"aachen": 5, "bochum": 5}
    first = items[0]
    assert first.key == "leftImg8bit/train/aachen/aachen_000000_000019_leftImg8bit.png"
    assert first.paths[1].endswith("gtFine/train/aachen/aachen_000000_000019_gtFine_labelIds.png")


@pytest.mark.parametrize("name", ["ade20k_segmentation", "cityscapes_segmentation"])
def test_label_maps_render_through_the_palette(fixture_root, name):
    spec = get_spec(name)
    reader = make_reader(spec)
    items, _ = listing(reader, fixture_root / spec.folder)
    for item in items[:3]:
        out = reader.pictures(item, [(0, "image"), (0, "segmentation")], CTX)
        labels = cv2.imread(item.paths[1], cv2.IMREAD_UNCHANGED)
        assert labels.ndim == 2 and labels.dtype == np.uint8 and len(np.unique(labels)) >= 4
        seg = out[(0, "segmentation")]
        assert (seg.pixels == PALETTE[labels]).all()
        photo = cv2.cvtColor(cv2.imread(item.paths[0]), cv2.COLOR_BGR2RGB)
        assert (out[(0, "image")].pixels == photo).all() and out[(0, "image")].pixels.shape == seg.pixels.shape


def test_unpaired_files_are_rejected_and_the_rest_still_built(fixture_root, tmp_path):
    root = Path(shutil.copytree(fixture_root / "ade20k", tmp_path / "ade20k"))
    lonely_image = root / "images" / "training" / "ADE_train_00000003.jpg"
    lonely_label = root / "annotations" / "training" / "ADE_train_00000007.png"
    (root / "annotations" / "training" / "ADE_train_00000003.png").unlink()
    (root / "images" / "training" / "ADE_train_00000007.jpg").unlink()
    reader = SegmentationMasksReader("ade20k_segmentation", {})
    items, rejects = listing(reader, root)
    assert len(items) == 8
    assert [(r.item_key, r.reason) for r in rejects] == [
        ("images/training/ADE_train_00000003.jpg", "missing_pair"),
        ("annotations/training/ADE_train_00000007.png", "missing_pair")]
    assert str(lonely_image) in rejects[0].message and str(lonely_label) in rejects[1].message
    for item in items:
        assert reader.pictures(item, [(0, "segmentation")], CTX)[(0, "segmentation")].pixels.shape == (72, 96, 3)


def test_bad_label_maps_are_decode_errors_naming_the_file(fixture_root, tmp_path):
    root = Path(shutil.copytree(fixture_root / "ade20k", tmp_path / "ade20k"))
    reader = SegmentationMasksReader("ade20k_segmentation", {})
    items, _ = listing(reader, root)
    colour_map, garbage = Path(items[0].paths[1]), Path(items[1].paths[1])
    write_image(colour_map, np.dstack([np.full((72, 96), v, np.uint8) for v in (10, 20, 30)]))
    garbage.write_bytes(b"\x89PNG\r\n\x1a\n" + b"not a png" * 8)
    for item, path, reason in ((items[0], colour_map, "bad_label_map"), (items[1], garbage, "unreadable_image")):
        with pytest.raises(DecodeError) as err:
            reader.pictures(item, [(0, "image"), (0, "segmentation")], CTX)
        assert err.value.reason == reason and str(path) in err.value.message
    assert reader.pictures(items[2], [(0, "segmentation")], CTX)


def test_a_root_without_the_folders_says_where_it_looked(tmp_path):
    reader = SegmentationMasksReader("cityscapes_segmentation", get_spec("cityscapes_segmentation").reader_args)
    with pytest.raises(DecodeError, match="leftImg8bit/train") as err:
        listing(reader, tmp_path)
    assert err.value.reason == "missing_file"


@pytest.mark.parametrize("name", ["coco_detection", "coco_pose", "ade20k_segmentation", "cityscapes_segmentation"])
def test_found_only_where_the_layout_is(fixture_root, tmp_path, name):
    spec = get_spec(name)
    assert make_reader(spec).found(str(fixture_root / spec.folder))
    assert not make_reader(spec).found(str(tmp_path))


# --- end to end ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def built(fixture_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("family_coco_out")
    annotators = export_all(tmp_path_factory.mktemp("annotators"))
    summary = build_specs(list(SPECS), fixture_root, out, annotators=annotators)
    return summary, read_sentences(out)


def test_every_spec_builds_its_sentences(built):
    summary, sentences = built
    assert summary["unaccounted_items"] == 0 and summary["rejected_items"] == 0
    by_source = sentences_by_source(sentences)
    # pairs: 8 pairs per sentence, the last one partial; multimodal: 3 shots per sentence
    expected = {"coco_detection": [16, 2], "coco_pose": [16], "coco_segmentation": [16, 2], "coco_depth": [16, 4],
                "coco_normals": [16, 4], "coco_edges": [16, 4], "coco_multimodal": [15, 15, 15],
                "ade20k_segmentation": [16, 4], "cityscapes_segmentation": [16, 4]}
    assert {k: sorted((s.num_images for s in v), reverse=True) for k, v in by_source.items()} == expected
    for name, group in by_source.items():
        spec = get_spec(name)
        for s in group:
            views = s.meta.views
            assert s.meta.layout == spec.layout and s.tokens.shape[0] == len(views)
            if spec.layout == "pairs":
                assert views == spec.views * (len(views) // 2)
                assert all(s.meta.image_items[2 * i] == s.meta.image_items[2 * i + 1] == i
                           for i in range(len(views) // 2))
            else:  # one shuffled modality order, the same for every shot
                order = views[:5]
                assert sorted(order) == sorted(spec.views) and views == order * 3
    inputs = summary["inputs"]
    assert inputs["coco_detection"] == 9 and inputs["coco_pose"] == 8 and inputs["coco_depth"] == 10
