"""Every reader that takes file paths from an index or annotation file keeps them inside the
dataset: an entry that is absolute, climbs out with ``..`` or goes through a symlink that leaves
its folder is rejected as ``unsafe_path``, naming the file that named it; the good entries
beside it are still listed, and no listed item reads a file outside the root."""

from __future__ import annotations

import io
import json
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from fixtures.common import photo, write_image
from spec_harness import listing

from uvd.pipeline.readers import READERS, Reader, reader_class


@dataclass
class Case:
    reader: Reader
    good: set[str]  # the keys listed as items
    unsafe: int  # how many entries are rejected as unsafe_path
    named_by: str  # the index or annotation file those rejects name


def touch(path: Path, data: bytes = b"\0") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def link(path: Path, target: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(target)


def frame_folders(root: Path, out: Path) -> Case:
    for folder in (out / "seq", root / "good", root / "good2"):
        write_image(folder / "00000.jpg", photo(0))
    link(root / "link", out / "seq")
    link(root / "good2" / "00001.jpg", out / "seq" / "00000.jpg")  # one frame of a good folder leaves the root
    touch(root / "index.txt", f"good\n../out/seq\n{out / 'seq'}\nlink\ngood2\n".encode())
    reader = reader_class("frame_folders")("s", {"index": "index.txt", "columns": ("id",), "path": "{id}"})
    return Case(reader, {"good"}, 4, "index.txt")


def video_index(root: Path, out: Path) -> Case:
    touch(out / "v.mp4")
    touch(root / "videos" / "good.mp4")
    link(root / "videos" / "link.mp4", out / "v.mp4")
    touch(root / "index.txt", f"good.mp4\n../../out/v.mp4\n{out / 'v.mp4'}\nlink.mp4\n".encode())
    reader = reader_class("video_index")("s", {"index": "index.txt", "columns": ("id",), "path": "{id}",
                                                "videos": "videos"})
    return Case(reader, {"good.mp4"}, 3, "index.txt")


def hmdb51_splits(root: Path, out: Path) -> Case:
    touch(out / "v.avi")
    touch(root / "hmdb51_org" / "jump" / "good.avi")
    link(root / "hmdb51_org" / "jump" / "link.avi", out / "v.avi")
    touch(root / "testTrainMulti_7030_splits" / "jump_test_split1.txt",
          f"good.avi 1\n../../../out/v.avi 1\n{out / 'v.avi'} 1\nlink.avi 1\n".encode())
    return Case(reader_class("hmdb51_splits")("s"), {"jump/good.avi"}, 3, "jump_test_split1.txt")


def coco(root: Path, out: Path) -> Case:
    write_image(out / "x.jpg", photo(1))
    write_image(root / "train2017" / "good.jpg", photo(0))
    link(root / "train2017" / "link.jpg", out / "x.jpg")
    names = ["good.jpg", "../../out/x.jpg", str(out / "x.jpg"), "link.jpg"]
    images = [{"id": i, "file_name": n, "height": 72, "width": 96} for i, n in enumerate(names)]
    touch(root / "annotations" / "instances_train2017.json",
          json.dumps({"images": images, "annotations": []}).encode())
    return Case(reader_class("coco")("s", {"annotations": "none"}), {"good.jpg"}, 3, "instances_train2017.json")


def image_folder(root: Path, out: Path) -> Case:
    write_image(out / "x.png", photo(1))
    write_image(root / "imgs" / "good.png", photo(0))
    link(root / "imgs" / "link.png", out / "x.png")
    # a leading "/" is the UP-3D lists' way of naming a file of the folder, not an absolute path
    touch(root / "imgs" / "list.txt", b"/good.png\n../../out/x.png\nlink.png\n")
    reader = reader_class("image_folder")("s", {"folder": "imgs", "list_file": "list.txt"})
    return Case(reader, {"imgs/good.png"}, 2, "list.txt")


def imagenet(root: Path, out: Path) -> Case:
    write_image(out / "x.JPEG", photo(1))
    write_image(root / "val" / "good.JPEG", photo(0))
    link(root / "val" / "link.JPEG", out / "x.JPEG")
    rows = ["ImageId,PredictionString", "good,n01 1 2 3 4", "../out/x,n02 1", f"{out / 'x'},n03 1", "link,n04 1"]
    touch(root / "LOC_val_solution.csv", "\n".join(rows).encode())
    return Case(reader_class("imagenet")("s", {"split_dir": "val"}), {"val/good.JPEG"}, 3, "LOC_val_solution.csv")


def _jhmdb(name: str, annotation_dir: str, annotation_file: str):
    def build(root: Path, out: Path) -> Case:
        frames = root / "Rename_Images" / "jump"
        for folder in (out / "vid", frames / "good", frames / "good2"):
            write_image(folder / "00001.png", photo(0))
        for video in ("good", "good2"):
            touch(root / annotation_dir / "jump" / video / annotation_file)
        link(root / "Rename_Images" / "jump" / "link", out / "vid")
        touch(out / "ann" / annotation_file)
        (root / annotation_dir / "jump" / "good2" / annotation_file).unlink()
        (root / annotation_dir / "jump" / "good2").rmdir()
        link(root / annotation_dir / "jump" / "good2", out / "ann")  # its annotation folder leaves the root
        touch(root / "splits" / "jump_test_split1.txt",
              f"good.avi 1\n../../../out/vid.avi 1\n{out / 'vid'}.avi 1\nlink.avi 1\ngood2.avi 1\n".encode())
        return Case(reader_class(name)("s"), {"jump/good"}, 4, "jump_test_split1.txt")
    return build


def objaverse_views(root: Path, out: Path) -> Case:
    write_image(out / "obj" / "000.png", photo(1))
    write_image(root / "views_release" / "good" / "000.png", photo(0))
    link(root / "views_release" / "link", out / "obj")
    touch(root / "views_release" / "valid_paths.json",
          json.dumps(["good", "../../out/obj", str(out / "obj"), "link"]).encode())
    return Case(reader_class("objaverse_views")("s"), {"good"}, 3, "valid_paths.json")


def vipseg(root: Path, out: Path) -> Case:
    write_image(out / "vid" / "f.png", photo(1))
    write_image(root / "images" / "good" / "f.jpg", photo(0))
    write_image(root / "panomasks" / "good" / "f.png", photo(0)[..., 0])
    link(root / "panomasks" / "link", out / "vid")
    touch(root / "panoVIPSeg_categories.json", b'[{"id": 0, "name": "wall"}]')
    touch(root / "split.txt", f"good\n../../out/vid\n{out / 'vid'}\nlink\n".encode())
    return Case(reader_class("vipseg")("s", {"split_file": "split.txt"}), {"good"}, 3, "split.txt")


def ava_detection(root: Path, out: Path) -> Case:
    touch(out / "vid.mp4")
    touch(root / "videos" / "trainval" / "good.mp4")
    link(root / "videos" / "trainval" / "link.mp4", out / "vid.mp4")
    rows = [f"{video},1,0.1,0.1,0.5,0.5,1,0" for video in ("good", "../../../out/vid", out / "vid", "link")]
    touch(root / "annotations" / "ava_train_v2.2.csv", ("\n".join(rows) + "\n").encode())
    return Case(reader_class("ava_detection")("s"), {"good"}, 3, "ava_train_v2.2.csv")


def laion(root: Path, out: Path) -> Case:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name in ("good.jpg", "../out.jpg", "/etc/abs.jpg"):
            info = tarfile.TarInfo(name)
            info.size = 4
            tar.addfile(info, io.BytesIO(b"\xff\xd8\xff\xe0"))
        info = tarfile.TarInfo("link.jpg")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(info)
    touch(root / "00000.tar", buffer.getvalue())
    return Case(reader_class("laion")("s"), {"00000/good"}, 3, "00000.tar")


CASES = {"frame_folders": frame_folders, "video_index": video_index, "hmdb51_splits": hmdb51_splits, "coco": coco,
         "image_folder": image_folder, "imagenet": imagenet, "objaverse_views": objaverse_views, "vipseg": vipseg,
         "jhmdb_pose": _jhmdb("jhmdb_pose", "joint_positions", "joint_positions.mat"),
         "jhmdb_flow": _jhmdb("jhmdb_flow", "puppet_flow_com", "puppet_flow.mat"),
         "ava_detection": ava_detection, "laion": laion}


def test_every_reader_of_index_paths_is_covered():
    reader_class("coco")  # the registry fills on first use
    assert set(CASES) == {name for name, cls in READERS.items() if cls.index_paths}


@pytest.mark.parametrize("name", sorted(CASES))
def test_index_paths_stay_inside_the_root(name, tmp_path):
    root, out = tmp_path / "data", tmp_path / "out"
    root.mkdir()
    out.mkdir()
    case = CASES[name](root, out)
    items, rejects = listing(case.reader, root)
    assert {item.key for item in items} == case.good, rejects
    unsafe = [r for r in rejects if r.reason == "unsafe_path"]
    assert len(unsafe) == case.unsafe, [(r.reason, r.message) for r in rejects]
    assert all(case.named_by in r.message and r.source == "s" for r in unsafe)
    inside = os.path.realpath(root) + os.sep
    assert all(os.path.realpath(path).startswith(inside) for item in items for path in item.paths)
