"""The video family (video_index, hmdb51_splits, video_tree, frame_folders, co3d_sequences readers):
listing from each release's split file, probing and rendering real video containers and frame
folders, malformed inputs, and an end-to-end build of all 19 video specs from their fixtures."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest
from fixtures import make_fixture
from fixtures.common import write_image
from fixtures.videos import BIKES, CARPHONE, FIXTURES, frames
from PIL import Image
from spec_harness import build_specs, listing, read_sentences, spec_listing

from uvd.dataset_specs import get_spec
from uvd.format.tables import REJECTS_NAME
from uvd.media.guarded_video import GuardedVideoDecoder, VideoGuard
from uvd.media.images import DecodeError
from uvd.pipeline.readers import DecodeContext, make_reader, reader_class
from uvd.pipeline.readers.frames import frame_files
from uvd.pipeline.readers.videos import VideoFolder

EGO4D_UIDS = ("000786a7-3f9d-4fe6-bfb3-045b368f7d44", "0014b7ad-4e4c-4d74-9ed5-07e50d8a36e4")
# spec -> {item key: frames}: what each fixture holds, as the release names it
EXPECTED = {
    "ucf101": {"ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi": 24, "Archery/v_Archery_g01_c01.avi": 30},
    "hmdb51": {"brush_hair/April_09_brush_hair_u_nm_np1_ba_goo_0.avi": 26,
               "cartwheel/Acrobacias_de_un_fenomeno_cartwheel_f_cm_np1_ba_bad_8.avi": 32},
    "kinetics700": {"--33Lscn6sk_000004_000014": 28, "-0nfG4rzPXs_000035_000045": 22},
    "something_something_v2": {"78687": 24, "42326": 34},
    "activitynet": {"sJFgo9H6zNo": 30, "-0c5zBBUqWU": 22},
    "moments_in_time": {"adult+female+singing/yt-zxQfALnTdfc_56.mp4": 24,
                        "bicycling/getty-cyclist-riding-bike-video-id123456_1.mp4": 30},
    "multi_moments_in_time": {"bicycling/getty-bmx-rider-video-id987654_3.mp4": 26,
                              "cooking/yt-3a8Wq2CjJ0k_12.mp4": 36},
    "charades": {"46GP8": 28, "N11GT": 22},
    "charades_ego": {"005BU": 24, "005BUEGO": 30},
    "youcook2": {"GLd3aX16zBg": 32, "xHr8X2Wpmno": 24},
    "msr_vtt": {"video0": 25, "video1": 35},
    "diving48": {"-mmq0PT-u8k_00155": 28, "-mmq0PT-u8k_00193": 20},
    "multisports": {"trainval/aerobic_gymnastics/v_-6Os86HzwCs_c001.mp4": 30,
                    "trainval/basketball/v_00HRwkvvjtQ_c002.mp4": 24},
    "ava_videos": {"-5KQ66BBWC4": 36, "053oq2xB3oU": 34},
    "ego4d": dict(zip(EGO4D_UIDS, (30, 40))),
    "davis": {"bear": 20, "bmx-bumps": 24},
    "youtube_vos": {"003234408d": 20, "0043f083b5": 22},
    "jester": {"34870": 20, "56557": 24},
    "co3d": {"apple/110_13051_23361": 20, "teddybear/34_1403_4393": 22},
}
SPECS = tuple(EXPECTED)
FRAME_SPECS = ("davis", "youtube_vos", "jester", "co3d")
VIDEO_SPECS = tuple(s for s in SPECS if s not in FRAME_SPECS)
CTX = DecodeContext(max_pixels=10**8, image_size=64)


@pytest.fixture(scope="module")
def fixture_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("family_videos")
    for folder in sorted({get_spec(name).folder for name in SPECS}):
        make_fixture(folder, root)
    return root


@pytest.fixture(scope="module")
def video_ctx():
    decoder = GuardedVideoDecoder(VideoGuard(timeout_s=60, memory_mb=2048))
    yield DecodeContext(max_pixels=10**8, video=decoder, image_size=64)
    decoder.close()






def copy_of(fixture_root: Path, name: str, tmp_path: Path) -> Path:
    """A writable copy of a spec's fixture folder, to break."""
    return Path(shutil.copytree(fixture_root / get_spec(name).folder, tmp_path / get_spec(name).folder))


def mean_abs(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


# --- listing -------------------------------------------------------------------------------------------

def test_the_fixture_module_has_a_folder_for_every_spec():
    assert {get_spec(name).folder for name in SPECS} == set(FIXTURES)


@pytest.mark.parametrize("name", SPECS)
def test_each_release_lists_its_training_items_and_nothing_else(name, fixture_root):
    """Keys are the dataset's own ids; the other split's entries of a shared index are not listed."""
    items, rejects = spec_listing(name, fixture_root)
    assert rejects == []
    assert sorted(it.key for it in items) == sorted(EXPECTED[name])
    for it in items:
        assert all(Path(p).is_file() for p in it.paths)
        assert it.num_frames == (EXPECTED[name][it.key] if name in FRAME_SPECS else 1)  # videos learn it by probing
    assert make_reader(get_spec(name)).found(str(fixture_root / get_spec(name).folder))


def test_labels_come_from_the_index(fixture_root):
    def labels(name):
        return {it.key: it.label for it in spec_listing(name, fixture_root)[0]}

    assert labels("kinetics700") == {"--33Lscn6sk_000004_000014": "abseiling",
                                     "-0nfG4rzPXs_000035_000045": "acting in play"}
    assert set(labels("hmdb51").values()) == {"brush_hair", "cartwheel"}
    assert labels("something_something_v2")["78687"] == "Holding [something] next to [something]"
    assert labels("youcook2") == {"GLd3aX16zBg": "113", "xHr8X2Wpmno": "201"}
    assert labels("jester") == {"34870": "Drumming Fingers", "56557": "Sliding Two Fingers Right"}
    assert set(labels("co3d").values()) == {"apple", "teddybear"}
    assert set(labels("multisports").values()) == {"aerobic_gymnastics", "basketball"}


def test_videos_resolve_in_any_container_and_layout(fixture_root):
    """ActivityNet's .mkv and YouCook2's .webm are found from extension-less ids; paths follow the index."""
    paths = {it.key: it.paths[0] for it in spec_listing("activitynet", fixture_root)[0]}
    assert paths["-0c5zBBUqWU"].endswith("v_-0c5zBBUqWU.mkv") and paths["sJFgo9H6zNo"].endswith(".mp4")
    paths = {it.key: it.paths[0] for it in spec_listing("youcook2", fixture_root)[0]}
    assert paths["xHr8X2Wpmno"].endswith("raw_videos/training/201/xHr8X2Wpmno.webm")
    paths = {it.key: it.paths[0] for it in spec_listing("kinetics700", fixture_root)[0]}
    assert paths["-0nfG4rzPXs_000035_000045"].endswith("train/acting in play/-0nfG4rzPXs_000035_000045.mp4")


def test_a_flat_copy_of_a_nested_layout_resolves_and_the_named_path_wins(tmp_path):
    for rel in ("flat_000001_000011.mp4", "a/same.mp4", "b/same.mkv"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    videos = VideoFolder(str(tmp_path))
    assert videos.find("abseiling/flat_000001_000011.mp4") == str(tmp_path / "flat_000001_000011.mp4")
    assert videos.find("b/same") == str(tmp_path / "b/same.mkv")
    assert videos.find("a/same.avi") == str(tmp_path / "a/same.mp4")
    assert videos.find("absent") is None


def test_ego4d_clips_are_read_with_reader_args(tmp_path):
    """Users with Ego4D's clips instead of full-scale videos point the same reader at them."""
    uid = "1a2b3c4d-0000-4000-8000-000000000001"
    (tmp_path / "v2" / "clips").mkdir(parents=True)
    (tmp_path / "v2" / "clips" / f"{uid}.mp4").write_bytes(b"x")
    (tmp_path / "v2" / "ego4d.json").write_text(json.dumps({"videos": [], "clips": [{"clip_uid": uid,
                                                                                     "video_uid": "v"}]}))
    args = {**get_spec("ego4d").reader_args, "records": "clips", "key": "{clip_uid}", "path": "{clip_uid}",
            "videos": "v2/clips"}
    items, rejects = listing(reader_class("video_index")("ego4d", args), tmp_path)
    assert [it.key for it in items] == [uid] and rejects == []


def test_frames_are_in_natural_order():
    names = [f"/s/images/frame{i}.jpg" for i in (10, 9, 1, 100)] + ["/s/images/.hidden1.jpg", "/s/images/notes.txt"]
    assert frame_files(names) == [f"/s/images/frame{i}.jpg" for i in (1, 9, 10, 100)]


# --- probing and rendering --------------------------------------------------------------------------------

def test_every_container_probes_to_its_frame_count(fixture_root, video_ctx):
    """.avi (UCF101, HMDB51), .webm (SSv2, YouCook2), .mkv (AVA, ActivityNet) and .mp4 all decode."""
    for name in VIDEO_SPECS:
        reader = make_reader(get_spec(name))
        counts = {it.key: reader.probe(it, video_ctx).num_frames for it in spec_listing(name, fixture_root)[0]}
        assert counts == EXPECTED[name], name


def test_video_frames_render_the_requested_frames(fixture_root, video_ctx):
    reader = make_reader(get_spec("ucf101"))
    item = next(it for it in spec_listing("ucf101", fixture_root)[0] if it.key.startswith("ApplyEyeMakeup"))
    out = reader.pictures(item, [(0, "frame"), (23, "frame")], video_ctx)
    assert set(out) == {(0, "frame"), (23, "frame")}
    truth = frames(24, BIKES)
    for frame, other in ((0, 23), (23, 0)):
        render = out[(frame, "frame")]
        assert render.pixels.shape == (64, 64, 3) and render.pixels.dtype == np.uint8
        own, far = (cv2.resize(truth[i], (64, 64)) for i in (frame, other))
        assert mean_abs(render.pixels, own) < 8 < mean_abs(render.pixels, far), frame


def test_frame_folders_render_their_frame_files(fixture_root):
    reader = make_reader(get_spec("jester"))
    item = next(it for it in spec_listing("jester", fixture_root)[0] if it.key == "56557")
    assert item.paths[3].endswith("20bn-jester-v1/56557/00004.jpg")
    out = reader.pictures(item, [(3, "frame"), (20, "frame")], CTX)
    truth = frames(24, CARPHONE)
    assert out[(3, "frame")].pixels.shape == (48, 64, 3)
    assert mean_abs(out[(3, "frame")].pixels, truth[3]) < 5 < mean_abs(out[(3, "frame")].pixels, truth[20])
    with pytest.raises(ValueError, match="boxes"):
        reader.pictures(item, [(0, "boxes")], CTX)


# --- malformed inputs -----------------------------------------------------------------------------------

def test_a_split_list_naming_a_missing_video_rejects_it_and_lists_the_rest(fixture_root, tmp_path):
    root = copy_of(fixture_root, "ucf101", tmp_path)
    split = root / "ucfTrainTestlist" / "trainlist01.txt"
    split.write_bytes(split.read_bytes() + b"Archery/v_Archery_g02_c01.avi 3\r\n")
    items, rejects = spec_listing("ucf101", tmp_path)
    assert len(items) == 2
    [reject] = rejects
    assert (reject.item_key, reject.reason) == ("Archery/v_Archery_g02_c01.avi", "missing_file")
    assert str(split) in reject.message and str(root / "UCF-101" / "Archery/v_Archery_g02_c01.avi") in reject.message


def test_a_json_index_that_does_not_parse_is_a_decode_error_naming_it(fixture_root, tmp_path):
    root = copy_of(fixture_root, "something_something_v2", tmp_path)
    index = root / "labels" / "train.json"
    index.write_text(index.read_text()[:-20])
    with pytest.raises(DecodeError) as err:
        spec_listing("something_something_v2", tmp_path)
    assert err.value.reason == "unreadable_annotation"
    assert str(index) in err.value.message and "not valid JSON" in err.value.message


@pytest.mark.parametrize("content, says", [(b"\xff\xfe\x00garbage\x00\x81", "cannot read"),
                                           (b"label,youtube_id,start,end,split\nabseiling,x,1,2,train\n",
                                            "no column(s) ['time_end', 'time_start']")])
def test_a_csv_index_that_does_not_parse_is_a_decode_error_naming_it(fixture_root, tmp_path, content, says):
    root = copy_of(fixture_root, "kinetics700", tmp_path)
    index = root / "annotations" / "train.csv"
    index.write_bytes(content)
    with pytest.raises(DecodeError) as err:
        spec_listing("kinetics700", tmp_path)
    assert err.value.reason == "unreadable_annotation" and str(index) in err.value.message
    assert says in err.value.message


def test_a_short_row_is_a_bad_row_and_the_other_rows_still_list(fixture_root, tmp_path):
    root = copy_of(fixture_root, "moments_in_time", tmp_path)
    index = root / "trainingSet.csv"
    index.write_text(index.read_text() + "\n")  # a blank line is no row
    with index.open("a") as f:
        f.write("just-a-path.mp4\n")
    items, rejects = spec_listing("moments_in_time", tmp_path)
    assert len(items) == 2
    [reject] = rejects
    assert reject.reason == "bad_row" and str(index) in reject.message and "line 4" in reject.message


def test_missing_index_files_are_named(tmp_path):
    with pytest.raises(DecodeError) as err:
        spec_listing("charades", tmp_path)
    assert err.value.reason == "missing_annotation" and "Charades_v1_train.csv" in err.value.message
    with pytest.raises(DecodeError, match="testTrainMulti_7030_splits"):
        spec_listing("hmdb51", tmp_path)
    for name in SPECS:
        assert not make_reader(get_spec(name)).found(str(tmp_path / get_spec(name).folder)), name


def test_an_unreadable_video_fails_its_probe_naming_it(fixture_root, tmp_path, video_ctx):
    root = copy_of(fixture_root, "diving48", tmp_path)
    broken = root / "rgb" / "-mmq0PT-u8k_00155.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"not a video" * 50)
    reader = make_reader(get_spec("diving48"))
    items, _ = spec_listing("diving48", tmp_path)
    by_key = {it.key: it for it in items}
    with pytest.raises(DecodeError) as err:
        reader.probe(by_key["-mmq0PT-u8k_00155"], video_ctx)
    assert err.value.reason == "unreadable_video" and str(broken) in err.value.message
    assert reader.probe(by_key["-mmq0PT-u8k_00193"], video_ctx).num_frames == 20


def test_a_split_list_naming_a_missing_frame_folder_rejects_it(fixture_root, tmp_path):
    root = copy_of(fixture_root, "davis", tmp_path)
    with (root / "ImageSets" / "2017" / "train.txt").open("a") as f:
        f.write("dog-agility\n")
    items, rejects = spec_listing("davis", tmp_path)
    assert sorted(it.key for it in items) == ["bear", "bmx-bumps"]
    [reject] = rejects
    assert reject.reason == "missing_file" and str(root / "JPEGImages/480p/dog-agility") in reject.message


def test_an_unreadable_frame_is_a_render_error_naming_it(fixture_root, tmp_path):
    root = copy_of(fixture_root, "youtube_vos", tmp_path)
    bad = root / "train" / "JPEGImages" / "003234408d" / "00015.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    reader = make_reader(get_spec("youtube_vos"))
    item = next(it for it in spec_listing("youtube_vos", tmp_path)[0] if it.key == "003234408d")
    assert item.paths[3] == str(bad)
    assert reader.pictures(item, [(2, "frame")], CTX)[(2, "frame")].pixels.shape == (48, 64, 3)
    with pytest.raises(DecodeError) as err:
        reader.pictures(item, [(2, "frame"), (3, "frame")], CTX)
    assert err.value.reason == "unreadable_image" and str(bad) in err.value.message


# --- end to end ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """All 19 specs in one build; three of them also hold a broken entry (a missing video named
    by the split list, an unreadable video, a frame folder with an unreadable frame)."""
    root = tmp_path_factory.mktemp("family_videos_broken")
    for folder in sorted({get_spec(name).folder for name in SPECS}):
        make_fixture(folder, root)
    with (root / "ucf101" / "ucfTrainTestlist" / "trainlist01.txt").open("ab") as f:
        f.write(b"Archery/v_Archery_g02_c01.avi 3\r\n")
    index = root / "something_something_v2" / "labels" / "train.json"
    index.write_text(json.dumps(json.loads(index.read_text()) + [{"id": "1", "label": "x", "template": "y",
                                                                   "placeholders": []}]))
    (root / "something_something_v2" / "20bn-something-something-v2" / "1.webm").write_bytes(b"\x1aE\xdf\xa3" * 64)
    broken_sequence = root / "davis" / "JPEGImages" / "480p" / "broken"
    for i, frame in enumerate(frames(20, BIKES)):
        write_image(broken_sequence / f"{i:05d}.jpg", frame)
    (broken_sequence / "00010.jpg").write_bytes(b"not a jpeg")  # 20 frames: every 16-frame clip holds frame 10
    with (root / "davis" / "ImageSets" / "2017" / "train.txt").open("a") as f:
        f.write("broken\n")
    out = tmp_path_factory.mktemp("family_videos_out")
    summary = build_specs(list(SPECS), root, out)
    rejects = pq.read_table(out / REJECTS_NAME).to_pylist()
    return summary, read_sentences(out), rejects, root


def test_every_spec_builds_one_clip_per_item(built):
    summary, sentences, _, _ = built
    assert summary["unaccounted_items"] == 0
    assert len(sentences) == 2 * len(SPECS)
    for name in SPECS:
        assert summary["items"][name]["written"] == 2, name
    for s in sentences:
        if s.meta.source == "co3d":
            continue  # LVM's CO3D sentences: test_co3d_builds_lvms_mask_and_depth_mask_sentences
        spec = get_spec(s.meta.source)
        [key] = s.meta.item_keys
        total = EXPECTED[spec.name][key]
        steps = {b - a for a, b in zip(s.meta.frame_indices, s.meta.frame_indices[1:])}
        assert s.meta.layout == spec.layout and s.meta.group == "videos" and s.tokens.shape == (16, 256)
        assert s.meta.views == ("frame",) * 16 and len(steps) == 1
        if spec.layout == "video":  # LVM's stride 8, lowered to fit: min(8, (T - 1) // 15)
            assert steps == {min(8, (total - 1) // 15)}, (spec.name, key)
        else:  # a stride from [1, min(4, (T - 1) // 15)]
            assert 1 <= steps.pop() <= min(4, (total - 1) // 15)
        assert 0 <= s.meta.frame_indices[0] and s.meta.frame_indices[-1] < total


def test_co3d_builds_lvms_mask_and_depth_mask_sentences(built, fixture_root):
    """Both sequences are the shots of one group (drop_last off in these builds): [4 frames, 4 masks] per
    shot, then the same frames with their depth masks; each image is its file at that sorted position."""
    _, sentences, _, _ = built
    co3d = [s for s in sentences if s.meta.source == "co3d"]
    assert [s.meta.sentence_index for s in co3d] == [0, 1] and all(s.tokens.shape == (16, 256) for s in co3d)
    for s, annotation in zip(co3d, ("mask", "depth_mask")):
        assert s.meta.item_keys == ("apple/110_13051_23361", "teddybear/34_1403_4393")
        assert s.meta.views == (("frame",) * 4 + (annotation,) * 4) * 2
        frames = s.meta.frame_indices
        assert frames[:4] == frames[4:8] and frames[8:12] == frames[12:]
        assert frames[:4] == co3d[0].meta.frame_indices[:4]  # the same frames in both sentences
    reader = make_reader(get_spec("co3d"))
    item = next(it for it in spec_listing("co3d", fixture_root)[0] if it.key == "apple/110_13051_23361")
    out = reader.pictures(item, [(3, "frame"), (3, "mask"), (3, "depth_mask")], CTX)
    for view, folder in (("frame", "images"), ("mask", "masks"), ("depth_mask", "depth_masks")):
        path = fixture_root / "co3d" / item.key / folder / sorted(os.listdir(fixture_root / "co3d" / item.key / folder))[3]
        np.testing.assert_array_equal(out[(3, view)].pixels, np.asarray(Image.open(path).convert("RGB")))


def test_co3d_sequences_whose_masks_do_not_pair_up_are_rejected(fixture_root, tmp_path):
    root = copy_of(fixture_root, "co3d", tmp_path)
    os.remove(root / "apple" / "110_13051_23361" / "depth_masks" / "frame000007.png")
    items, rejects = spec_listing("co3d", tmp_path)
    assert [it.key for it in items] == ["teddybear/34_1403_4393"]
    [reject] = rejects
    assert (reject.item_key, reject.reason) == ("apple/110_13051_23361", "missing_pair")
    assert "20 images, 20 masks, 19 depth_masks" in reject.message


def test_broken_entries_are_rejected_naming_their_files(built):
    summary, _, rejects, root = built
    by_source = {r["source"]: r for r in rejects}
    assert set(by_source) == {"ucf101", "something_something_v2", "davis"} and len(rejects) == 3
    assert by_source["ucf101"]["reason"] == "missing_file" and by_source["ucf101"]["stage"] == "list"
    assert "v_Archery_g02_c01.avi" in by_source["ucf101"]["message"]
    assert (by_source["something_something_v2"]["reason"], by_source["something_something_v2"]["stage"]) == (
        "unreadable_video", "probe")
    assert "20bn-something-something-v2/1.webm" in by_source["something_something_v2"]["message"]
    assert (by_source["davis"]["item_key"], by_source["davis"]["reason"]) == ("broken", "unreadable_image")
    assert str(root / "davis/JPEGImages/480p/broken/00010.jpg") in by_source["davis"]["message"]
    assert summary["items"]["something_something_v2"]["rejected"] == 1 and summary["items"]["davis"]["rejected"] == 1
