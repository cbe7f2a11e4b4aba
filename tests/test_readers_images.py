"""Image readers on their release layouts: ImageNet (class folders, flat val + Kaggle CSV), plain
image folders (LV-MHP, MPII, UP-3D), LAION img2dataset shards, paired files (SIDD, LOL),
side-by-side pairs (DID-MDN), parquet pairs (InstructPix2Pix) and KITTI stereo; malformed inputs
are rejected naming the file while the rest still lists; and every image spec builds end to end."""

from __future__ import annotations

import io
import shutil
import tarfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from annotator_models import export_all
from fixtures import make_fixtures
from fixtures.common import photo, write_image
from fixtures.images import (
    IMAGENET_CLASSES,
    IMAGENET_VAL,
    encode,
    ip2p_row,
    jpeg_pixels,
    write_img2dataset_shard,
    write_ip2p_parquet,
)
from PIL import Image
from spec_harness import build_specs, listing, read_sentences, sentences_by_source

from uvd.dataset_specs import get_spec
from uvd.format import storage
from uvd.media.images import DecodeError
from uvd.pipeline.readers import DecodeContext, make_reader
from uvd.pipeline.readers.imagenet import ImageFolderReader, ImageNetReader
from uvd.pipeline.readers.kitti import KittiStereoReader
from uvd.pipeline.readers.laion import LaionReader
from uvd.pipeline.readers.modalities import KittiModalitiesReader
from uvd.pipeline.readers.paired import PairedFilesReader, ParquetPairsReader, SideBySidePairsReader
from uvd.pipeline.records.items import Item

CTX = DecodeContext(max_pixels=50_000_000)
FOLDERS = ("imagenet", "laion", "sidd", "lol", "did_mdn", "instructpix2pix", "kitti", "lvmhp", "mpii", "unite",
           "kitti-cot_crop")


@pytest.fixture(scope="module")
def datasets(tmp_path_factory) -> Path:
    """Every fixture folder of this family, written once and never modified."""
    return make_fixtures(FOLDERS, tmp_path_factory.mktemp("image_datasets"))


def copy_of(datasets: Path, folder: str, tmp_path: Path) -> Path:
    """A private copy of a fixture folder, for a test that breaks it."""
    return Path(shutil.copytree(datasets / folder, tmp_path / folder))




def spec_reader(name: str):
    return make_reader(get_spec(name))


def render(reader, item: Item) -> dict[str, np.ndarray]:
    out = reader.pictures(item, [(0, v) for v in reader.views], CTX)
    return {view: out[(0, view)].pixels for view in reader.views}


def image_of(path: Path) -> np.ndarray:
    return jpeg_pixels(path.read_bytes())


# --- ImageNet --------------------------------------------------------------------------------------

def test_imagenet_train_lists_one_unit_per_class_folder(datasets):
    reader = spec_reader("imagenet_classification")
    root = datasets / "imagenet"
    assert reader.units(str(root)) == [str(root / "train" / wnid) for wnid in sorted(IMAGENET_CLASSES)]
    items, rejects = listing(reader, root)
    assert not rejects and len(items) == 20
    for item in items:
        wnid = item.key.split("/")[1]
        assert item.label == wnid and item.key.startswith(f"train/{wnid}/{wnid}_") and item.key.endswith(".JPEG")
    pixels = render(reader, items[0])["image"]
    assert pixels.shape == (72, 96, 3) and np.array_equal(pixels, image_of(Path(items[0].paths[0])))


def test_imagenet_flat_val_is_labelled_by_the_kaggle_solution_csv(datasets):
    reader = ImageNetReader("imagenet_val", {"split_dir": "val"})
    root = datasets / "imagenet"
    assert reader.units(str(root)) == [str(root / "val")]
    items, rejects = listing(reader, root)
    assert not rejects
    assert {item.key: item.label for item in items} == {f"val/{i}.JPEG": wnid for i, wnid in IMAGENET_VAL.items()}


def test_imagenet_flat_val_rejects_bad_rows_unlabelled_images_and_missing_files(datasets, tmp_path):
    root = copy_of(datasets, "imagenet", tmp_path)
    csv_path = root / "LOC_val_solution.csv"
    lines = csv_path.read_text().splitlines()
    lines[2] = "ILSVRC2012_val_00000002,"  # no prediction string: no wnid
    lines.append("ILSVRC2012_val_00000009,n01440764 1 2 3 4")  # names an image that is not there
    csv_path.write_text("\n".join(lines) + "\n")
    write_image(root / "val" / "ILSVRC2012_val_00000004.JPEG", photo(7))  # an image with no row
    items, rejects = listing(ImageNetReader("imagenet_val", {"split_dir": "val"}), root)
    assert sorted(item.key for item in items) == ["val/ILSVRC2012_val_00000001.JPEG",
                                                  "val/ILSVRC2012_val_00000003.JPEG"]
    by_key = {r.item_key: r for r in rejects}
    assert {k: r.reason for k, r in by_key.items()} == {"val/ILSVRC2012_val_00000002.JPEG": "bad_row",
                                                       "val/ILSVRC2012_val_00000004.JPEG": "missing_label",
                                                       "val/ILSVRC2012_val_00000009.JPEG": "missing_file"}
    assert str(csv_path) in by_key["val/ILSVRC2012_val_00000002.JPEG"].message
    assert str(root / "val" / "ILSVRC2012_val_00000004.JPEG") in by_key["val/ILSVRC2012_val_00000004.JPEG"].message
    missing = by_key["val/ILSVRC2012_val_00000009.JPEG"].message
    assert str(csv_path) in missing and str(root / "val" / "ILSVRC2012_val_00000009.JPEG") in missing


def test_imagenet_flat_val_without_its_csv_is_an_unreadable_unit(datasets, tmp_path):
    root = copy_of(datasets, "imagenet", tmp_path)
    (root / "LOC_val_solution.csv").unlink()
    reader = ImageNetReader("imagenet_val", {"split_dir": "val"})
    with pytest.raises(DecodeError) as e:
        list(reader.items(str(root), str(root / "val")))
    assert e.value.reason == "unreadable_annotation" and str(root / "LOC_val_solution.csv") in e.value.message
    with pytest.raises(ValueError, match="no images"):
        ImageNetReader("imagenet", {"split_dir": "test"}).units(str(root))


# --- plain image folders (pose sources) -----------------------------------------------------------

def test_image_folder_reads_only_the_configured_sub_folder(datasets):
    items, rejects = listing(spec_reader("lvmhp_pose"), datasets / "lvmhp")
    assert not rejects and len(items) == 10
    assert all(item.key.startswith("LV-MHP-v2/train/images/") and item.key.endswith(".jpg") for item in items)
    items, _ = listing(spec_reader("mpii_pose"), datasets / "mpii")
    assert [item.key for item in items][:2] == ["images/000001163.jpg", "images/000003072.jpg"] and len(items) == 10
    with pytest.raises(DecodeError, match="no images"):
        list(ImageFolderReader("x", {"folder": "LV-MHP-v2/test/images"}).items(str(datasets / "lvmhp"),
                                                                               str(datasets / "lvmhp")))


def test_unite_the_people_reads_the_photos_its_split_list_names(datasets):
    reader = spec_reader("unite_pose")
    items, rejects = listing(reader, datasets / "unite")
    assert not rejects
    assert [item.key for item in items] == [f"up-3d/{n:05d}_image.png" for n in range(10)]  # not test.txt's
    assert np.array_equal(render(reader, items[3])["image"], image_of(datasets / "unite" / "up-3d" / "00003_image.png"))
    by_suffix, _ = listing(ImageFolderReader("unite_all", {"folder": "up-3d", "suffix": "_image.png"}),
                           datasets / "unite")
    assert len(by_suffix) == 12 and not any("render_light" in item.key for item in by_suffix)


def test_a_split_list_naming_a_missing_or_outside_file_is_rejected(datasets, tmp_path):
    root = copy_of(datasets, "unite", tmp_path)
    (root / "up-3d" / "00004_image.png").unlink()
    listed = root / "up-3d" / "trainval.txt"
    listed.write_text(listed.read_text() + "/../../secret_image.png\n")
    items, rejects = listing(spec_reader("unite_pose"), root)
    assert len(items) == 9 and "up-3d/00004_image.png" not in {item.key for item in items}
    by_reason = {r.reason: r for r in rejects}
    assert set(by_reason) == {"missing_file", "unsafe_path"}
    assert by_reason["missing_file"].item_key == "up-3d/00004_image.png"
    assert str(listed) in by_reason["missing_file"].message
    assert str(root / "up-3d" / "00004_image.png") in by_reason["missing_file"].message
    assert str(listed) in by_reason["unsafe_path"].message and "secret_image" in by_reason["unsafe_path"].message


# --- LAION (img2dataset webdataset) ------------------------------------------------------------------

def tar_member(tar_path: Path, name: str) -> bytes:
    with tarfile.open(tar_path) as tar:
        return tar.extractfile(name).read()


def test_laion_lists_image_members_and_renders_one_member_by_range(datasets, monkeypatch):
    reader = spec_reader("laion")
    root = datasets / "laion"
    assert reader.units(str(root)) == [str(root / "00000.tar"), str(root / "00001.tar")]
    items, rejects = listing(reader, root)
    assert not rejects  # 000000002 failed to download: in the parquet, not in the tar, and not expected there
    assert [item.key for item in items] == ["00000/000000000", "00000/000000001", "00000/000000003",
                                            "00000/000000004", "00001/000010000", "00001/000010001"]
    item = items[2]
    assert item.get("member") == "000000003.jpg" and item.paths == (str(root / "00000.tar"),)
    reads = []

    def read_range(path, offset, size):
        reads.append((path, offset, size))
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read(size)

    monkeypatch.setattr(storage, "read_range", read_range)
    monkeypatch.setattr(storage, "read_bytes", lambda path: pytest.fail(f"render read all of {path}"))
    pixels = render(reader, item)["image"]
    assert reads == [(item.paths[0], item.get("offset"), item.get("size"))]
    assert np.array_equal(pixels, jpeg_pixels(tar_member(root / "00000.tar", "000000003.jpg")))


def test_laion_rejects_samples_the_parquet_has_but_the_tar_lacks(datasets, tmp_path):
    root = copy_of(datasets, "laion", tmp_path)
    with tarfile.open(root / "00000.tar") as tar:
        kept = [(info, tar.extractfile(info).read()) for info in tar if not info.name.startswith("000000001.")]
    with tarfile.open(root / "00000.tar", "w") as tar:  # the same shard, without sample 000000001
        for info, data in kept:
            tar.addfile(info, io.BytesIO(data))
    items, rejects = listing(spec_reader("laion"), root)
    assert "00000/000000001" not in {item.key for item in items} and len(items) == 5
    [reject] = rejects
    assert (reject.item_key, reject.reason) == ("00000/000000001", "missing_member")
    assert str(root / "00000.tar") in reject.message and "000000001" in reject.message


def test_laion_unreadable_tar_is_rejected_and_other_shards_still_list(datasets, tmp_path):
    root = copy_of(datasets, "laion", tmp_path)
    (root / "00001.tar").write_bytes(b"this is not a tar archive" * 40)
    reader = spec_reader("laion")
    with pytest.raises(DecodeError) as e:
        list(reader.items(str(root), str(root / "00001.tar")))
    assert e.value.reason == "unreadable_tar" and str(root / "00001.tar") in e.value.message
    assert len([x for x in reader.items(str(root), str(root / "00000.tar")) if isinstance(x, Item)]) == 4


def test_laion_never_uses_untrusted_member_names(tmp_path):
    root = tmp_path / "laion"
    write_img2dataset_shard(root, 0, [{"url": "u", "caption": "c", "image": photo(1)}])
    good = encode(photo(2))
    with tarfile.open(root / "00000.tar", "a") as tar:
        for name in ("../escape.jpg", "/absolute.jpg", "nested/000000009.jpg"):
            info = tarfile.TarInfo(name)
            info.size = len(good)
            tar.addfile(info, io.BytesIO(good))
        link = tarfile.TarInfo("000000008.jpg")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    items, rejects = listing(LaionReader("laion"), root)
    assert [item.key for item in items] == ["00000/000000000"]
    assert sorted(r.reason for r in rejects) == ["bad_member"] + ["unsafe_path"] * 3  # nested; .., /, a link
    assert all(str(root / "00000.tar") in r.message for r in rejects)
    assert not (tmp_path / "escape.jpg").exists() and not (root / "nested").exists()


def test_laion_undecodable_member_fails_at_render_naming_tar_and_member(tmp_path):
    root = tmp_path / "laion"
    write_img2dataset_shard(root, 0, [{"url": "u", "caption": "c", "image": photo(1)}])
    garbage = b"\xff\xd8 not a jpeg at all"
    with tarfile.open(root / "00000.tar", "a") as tar:
        info = tarfile.TarInfo("000000001.jpg")
        info.size = len(garbage)
        tar.addfile(info, io.BytesIO(garbage))
    reader = LaionReader("laion")
    items, _ = listing(reader, root)
    with pytest.raises(DecodeError) as e:
        render(reader, items[1])
    assert e.value.reason == "unreadable_image" and f"{root / '00000.tar'}[000000001.jpg]" in e.value.message


# --- paired files (SIDD, LOL) and side-by-side pairs (DID-MDN) ------------------------------------------

def test_sidd_pairs_noisy_and_ground_truth_of_each_scene(datasets):
    reader = spec_reader("sidd_denoise")
    root = datasets / "sidd"
    items, rejects = listing(reader, root)
    assert not rejects and len(items) == 10
    for item in items:
        noisy_path, clean_path = map(Path, item.paths)
        assert noisy_path.name == "NOISY_SRGB_010.PNG" and clean_path == noisy_path.with_name("GT_SRGB_010.PNG")
    views = render(reader, items[0])
    assert np.array_equal(views["input"], image_of(Path(items[0].paths[0])))
    assert np.array_equal(views["target"], image_of(Path(items[0].paths[1])))
    assert np.abs(views["input"].astype(int) - views["target"]).mean() > 5  # noisy differs from clean


def test_a_missing_partner_is_rejected_on_either_side(datasets, tmp_path):
    root = copy_of(datasets, "lol", tmp_path)
    (root / "our485" / "high" / "5.png").unlink()
    (root / "our485" / "low" / "6.png").unlink()
    reader = spec_reader("lol_enhance")
    items, rejects = listing(reader, root)
    assert len(items) == 8 and all(Path(i.paths[1]).parent.name == "high" for i in items)
    by_key = {r.item_key: r for r in rejects}
    assert {k: r.reason for k, r in by_key.items()} == {"our485/low/5.png": "missing_pair",
                                                       "our485/high/6.png": "missing_pair"}
    assert str(root / "our485" / "low" / "5.png") in by_key["our485/low/5.png"].message
    assert str(root / "our485" / "high" / "5.png") in by_key["our485/low/5.png"].message
    assert str(root / "our485" / "high" / "6.png") in by_key["our485/high/6.png"].message
    views = render(reader, items[0])
    assert views["input"].mean() < views["target"].mean() / 4  # low light, then normal light


def test_paired_readers_refuse_incomplete_arguments():
    with pytest.raises(ValueError, match="input_part must occur in input_glob"):
        PairedFilesReader("x", {"input_glob": "low/*.png", "input_part": "/dark/", "target_part": "/high/"})
    with pytest.raises(ValueError, match="input_half"):
        SideBySidePairsReader("x", {"glob": "*.jpg", "input_half": "top"})
    with pytest.raises(ValueError, match="unknown reader_args"):
        ParquetPairsReader("x", {"files": "*.parquet"})


def test_did_mdn_splits_each_image_into_rainy_left_and_clean_right(datasets):
    reader = spec_reader("did_mdn_derain")
    items, rejects = listing(reader, datasets / "did_mdn")
    assert not rejects and len(items) == 10
    assert {item.key.split("/")[1] for item in items} == {"Rain_Heavy", "Rain_Medium", "Rain_Light"}
    whole = image_of(Path(items[0].paths[0]))
    views = render(reader, items[0])
    assert views["input"].shape == views["target"].shape == (64, 64, 3)
    assert np.array_equal(views["input"], whole[:, :64]) and np.array_equal(views["target"], whole[:, 64:])
    assert views["input"].mean() > views["target"].mean()  # the streaks brighten the rainy half
    swapped = render(SideBySidePairsReader("x", {"glob": "*/*/*/*.jpg", "input_half": "right"}), items[0])
    assert np.array_equal(swapped["input"], views["target"])


# --- parquet pairs (InstructPix2Pix) -------------------------------------------------------------------

def test_instructpix2pix_rows_are_pairs_with_their_prompts(datasets):
    reader = spec_reader("instructpix2pix")
    root = datasets / "instructpix2pix"
    items, rejects = listing(reader, root)
    assert not rejects and len(items) == 10
    first = "data/train-00000-of-00002-57cebf95b4a9170c"
    assert [item.key for item in items[:6]] == [f"{first}/{row}" for row in range(6)]
    assert [(item.get("row_group"), item.get("index")) for item in items[:6]] == [(0, 0), (0, 1), (0, 2), (0, 3),
                                                                                  (1, 0), (1, 1)]
    assert items[7].annotation_json() == {k: ip2p_row(7)[k] for k in ("original_prompt", "edit_prompt",
                                                                       "edited_prompt")}
    views = render(reader, items[5])
    assert np.array_equal(views["input"], jpeg_pixels(ip2p_row(5)["original_image"]["bytes"]))
    assert np.array_equal(views["target"], jpeg_pixels(ip2p_row(5)["edited_image"]["bytes"]))


def test_instructpix2pix_render_reads_one_row_group_not_the_file(tmp_path, monkeypatch):
    rows = []
    for i in range(48):
        row = ip2p_row(i)
        row["original_image"]["bytes"] = encode(photo(i, (256, 192)), ".png")
        rows.append(row)
    path = write_ip2p_parquet(tmp_path / "ip2p" / "data" / "train-00000-of-00001.parquet", rows, row_group_size=4)
    reader = spec_reader("instructpix2pix")
    items, _ = listing(reader, tmp_path / "ip2p")
    read = []
    real_read_range = storage.read_range

    def counting_read_range(p, offset, size):
        read.append(size)
        return real_read_range(p, offset, size)

    monkeypatch.setattr(storage, "read_range", counting_read_range)
    monkeypatch.setattr(storage, "read_bytes", lambda p: pytest.fail(f"render read all of {p}"))
    views = render(reader, items[41])
    assert np.array_equal(views["input"], jpeg_pixels(rows[41]["original_image"]["bytes"]))
    assert pq.ParquetFile(path).num_row_groups == 12 and sum(read) < path.stat().st_size / 3


def test_instructpix2pix_rows_without_an_image_are_missing_pairs(tmp_path):
    rows = [ip2p_row(i) for i in range(5)]
    rows[1]["edited_image"] = None
    rows[3]["original_image"] = {"bytes": b"", "path": "lost.jpg"}
    path = write_ip2p_parquet(tmp_path / "ip2p" / "data" / "train-00000-of-00001.parquet", rows)
    items, rejects = listing(spec_reader("instructpix2pix"), tmp_path / "ip2p")
    assert [item.key for item in items] == [f"data/train-00000-of-00001/{r}" for r in (0, 2, 4)]
    by_key = {r.item_key: r for r in rejects}
    assert {k: r.reason for k, r in by_key.items()} == {"data/train-00000-of-00001/1": "missing_pair",
                                                       "data/train-00000-of-00001/3": "missing_pair"}
    assert str(path) in by_key["data/train-00000-of-00001/1"].message
    assert "edited_image" in by_key["data/train-00000-of-00001/1"].message
    assert "original_image" in by_key["data/train-00000-of-00001/3"].message


def test_instructpix2pix_unreadable_parquet_is_an_unreadable_unit(datasets, tmp_path):
    root = copy_of(datasets, "instructpix2pix", tmp_path)
    broken = root / "data" / "train-00001-of-00002-9f1d0a3c7e2b4d61.parquet"
    broken.write_bytes(b"PAR1 but not really" * 10)
    reader = spec_reader("instructpix2pix")
    with pytest.raises(DecodeError) as e:
        list(reader.items(str(root), str(broken)))
    assert e.value.reason == "unreadable_annotation" and str(broken) in e.value.message
    good = reader.units(str(root))[0]
    assert len(list(reader.items(str(root), good))) == 6


# --- KITTI stereo ---------------------------------------------------------------------------------------

def test_kitti_2015_pairs_left_and_right_cameras(datasets):
    reader = spec_reader("kitti_stereo")
    root = datasets / "kitti"
    items, rejects = listing(reader, root)
    assert not rejects and len(items) == 10
    assert items[0].key == "training/image_2/000000_10.png"
    assert items[0].paths == tuple(str(root / "training" / side / "000000_10.png") for side in ("image_2", "image_3"))
    views = render(reader, items[0])
    assert np.array_equal(views["left"], image_of(Path(items[0].paths[0])))
    assert np.array_equal(views["right"], image_of(Path(items[0].paths[1])))
    assert not np.array_equal(views["left"], views["right"])


def test_kitti_unpaired_images_are_rejected_naming_them(datasets, tmp_path):
    root = copy_of(datasets, "kitti", tmp_path)
    (root / "training" / "image_3" / "000001_10.png").unlink()
    write_image(root / "training" / "image_3" / "000009_10.png", photo(3))
    items, rejects = listing(spec_reader("kitti_stereo"), root)
    assert len(items) == 9
    by_key = {r.item_key: r for r in rejects}
    assert {k: r.reason for k, r in by_key.items()} == {"training/image_2/000001_10.png": "missing_pair",
                                                       "training/image_3/000009_10.png": "missing_pair"}
    assert str(root / "training/image_3/000001_10.png") in by_key["training/image_2/000001_10.png"].message
    assert str(root / "training/image_3/000009_10.png") in by_key["training/image_3/000009_10.png"].message
    broken = root / "training" / "image_3" / "000002_10.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"truncated" * 8)
    with pytest.raises(DecodeError) as e:
        render(spec_reader("kitti_stereo"), next(i for i in items if i.key == "training/image_2/000002_10.png"))
    assert e.value.reason == "unreadable_image" and str(broken) in e.value.message


def test_kitti_2012_colored_folders_are_read_too(tmp_path):
    for side, shift in (("colored_0", 0), ("colored_1", 6)):
        for n in range(2):
            write_image(tmp_path / "training" / side / f"{n:06d}_10.png", np.roll(photo(n), shift, axis=1))
    items, rejects = listing(KittiStereoReader("kitti"), tmp_path)
    assert not rejects and [item.key for item in items] == ["training/colored_0/000000_10.png",
                                                             "training/colored_0/000001_10.png"]
    with pytest.raises(DecodeError, match="neither image_2/image_3"):
        list(KittiStereoReader("kitti", {"split": "testing"}).items(str(tmp_path), str(tmp_path)))


def test_kitti_modalities_match_files_by_name_across_the_seven_folders(datasets, tmp_path):
    """LVM's kitti-cot_crop: a frame is an item when every modality folder has its name (up to the first dot)."""
    items, rejects = listing(KittiModalitiesReader("kitti_multimodal"), datasets / "kitti-cot_crop")
    assert not rejects and [it.key for it in items] == [f"{i:06d}_10" for i in range(10)]
    assert [Path(p).parent.name for p in items[0].paths] == list(KittiModalitiesReader.views)
    out = KittiModalitiesReader("kitti_multimodal").pictures(items[3], [(0, "stereo"), (0, "image")], CTX)
    np.testing.assert_array_equal(out[(0, "image")].pixels, np.asarray(Image.open(items[3].paths[0]).convert("RGB")))
    broken = copy_of(datasets, "kitti-cot_crop", tmp_path)
    (broken / "scene_flow" / "000002_10.png").unlink()
    write_image(broken / "depth" / "000004_10.jpg", photo(1))  # the same name twice in one modality
    items, rejects = listing(KittiModalitiesReader("kitti_multimodal"), broken)
    assert len(items) == 8 and {(r.item_key, r.reason) for r in rejects} == {
        ("000002_10", "missing_pair"), ("000004_10", "ambiguous_file")}
    assert str(broken / "scene_flow") in next(r.message for r in rejects if r.reason == "missing_pair")


# --- every image spec, end to end ----------------------------------------------------------------------

PAIRS_OF_TEN = ("sidd_denoise", "lol_enhance", "did_mdn_derain", "instructpix2pix", "kitti_stereo", "lvmhp_pose",
                "mpii_pose", "unite_pose")
IMAGENET_PAIRS = ("imagenet_colorization", "imagenet_inpainting", "imagenet_depth", "imagenet_normals",
                  "imagenet_edges", "imagenet_segmentation")
# images per sentence, per spec, with one epoch (the build's LOL lacks a pair, its LAION an image)
EXPECTED_SIZES = {"laion": [1] * 5, "imagenet_classification": [4, 16], "lol_enhance": [2, 16],
                  **{name: [8, 16, 16] for name in IMAGENET_PAIRS},
                  **{name: [4, 16] for name in PAIRS_OF_TEN if name != "lol_enhance"}}


def break_for_the_build(root: Path) -> None:
    """A missing pair partner (rejected at listing) and an undecodable image (rejected at render)."""
    (root / "lol" / "our485" / "high" / "5.png").unlink()
    shard = root / "laion" / "00001.tar"
    with tarfile.open(shard) as tar:
        members = [(info, tar.extractfile(info).read()) for info in tar]
    with tarfile.open(shard, "w") as tar:
        for info, data in members:
            data = b"\xff\xd8\xff broken jpeg" if info.name == "000010001.jpg" else data
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


@pytest.fixture(scope="module")
def built(datasets, tmp_path_factory):
    root = Path(shutil.copytree(datasets, tmp_path_factory.mktemp("broken") / "datasets"))
    break_for_the_build(root)
    out = tmp_path_factory.mktemp("image_specs_built")
    annotators = export_all(tmp_path_factory.mktemp("annotators"))
    summary = build_specs(list(EXPECTED_SIZES), root, out, annotators=annotators)
    return summary, defaultdict(list, sentences_by_source(read_sentences(out)))


def test_every_image_spec_builds_its_layout_and_accounts_for_every_item(built):
    summary, by_source = built
    assert summary["unaccounted_items"] == 0
    assert summary["rejects"] == {"missing_pair": 1, "unreadable_image": 1}  # the rest still built
    for name, sizes in EXPECTED_SIZES.items():
        spec, sentences = get_spec(name), by_source[name]
        assert sorted(len(s.meta.views) for s in sentences) == sizes, name
        written = len(sizes) if spec.layout == "single_image" else sum(sizes) // len(spec.views)
        counts = summary["items"][name]
        rejected = 1 if name == "laion" else 0  # 000010001 was listed, then failed to decode
        assert (counts["written"], counts["rejected"], counts["unaccounted"]) == (written, rejected, 0), name
        for sentence in sentences:
            meta = sentence.meta
            assert meta.layout == spec.layout and meta.group == spec.group, name
            if spec.layout == "category":
                assert len(set(meta.item_keys)) == len(meta.views) and set(meta.views) == {"image"}
            else:
                n = len(meta.views) // len(spec.views)
                assert list(meta.views) == list(spec.views) * n, name
                assert list(meta.image_items) == [i for i in range(n) for _ in spec.views], name
    assert "00001/000010001" not in {k for s in by_source["laion"] for k in s.meta.item_keys}


def test_category_sentences_hold_four_images_of_each_class(built):
    _, by_source = built
    full = max(by_source["imagenet_classification"], key=lambda s: len(s.meta.views))
    classes = [key.split("/")[1] for key in full.meta.item_keys]
    assert len(set(classes)) == 4 and all(classes.count(c) == 4 for c in set(classes))
