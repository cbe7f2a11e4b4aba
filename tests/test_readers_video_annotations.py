"""VIPSeg, Hand14K, AVA detection, JHMDB flow/pose and Objaverse multiview readers: listing,
rendering, malformed inputs, and an end-to-end build of every spec of the family."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import scipy.io
from fixtures import make_fixtures
from fixtures.common import video_frames, write_image, write_video
from fixtures.video_annotations import (
    AZIMUTHS,
    CAR,
    HAND14K_VIDEOS,
    JHMDB_VIDEOS,
    OBJAVERSE_UIDS,
    PERSON,
    VIPSEG_VIDEOS,
    jhmdb_joints,
    look_at_rt,
    vipseg_panomask,
)
from spec_harness import build_specs, listing, read_sentences, sentences_by_source

from uvd.dataset_specs import get_spec
from uvd.media.drawing import PALETTE, draw_keypoints
from uvd.media.guarded_video import GuardedVideoDecoder, VideoGuard
from uvd.media.images import DecodeError
from uvd.pipeline.readers import DecodeContext
from uvd.pipeline.readers.ava import AvaDetectionReader, keyframe_indices, parse_row
from uvd.pipeline.readers.hands import Hand14KReader, video_and_frame
from uvd.pipeline.readers.jhmdb import JhmdbFlowReader, JhmdbPoseReader
from uvd.pipeline.readers.objaverse import ObjaverseViewsReader, camera_azimuth, rotation_order
from uvd.pipeline.readers.vipseg import VIPSegReader, panoptic_categories

CTX = DecodeContext(max_pixels=10**8)
FOLDERS = ("vipseg", "hand14k", "jhmdb", "objaverse")
SPECS = ("vipseg_panoptic", "hand14k_segmentation", "jhmdb_flow", "jhmdb_pose", "objaverse_multiview",
         "ava_detection")


@pytest.fixture(scope="module")
def fixture_root(tmp_path_factory) -> Path:
    return make_fixtures(FOLDERS, tmp_path_factory.mktemp("family_video_annotations"))


@pytest.fixture(scope="module")
def decoder():
    d = GuardedVideoDecoder(VideoGuard(timeout_s=60, memory_mb=2048))
    yield d
    d.close()




def copy_folder(fixture_root: Path, folder: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(fixture_root / folder, tmp_path / folder))


def rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


# --- VIPSeg ---------------------------------------------------------------------------------------

def test_panomask_values_become_category_numbers():
    values = np.array([[0, 19, 124], [6100, 6101, 4900], [12400, 100, 125]])
    # < 125: stuff, the value itself; from 125 on: category * 100 + instance (the release's converter)
    np.testing.assert_array_equal(panoptic_categories(values), [[0, 19, 124], [61, 61, 49], [124, 100, 1]])


def test_vipseg_lists_videos_of_annotated_frames_in_time_order(fixture_root):
    items, rejects = listing(VIPSegReader("vipseg_panoptic"), fixture_root / "vipseg")
    assert rejects == []
    assert {it.key: it.num_frames for it in items} == {video: n for video, _, n in VIPSEG_VIDEOS}
    for it in items:
        images, masks = it.paths[0::2], it.paths[1::2]
        assert [p.rsplit("/", 1)[1] for p in images] == [f"{3 * t:08d}.jpg" for t in range(it.num_frames)]
        assert all(m.endswith(f"panomasks/{it.key}/{i.rsplit('/', 1)[1][:-4]}.png") for i, m in zip(images, masks))
        assert it.get("categories") == 61  # json ids 0..60 -> panomask categories 1..61


def test_vipseg_renders_frames_and_category_colours(fixture_root):
    reader = VIPSegReader("vipseg_panoptic")
    item = next(it for it in listing(reader, fixture_root / "vipseg")[0] if it.key == VIPSEG_VIDEOS[0][0])
    out = reader.pictures(item, [(4, "frame"), (4, "panoptic")], CTX)
    np.testing.assert_array_equal(out[(4, "frame")].pixels, rgb(Path(item.paths[8])))
    panoptic = out[(4, "panoptic")]
    mask = vipseg_panomask(video_frames(VIPSEG_VIDEOS[0][2], (64, 48), VIPSEG_VIDEOS[0][1])[4], 4)
    expected = PALETTE[panoptic_categories(mask)]
    np.testing.assert_array_equal(panoptic.pixels, expected)
    # both people (instances 6100 and 6101) share the person colour; the car has its own
    h = mask.shape[0]
    assert (panoptic.pixels[h - 6, 8] == PALETTE[PERSON]).all()
    assert (panoptic.pixels[h - 10, 42] == PALETTE[PERSON]).all()
    assert (panoptic.pixels[h - 4, 28] == PALETTE[CAR]).all()


def test_vipseg_malformed_inputs(fixture_root, tmp_path):
    root = copy_folder(fixture_root, "vipseg", tmp_path)
    video = VIPSEG_VIDEOS[0][0]
    (root / "images" / video / "00000003.jpg").unlink()  # its panomask loses its frame
    (root / "train.txt").write_text(f"{VIPSEG_VIDEOS[1][0]}\n{video}\n0_missing_video\n")
    items, rejects = listing(VIPSegReader("v", {"split_file": "train.txt"}), root)
    assert {it.key: it.num_frames for it in items} == {video: VIPSEG_VIDEOS[0][2] - 1,
                                                       VIPSEG_VIDEOS[1][0]: VIPSEG_VIDEOS[1][2]}
    by_reason = {r.reason: r for r in rejects}
    assert set(by_reason) == {"missing_pair", "missing_file"}
    assert str(root / "panomasks" / video / "00000003.png") in by_reason["missing_pair"].message
    assert by_reason["missing_file"].item_key == "0_missing_video"
    assert str(root / "train.txt") in by_reason["missing_file"].message

    # an undecodable panomask fails that video's render, naming the file
    item = next(it for it in items if it.key == video)
    Path(item.paths[3]).write_bytes(b"\x89PNG\r\n\x1a\n" + b"broken" * 20)
    with pytest.raises(DecodeError) as err:
        VIPSegReader("v").pictures(item, [(1, "panoptic")], CTX)
    assert item.paths[3] in err.value.message
    # a category the category list does not have
    write_image(Path(item.paths[5]), np.full((48, 64), 99 * 100, np.uint16))
    with pytest.raises(DecodeError) as err:
        VIPSegReader("v").pictures(item, [(2, "panoptic")], CTX)
    assert err.value.reason == "unreadable_annotation" and item.paths[5] in err.value.message

    # a broken category list makes the unit unreadable
    (root / "panoVIPSeg_categories.json").write_text("[{\"id\": 0, ")
    with pytest.raises(DecodeError) as err:
        listing(VIPSegReader("v"), root)
    assert err.value.reason == "unreadable_annotation" and "panoVIPSeg_categories.json" in err.value.message


# --- Hand14K --------------------------------------------------------------------------------------

def test_hand14k_names_parse_into_video_and_frame():
    assert video_and_frame("OP01-R01-PastaSalad_0000001130.jpg") == ("OP01-R01-PastaSalad", "0000001130")
    assert video_and_frame("P03-R02-TurkeySandwich-000042.png") == ("P03-R02-TurkeySandwich", "000042")
    assert video_and_frame("clip7_frame_0012.jpg") == ("clip7", "0012")
    assert video_and_frame("P01/000123.jpg") == ("P01", "000123")
    assert video_and_frame("no_number.jpg") == ("no_number.jpg".rsplit(".", 1)[0], "0")


def test_hand14k_lists_and_renders_masks(fixture_root):
    reader = Hand14KReader("hand14k_segmentation")
    items, rejects = listing(reader, fixture_root / "hand14k")
    assert rejects == []
    assert {it.key: it.num_frames for it in items} == {v: n for v, _, n, _ in HAND14K_VIDEOS}
    item = next(it for it in items if it.key == HAND14K_VIDEOS[0][0])
    _, _, frames, first = HAND14K_VIDEOS[0]
    assert [Path(p).stem for p in item.paths[0::2]] == [f"{item.key}_{first + 30 * t:010d}" for t in range(frames)]
    out = reader.pictures(item, [(3, "frame"), (3, "mask")], CTX)
    mask = out[(3, "mask")]
    assert set(np.unique(mask.pixels)) == {0, 255}
    assert (mask.pixels[48 - 10, 14 + 6] == 255).all() and (mask.pixels[2, 2] == 0).all()  # inside / outside a hand
    np.testing.assert_array_equal(out[(3, "frame")].pixels, rgb(Path(item.paths[6])))


def test_hand14k_malformed_inputs(fixture_root, tmp_path):
    root = copy_folder(fixture_root, "hand14k", tmp_path)
    video, _, n, first = HAND14K_VIDEOS[1]
    (root / "Images" / f"{video}_{first + 30:010d}.jpg").unlink()
    shutil.copy(root / "Masks" / f"{video}_{first:010d}.png", root / "Masks" / f"{video}-{first:010d}.png")
    items, rejects = listing(Hand14KReader("h"), root)
    assert {it.key: it.num_frames for it in items} == {HAND14K_VIDEOS[0][0]: HAND14K_VIDEOS[0][2], video: n - 1}
    by_reason = {r.reason: r for r in rejects}
    assert set(by_reason) == {"missing_pair", "duplicate_frame"}
    assert str(root / "Masks" / f"{video}_{first + 30:010d}.png") in by_reason["missing_pair"].message
    assert by_reason["duplicate_frame"].item_key.startswith("Masks/")
    item = next(it for it in items if it.key == video)
    Path(item.paths[0]).write_bytes(b"not a jpeg")
    with pytest.raises(DecodeError) as err:
        Hand14KReader("h").pictures(item, [(0, "frame")], CTX)
    assert item.paths[0] in err.value.message


# --- JHMDB ----------------------------------------------------------------------------------------

def jhmdb_keys(subsets) -> set[str]:
    return {f"{a}/{v}" for a, v, s, _, _ in JHMDB_VIDEOS if s in subsets}


def test_jhmdb_split_files_choose_the_videos(fixture_root):
    root = fixture_root / "jhmdb"
    for split, subsets in (("train", {1}), ("test", {2}), ("all", {1, 2})):
        items, rejects = listing(JhmdbPoseReader("p", split=split), root)
        assert rejects == [] and {it.key for it in items} == jhmdb_keys(subsets)
        assert all(it.label == "walk" and it.paths[0].endswith("joint_positions.mat") for it in items)
    with pytest.raises(ValueError):
        JhmdbPoseReader("p", split="val")


def test_jhmdb_pose_probe_and_render(fixture_root):
    reader = JhmdbPoseReader("jhmdb_pose")
    items, _ = listing(reader, fixture_root / "jhmdb")
    item = reader.probe(next(it for it in items if it.key.endswith(JHMDB_VIDEOS[0][1])), CTX)
    assert item.num_frames == JHMDB_VIDEOS[0][4]
    out = reader.pictures(item, [(5, "frame"), (5, "pose")], CTX)
    np.testing.assert_array_equal(out[(5, "frame")].pixels, rgb(Path(item.paths[6])))
    pose = out[(5, "pose")].pixels
    assert pose.shape == (48, 64, 3)
    joints = jhmdb_joints(JHMDB_VIDEOS[0][4])[:, :, 5].T
    for x, y in joints:  # every joint is a white dot where pos_img puts it
        assert (pose[int(round(y)), int(round(x))] == 255).all()
    people = np.concatenate([joints, np.ones((15, 1))], axis=1)[None]
    np.testing.assert_array_equal(pose, draw_keypoints((48, 64), people, "jhmdb15"))  # limbs too, on black
    assert (pose[0, 0] == 0).all() and len({tuple(c) for c in pose.reshape(-1, 3)}) > 10


def test_jhmdb_flow_probe_and_render(fixture_root, tmp_path):
    root = copy_folder(fixture_root, "jhmdb", tmp_path)
    reader = JhmdbFlowReader("jhmdb_flow")
    items, _ = listing(reader, root)
    item = next(it for it in items if it.key.endswith(JHMDB_VIDEOS[1][1]))
    flow = np.zeros(scipy.io.loadmat(item.paths[0])["flow"].shape, np.float32)  # H x W x 2 x T
    h, w = flow.shape[:2]
    flow[:, :, 0, :] = -1  # every frame moves left, but frame 2: its left half moves right, its right
    flow[:, : w // 2, :, 2] = (1, 0)  # half down twice as far (the largest motion: the wheel's radius)
    flow[:, w // 2:, :, 2] = (0, 2)
    scipy.io.savemat(item.paths[0], {"flow": flow})
    item = reader.probe(item, CTX)
    assert item.num_frames == JHMDB_VIDEOS[1][4] - 1  # flow between consecutive frames
    out = reader.pictures(item, [(2, "flow"), (2, "frame")], CTX)[(2, "flow")].pixels
    assert out.shape == (h, w, 3)
    # the Middlebury wheel by hand: right at half the radius is red halfway to white, floor(127.5);
    # down at the full radius is between wheel entries 13 and 14, (221 + 238) / 2 = 229.5 of green
    assert (out[:, : w // 2] == (255, 127, 127)).all() and (out[:, w // 2:] == (255, 229, 0)).all()


def test_jhmdb_malformed_inputs(fixture_root, tmp_path):
    root = copy_folder(fixture_root, "jhmdb", tmp_path)
    (a0, v0, _, _, _), (_, v1, _, _, _) = JHMDB_VIDEOS[:2]
    split = root / "splits" / "walk_test_split1.txt"
    split.write_text(split.read_text() + "Ghost_walk_f_nm_np1_fr_med_0.avi 1\nnot a row at all\n")
    (root / "joint_positions" / a0 / v1 / "joint_positions.mat").unlink()
    (root / "Rename_Images" / a0 / JHMDB_VIDEOS[2][1] / "00004.png").unlink()  # frames 5.. would shift
    items, rejects = listing(JhmdbPoseReader("p", split="all"), root)
    assert [it.key for it in items] == [f"{a0}/{v0}"]
    by_reason = {}
    for r in rejects:
        by_reason.setdefault(r.reason, []).append(r)
    assert sorted(by_reason) == ["bad_row", "missing_file"]
    assert str(split) in by_reason["bad_row"][0].message and "line 5" in by_reason["bad_row"][0].message
    messages = " ".join(r.message for r in by_reason["missing_file"])
    assert str(root / "joint_positions" / a0 / v1 / "joint_positions.mat") in messages
    assert "Ghost_walk_f_nm_np1_fr_med_0" in messages
    assert str(root / "Rename_Images" / a0 / JHMDB_VIDEOS[2][1]) in messages and "00004.png" in messages

    # an unreadable annotation fails the probe, naming the file; a mat without pos_img too
    mat = Path(items[0].paths[0])
    mat.write_bytes(b"MATLAB 5.0 MAT-file" + b"\0" * 10)
    with pytest.raises(DecodeError) as err:
        JhmdbPoseReader("p").probe(items[0], CTX)
    assert str(mat) in err.value.message and err.value.reason == "unreadable_annotation"
    scipy.io.savemat(mat, {"pos_world": np.zeros((2, 15, 3))})
    with pytest.raises(DecodeError) as err:
        JhmdbPoseReader("p").probe(items[0], CTX)
    assert "pos_img" in err.value.message

    # a flow file with two H x W x 2 x T arrays needs flow_key
    flow_mat = root / "puppet_flow_com" / a0 / v0 / "puppet_flow.mat"
    flow = scipy.io.loadmat(flow_mat)["flow"]
    scipy.io.savemat(flow_mat, {"flow": flow, "flow_backward": -flow})
    item = next(it for it in listing(JhmdbFlowReader("f"), root)[0] if it.key.endswith(v0))
    with pytest.raises(DecodeError) as err:
        JhmdbFlowReader("f").probe(item, CTX)
    assert str(flow_mat) in err.value.message
    assert JhmdbFlowReader("f", {"flow_key": "flow"}).probe(item, CTX).num_frames == flow.shape[3]


# --- AVA ------------------------------------------------------------------------------------------

AVA_FPS = 10.0
# (video id, extension, frames, {keyframe second: [(x1, y1, x2, y2, person, [actions])]})
AVA_VIDEOS = (("-5KQ66BBWC4", ".mkv", 30, {0: [(0.1, 0.2, 0.45, 0.9, 0, [12, 80]), (0.5, 0.1, 0.9, 0.95, 1, [14])],
                                           1: [(0.15, 0.2, 0.5, 0.9, 0, [12])],
                                           2: [(0.2, 0.25, 0.55, 0.9, 0, [12, 17, 80])]}),
              ("053oq2xB3oU", ".mp4", 24, {0: [(0.3, 0.3, 0.7, 0.8, 3, [11])], 2: [(0.35, 0.3, 0.75, 0.8, 3, [11])]}))


def write_ava(root: Path, extra_rows: str = "") -> Path:
    """A small AVA tree: the v2.2 CSV in annotations/ (real column layout, 4-digit timestamps as
    released), and real videos under videos/trainval/."""
    rows = []
    for k, (video_id, ext, n, keyframes) in enumerate(AVA_VIDEOS):
        write_video(root / "videos" / "trainval" / f"{video_id}{ext}",
                    video_frames(n, (64, 48), "bikes.mp4" if k == 0 else "bigbuckbunny.mp4"), fps=AVA_FPS)
        for t, boxes in keyframes.items():
            for x1, y1, x2, y2, person, actions in boxes:
                rows += [f"{video_id},{t:04d},{x1:.3f},{y1:.3f},{x2:.3f},{y2:.3f},{a},{person}" for a in actions]
    csv = root / "annotations" / "ava_train_v2.2.csv"
    csv.parent.mkdir(parents=True, exist_ok=True)
    csv.write_text("\n".join(rows) + "\n" + extra_rows)
    return csv


def test_ava_rows_parse_and_refuse_bad_ones():
    assert parse_row("-5KQ66BBWC4,0902,0.077,0.151,0.283,0.811,80,1".split(",")) == (
        "-5KQ66BBWC4", 902.0, (0.077, 0.151, 0.283, 0.811), 1)
    for bad in ("v,0902,0.5,0.1,0.2,0.8,80,1", "v,0902,0.1,0.1,0.2,1.5,80,1", "v,09x2,0.1,0.1,0.2,0.8,80,1",
                "v,0902,0.1,0.1,0.2,0.8,80"):
        with pytest.raises(ValueError):
            parse_row(bad.split(","))
    assert keyframe_indices([902.0, 903.0], 25.0, 900.0) == [50, 75]


def test_ava_lists_keyframes_and_rejects_bad_rows_and_missing_videos(tmp_path):
    root = tmp_path / "ava"
    csv = write_ava(root, "zzzNoSuchVid,0001,0.1,0.1,0.5,0.5,80,0\n-5KQ66BBWC4,0001,0.9,0.1,0.5,0.5,80,0\n")
    items, rejects = listing(AvaDetectionReader("ava_detection"), root)
    assert {it.key: it.num_frames for it in items} == {"-5KQ66BBWC4": 3, "053oq2xB3oU": 2}
    first = next(it for it in items if it.key == "-5KQ66BBWC4").annotation_json()
    assert first["times"] == [0.0, 1.0, 2.0]
    # one box per (box, person) of a keyframe, however many actions it has
    assert first["boxes"][0] == [[0.1, 0.2, 0.45, 0.9, 0], [0.5, 0.1, 0.9, 0.95, 1]]
    assert [len(b) for b in first["boxes"]] == [2, 1, 1]
    by_reason = {r.reason: r for r in rejects}
    assert set(by_reason) == {"bad_row", "missing_file"}
    assert str(csv) in by_reason["bad_row"].message
    assert by_reason["bad_row"].item_key == "annotations/ava_train_v2.2.csv:11"
    assert by_reason["missing_file"].item_key == "zzzNoSuchVid" and str(csv) in by_reason["missing_file"].message


def test_ava_maps_keyframes_to_frames_and_draws_boxes(tmp_path, decoder):
    root = tmp_path / "ava"
    write_ava(root)
    ctx = DecodeContext(max_pixels=10**8, video=decoder, image_size=64)
    reader = AvaDetectionReader("ava_detection")
    item = next(it for it in listing(reader, root)[0] if it.key == "-5KQ66BBWC4")
    probed = reader.probe(item, ctx)
    assert decoder.fps(item.paths[0]) == pytest.approx(AVA_FPS)
    assert probed.get("frames") == (0, 10, 20)
    out = reader.pictures(probed, [(1, "boxes"), (1, "frame")], ctx)
    frame, boxes = out[(1, "frame")].pixels, out[(1, "boxes")].pixels
    assert frame.shape == boxes.shape == (64, 64, 3)
    np.testing.assert_array_equal(frame, decoder.read_clip(item.paths[0], [10], 64)[0])
    x1, y1, x2, y2, person, _ = AVA_VIDEOS[0][3][1][0]
    colour = PALETTE[1 + person]
    assert (boxes[int(round(y1 * 64)) + 8, int(round(x1 * 64))] == colour).all()  # the box's left edge
    assert (boxes[int(round(y1 * 64)) + 8, int(round(x1 * 64)) + 8] == frame[int(round(y1 * 64)) + 8,
                                                                             int(round(x1 * 64)) + 8]).all()
    # an offset moves the keyframes; a keyframe past the end of the file rejects the video
    assert AvaDetectionReader("a", {"time_offset": -0.5}).probe(item, ctx).get("frames") == (5, 15, 25)
    with pytest.raises(DecodeError) as err:
        AvaDetectionReader("a", {"time_offset": -1.0}).probe(item, ctx)
    assert err.value.reason == "keyframe_outside_video" and item.paths[0] in err.value.message


# --- Objaverse ------------------------------------------------------------------------------------

def test_camera_azimuths_and_rotation_order():
    for azimuth in (0, 40, 135, 250, 340):
        assert math.degrees(camera_azimuth(look_at_rt(azimuth, 25))) % 360 == pytest.approx(azimuth)
    radians = [math.radians(a) for a in AZIMUTHS]
    order = rotation_order(radians)
    assert [AZIMUTHS[i] for i in order] == [40, 70, 100, 130, 160, 190, 220, 250, 280, 310, 340, 10]


def test_objaverse_orders_views_by_azimuth_and_composites_on_white(fixture_root):
    reader = ObjaverseViewsReader("objaverse_multiview")
    items, rejects = listing(reader, fixture_root / "objaverse")
    assert rejects == [] and sorted(it.key for it in items) == sorted(OBJAVERSE_UIDS)
    item = reader.probe(items[0], CTX)
    assert item.num_frames == 12
    order = item.get("order")
    assert [AZIMUTHS[i] for i in order] == [40, 70, 100, 130, 160, 190, 220, 250, 280, 310, 340, 10]
    out = reader.pictures(item, [(k, "view") for k in range(12)], CTX)
    for k in range(12):
        rgba = cv2.cvtColor(cv2.imread(item.paths[order[k]], cv2.IMREAD_UNCHANGED), cv2.COLOR_BGRA2RGBA)
        alpha = rgba[..., 3:4].astype(np.float64) / 255
        expected = np.rint(rgba[..., :3] * alpha + 255 * (1 - alpha))
        assert np.abs(out[(k, "view")].pixels.astype(np.int64) - expected).max() <= 1
    assert (out[(0, "view")].pixels[0, 0] == 255).all()  # transparent corner -> white


def test_objaverse_malformed_inputs(fixture_root, tmp_path):
    root = copy_folder(fixture_root, "objaverse", tmp_path)
    views = root / "views_release"
    uid0, uid1 = OBJAVERSE_UIDS
    (views / uid1 / "007.npy").unlink()
    (views / "valid_paths.json").write_text(json.dumps([uid0, uid1, "0000deadbeef"]))
    items, rejects = listing(ObjaverseViewsReader("o"), root)
    assert [it.key for it in items] == [uid0]
    by_reason = {r.reason: r for r in rejects}
    assert by_reason["missing_pair"].item_key == uid1 and "007" in by_reason["missing_pair"].message
    assert by_reason["missing_file"].item_key == "0000deadbeef"

    # a pickled camera is refused, never loaded
    np.save(views / uid0 / "003.npy", np.array([{"R": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DecodeError) as err:
        ObjaverseViewsReader("o").probe(items[0], CTX)
    assert str(views / uid0 / "003.npy") in err.value.message

    # without any camera, the views keep their file order
    for npy in (views / uid0).glob("*.npy"):
        npy.unlink()
    (views / "valid_paths.json").unlink()
    items, _ = listing(ObjaverseViewsReader("o"), root)
    item = ObjaverseViewsReader("o").probe(next(it for it in items if it.key == uid0), CTX)
    assert item.get("order") == tuple(range(12))

    (views / "valid_paths.json").write_text("[\"unterminated")
    with pytest.raises(DecodeError) as err:
        listing(ObjaverseViewsReader("o"), root)
    assert "valid_paths.json" in err.value.message


# --- end to end -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def built(fixture_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("family_video_annotations_out")
    return build_specs(list(SPECS), fixture_root, out), read_sentences(out)


def test_every_spec_builds_its_sentences(built):
    summary, sentences = built
    assert summary["unaccounted_items"] == 0 and summary["rejected_items"] == 0
    by_source = sentences_by_source(sentences)
    # multi-sequence: 2 shots (the two items) x 2 tasks x 16 frames, written separate then interleaved
    expected = {"vipseg_panoptic": [64, 64], "hand14k_segmentation": [64, 64], "jhmdb_flow": [64, 64],
                "jhmdb_pose": [64, 64], "ava_detection": [64, 64], "objaverse_multiview": [12, 12]}
    assert {k: sorted(s.num_images for s in v) for k, v in by_source.items()} == expected
    for name, group in by_source.items():
        spec = get_spec(name)
        for s in group:
            meta = s.meta
            assert meta.layout == spec.layout and s.tokens.shape[0] == len(meta.views)
            if spec.layout == "objaverse_multiview" or spec.layout == "multiview":
                assert len(meta.item_keys) == 1 and len({s.meta.item_keys for s in group}) == 2
                assert meta.views == ("view",) * 12 and meta.frame_indices == tuple(range(12))
                continue
            assert len(meta.item_keys) == 2 and len(group) == 2
            first = [meta.frame_indices[i] for i in range(64) if meta.image_items[i] == 0]
            if meta.views[:16] == (spec.views[0],) * 16:  # tasks separate: [A frames, A annotations, B ...]
                assert meta.views == (spec.views[0],) * 16 + (spec.views[1],) * 16 + (spec.views[0],) * 16 + (
                    spec.views[1],) * 16
                assert first[:16] == first[16:] and first[:16] == sorted(set(first[:16]))
            else:  # interleaved: [A f0 frame, A f0 annotation, A f1 ...]
                assert meta.views == spec.views * 32 and first[0::2] == first[1::2]
