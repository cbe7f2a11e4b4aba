"""Model annotators: hostile annotator folders never run code, and every kind's drawing matches
expected values built by hand from a model whose output is known."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import cv2
import matplotlib
import numpy as np
import pytest
import torch
from annotator_models import export_annotator, export_module
from click.testing import CliRunner
from fixtures.common import photo, write_image
from torch import nn

from uvd.cli import main
from uvd.media.drawing import PALETTE
from uvd.pipeline.views.annotators import CannyEdges, ExportedModelAnnotator, load_annotator
from uvd.pipeline.views.exported import UnsafeModelFile, check_shape_expression

# --- hostile archives -------------------------------------------------------------------------------


class RunsCode:
    """Unpickling this writes ``marker``: what a hostile model file would do, harmlessly."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').write('ran')",)


def _pickled_weight(members: dict[str, bytes], marker: Path) -> None:
    config = json.loads(members["data/weights/model_weights_config.json"])
    fqn = next(iter(config["config"]))
    config["config"][fqn]["use_pickle"] = True  # a tensor subclass, torch would say
    members["data/weights/model_weights_config.json"] = json.dumps(config).encode()
    members["data/weights/" + config["config"][fqn]["path_name"]] = pickle.dumps(RunsCode(marker))


def _pickled_example_inputs(members: dict[str, bytes], marker: Path) -> None:
    members["data/sample_inputs/model.pt"] = pickle.dumps(RunsCode(marker))


def _legacy_weights(members: dict[str, bytes], marker: Path) -> None:
    members["data/weights/model.pt"] = pickle.dumps(RunsCode(marker))


def _opaque_constant(members: dict[str, bytes], marker: Path) -> None:
    members["data/constants/model_constants_config.json"] = json.dumps({"config": {"c": {
        "path_name": "opaque_obj_0", "is_param": False, "use_pickle": True, "tensor_meta": None}}}).encode()
    members["data/constants/opaque_obj_0"] = pickle.dumps(RunsCode(marker))


def _evaluated_shape(members: dict[str, bytes], marker: Path) -> None:
    program = members["models/model.json"].decode()
    symbol = "Symbol('s77', positive=True, integer=True)"
    assert json.dumps(symbol) in program, "the fixture's batch symbol moved: update the payload"
    payload = f"exec(\"open({str(marker)!r}, 'w').write('ran')\") or {symbol}"
    members["models/model.json"] = program.replace(json.dumps(symbol), json.dumps(payload), 1).encode()


HOSTILE = {"pickled_weight": _pickled_weight, "pickled_example_inputs": _pickled_example_inputs,
           "legacy_pickled_weights": _legacy_weights, "opaque_constant": _opaque_constant,
           "sympify_eval": _evaluated_shape}


def rewrite_archive(src: Path, dst: Path, change) -> None:
    """A copy of the .pt2 ``src`` with ``change(members)`` applied to its members (names below the top folder)."""
    with zipfile.ZipFile(src) as archive:
        top = archive.namelist()[0].split("/", 1)[0]
        members = {name.split("/", 1)[1]: archive.read(name) for name in archive.namelist()}
    change(members)
    with zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as out:
        for inner, data in members.items():
            out.writestr(f"{top}/{inner}", data)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """name -> (annotator folder, marker file) for each way a .pt2 can carry code."""
    root = tmp_path_factory.mktemp("hostile")
    good = export_annotator("depth", root / "good")
    out = {}
    for name, change in HOSTILE.items():
        folder, marker = root / name, root / f"{name}.marker"
        folder.mkdir()
        (folder / "annotator.json").write_text((good / "annotator.json").read_text())
        rewrite_archive(good / "model.pt2", folder / "model.pt2", lambda m, c=change, k=marker: c(m, k))
        out[name] = (folder, marker)
    return out


def test_each_hostile_archive_does_run_code_in_plain_torch_export_load(hostile):
    """The payloads are real: torch.export.load (in a child process) runs every one of them."""
    script = ("import sys, torch\nfor path in sys.argv[1:]:\n    try:\n        torch.export.load(path)\n"
              "    except Exception:\n        pass\n")
    subprocess.run([sys.executable, "-c", script, *(str(f / "model.pt2") for f, _ in hostile.values())],
                   check=True, capture_output=True, timeout=600)
    ran = {name for name, (_, marker) in hostile.items() if marker.exists()}
    for _, marker in hostile.values():
        marker.unlink(missing_ok=True)
    assert ran == set(HOSTILE)


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_archive_is_refused_in_one_line_and_runs_nothing(hostile, name):
    folder, marker = hostile[name]
    with pytest.raises(UnsafeModelFile) as err:
        ExportedModelAnnotator("depth", folder)
    message = str(err.value)
    assert "\n" not in message and str(folder / "model.pt2") in message
    assert not marker.exists()


def test_cli_build_refuses_a_hostile_annotator_before_any_work(hostile, tmp_path):
    folder, marker = hostile["pickled_example_inputs"]
    write_image(tmp_path / "photos" / "a.jpg", photo(0))
    result = CliRunner().invoke(main, ["build", "--source", f"coco=images:{tmp_path / 'photos'}", "--out",
                                       str(tmp_path / "out"), "--annotator", f"depth={folder}",
                                       "--tokenizer", "random:tiny", "--no-progress"])
    assert result.exit_code != 0 and not marker.exists()
    error = result.output.strip().splitlines()[-1]
    assert error.startswith("Error: ") and "example inputs" in error and str(folder) in error
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("member", ["data/aotinductor/model/model.so", "data/constants/custom_obj_0",
                                    "models/other.json"])
def test_members_a_plain_module_lacks_are_refused_by_name(tmp_path, member):
    good = export_annotator("depth", tmp_path / "good")
    bad = tmp_path / "bad.pt2"
    rewrite_archive(good / "model.pt2", bad, lambda m: m.update({member: b"\x7fELF"}))
    (good / "model.pt2").write_bytes(bad.read_bytes())
    with pytest.raises(UnsafeModelFile, match="is not part of a plain exported module") as err:
        ExportedModelAnnotator("depth", good)
    assert member in str(err.value)


def test_a_member_twice_or_a_config_that_is_no_json_is_refused(tmp_path):
    good = export_annotator("depth", tmp_path / "good")
    archive = good / "model.pt2"
    original = archive.read_bytes()
    with zipfile.ZipFile(archive) as z:
        program = next(n for n in z.namelist() if n.endswith("models/model.json"))
    with pytest.warns(UserWarning, match="Duplicate name"), zipfile.ZipFile(archive, "a") as z:
        z.writestr(program, b"{}")  # torch might read this copy, the check the other
    with pytest.raises(UnsafeModelFile, match="occurs twice"):
        ExportedModelAnnotator("depth", good)
    archive.write_bytes(original)
    rewrite_archive(archive, tmp_path / "bad.pt2",
                    lambda m: m.update({"data/weights/model_weights_config.json": b"{not json"}))
    archive.write_bytes((tmp_path / "bad.pt2").read_bytes())
    with pytest.raises(UnsafeModelFile, match=r"model_weights_config.json\]: not JSON"):
        ExportedModelAnnotator("depth", good)


@pytest.mark.parametrize("expr", ["Symbol('s77', positive=True, integer=True)", "2*s0 + 1",
                                  "FloorDiv(s0, 2)", "Max(1, s3) - Mod(s1, 4)"])
def test_shape_expressions_of_real_programs_pass(expr):
    check_shape_expression(expr, "model.json")


@pytest.mark.parametrize("expr", ["__import__('os').system('true')", "open('s0', 'w')", "s0.__class__",
                                  "lambda: 1", "eval('1')", "[s0][0]", "Symbol('a; b')", "s0; s1"])
def test_shape_expressions_beyond_sympy_arithmetic_are_refused(expr):
    with pytest.raises(UnsafeModelFile, match="model.json"):
        check_shape_expression(expr, "model.json")


@pytest.mark.parametrize("model", ["../elsewhere/model.pt2", "/tmp/model.pt2", "link.pt2"])
def test_model_field_must_stay_inside_the_annotator_folder(tmp_path, model):
    elsewhere = export_annotator("depth", tmp_path / "elsewhere")
    folder = export_annotator("depth", tmp_path / "folder")
    (folder / "link.pt2").symlink_to(elsewhere / "model.pt2")
    config = json.loads((folder / "annotator.json").read_text())
    (folder / "annotator.json").write_text(json.dumps({**config, "model": model}))
    with pytest.raises(UnsafeModelFile, match="annotator.json: model"):
        ExportedModelAnnotator("depth", folder)


# --- drawing: each kind, from a model whose output is known -------------------------------------------

SIZE = 16  # the model input size equals the frame size, so no resize blurs the expected values


class Channels(nn.Module):
    """Returns the first ``n`` input channels: with mean 0 and std 1, the pixels / 255."""

    def __init__(self, n: int):
        super().__init__()
        self.n = n

    def forward(self, x):
        return x[:, : self.n]


class FixedPeople(nn.Module):
    """Always the same people, whatever the image: (B, P, 17, 3) of (x, y in [0, 1], score)."""

    def __init__(self, people: torch.Tensor):
        super().__init__()
        self.register_buffer("people", people)

    def forward(self, x):
        return self.people.expand(x.shape[0], *self.people.shape)


def known_annotator(kind: str, model: nn.Module, folder: Path) -> ExportedModelAnnotator:
    export_module(model, kind, folder, input_size=(SIZE, SIZE), mean=(0, 0, 0), std=(1, 1, 1))
    return ExportedModelAnnotator(kind, folder)


def frames_of(rgb: np.ndarray) -> np.ndarray:
    """A batch of two: the frame and its mirror image (the batch must not mix them)."""
    return np.stack([rgb, rgb[:, ::-1]]).astype(np.uint8)


def test_depth_is_inferno_of_the_models_output(tmp_path):
    frame = np.zeros((SIZE, SIZE, 3), np.uint8)
    frame[..., 0] = np.arange(SIZE * SIZE).reshape(SIZE, SIZE)  # red: 0..255, the "depth"
    out = known_annotator("depth", Channels(1), tmp_path)(frames_of(frame))
    inferno = np.rint(matplotlib.colormaps["inferno"](np.arange(256) / 255)[:, :3] * 255).astype(np.uint8)
    np.testing.assert_array_equal(out[0], inferno[frame[..., 0]])
    np.testing.assert_array_equal(out[1], inferno[frame[:, ::-1, 0]])


def test_normals_are_normalised_then_half_plus_half(tmp_path):
    frame = np.zeros((SIZE, SIZE, 3), np.uint8)
    frame[:, :4] = (255, 0, 0)  # +x
    frame[:, 4:8] = (0, 0, 255)  # +z, facing the camera
    frame[:, 8:12] = (0, 0, 51)  # +z at a fifth of the length: normalised first
    out = known_annotator("normals", Channels(3), tmp_path)(frames_of(frame))[0]
    assert (out[:, :4] == (255, 128, 128)).all() and (out[:, 4:12] == (128, 128, 255)).all()
    assert (out[:, 12:] == (128, 128, 128)).all()  # a zero vector stays zero: mid-grey


def test_segmentation_is_the_argmax_class_through_the_palette(tmp_path):
    frame = np.zeros((SIZE, SIZE, 3), np.uint8)
    frame[:5] = (200, 10, 10)
    frame[5:10] = (10, 200, 10)
    frame[10:] = (10, 10, 200)
    annotator = known_annotator("segmentation", Channels(3), tmp_path)
    out = annotator(frames_of(frame))[0]
    assert annotator.label_map and (out[:5] == 0).all()  # class 0 is black
    assert (out[5:10] == PALETTE[1]).all() and (out[10:] == PALETTE[2]).all()


def test_edges_are_the_probability_as_grey(tmp_path):
    frame = np.zeros((SIZE, SIZE, 3), np.uint8)
    frame[..., 0] = np.arange(SIZE * SIZE).reshape(SIZE, SIZE)
    out = known_annotator("edges", Channels(1), tmp_path)(frames_of(frame))[0]
    np.testing.assert_array_equal(out, np.repeat(frame[..., :1], 3, axis=2))


def test_pose_draws_people_above_the_score_threshold(tmp_path):
    people = torch.zeros(1, 17, 3)
    people[0, :, :2] = 0.9  # hidden joints, all in one corner
    people[0, 5] = torch.tensor([0.25, 0.5, 0.9])  # the shoulders, confident: drawn, with limb 7 between
    people[0, 6] = torch.tensor([0.75, 0.5, 0.8])
    people[0, 7] = torch.tensor([0.5, 0.125, 0.2])  # an elbow under the 0.3 threshold: not drawn
    out = known_annotator("pose", FixedPeople(people), tmp_path)(frames_of(np.zeros((64, 64, 3))))
    image = out[0]
    assert image.shape == (64, 64, 3) and (out[0] == out[1]).all()
    assert image[32, 16].tolist() == [255, 255, 255] and image[32, 48].tolist() == [255, 255, 255]
    centre = image[32, 32] / PALETTE[1 + 7]  # anti-aliased limb: its colour, dimmed a little
    assert centre.min() > 0.8 and np.ptp(centre) < 0.03
    assert (image[:28] == 0).all() and (image[37:] == 0).all()  # no elbow, no hidden joint


# --- Canny, the built-in edges ------------------------------------------------------------------------


def test_canny_outlines_a_square_and_nothing_else():
    frame = np.zeros((32, 32, 3), np.uint8)
    frame[8:24, 8:24] = 255
    edges = CannyEdges()(frame[None])[0]
    assert edges.dtype == np.uint8 and set(np.unique(edges)) == {0, 255}
    assert (edges == edges[..., :1]).all()  # white on black, the same in every channel
    on = edges[..., 0] > 0
    ring = np.zeros((32, 32), bool)
    ring[7:25, 7:25] = True
    ring[9:23, 9:23] = False  # within a pixel of the square's border
    assert on.any() and not (on & ~ring).any()
    for row in range(10, 22):  # each side is one unbroken line, one pixel wide
        assert on[row].sum() == 2 and on[:, row].sum() == 2


def test_canny_sees_nothing_in_flat_or_faint_images():
    flat = np.full((1, 32, 32, 3), 128, np.uint8)
    faint = flat.copy()
    faint[0, :, 16:] += 20  # a step under the low threshold (100)
    assert not CannyEdges()(flat).any() and not CannyEdges()(faint).any()
    assert CannyEdges(low=5, high=10)(faint).any()


def test_load_annotator_without_a_folder():
    assert isinstance(load_annotator("edges", None), CannyEdges)
    with pytest.raises(ValueError, match="--annotator depth=DIR"):
        load_annotator("depth", None)


def test_rgb_frames_to_grey_for_canny_uses_luma():
    frame = np.zeros((1, 32, 32, 3), np.uint8)
    frame[0, :, 16:] = (0, 0, 255)  # pure blue: luma 29, under the low threshold
    frame2 = frame.copy()
    frame2[0, :, 16:] = (0, 255, 0)  # pure green: luma 150, an edge
    assert not CannyEdges()(frame).any() and CannyEdges()(frame2).any()
    assert cv2.cvtColor(frame[0], cv2.COLOR_RGB2GRAY)[0, 20] == 29
