"""media/drawing.py against expected values built by hand (or by an independent implementation),
never by the function under test: colour maps, the flow wheel, masks, boxes and skeletons."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest

from uvd.media.drawing import (
    COLOR_WHEEL,
    PALETTE,
    colorize_depth,
    colorize_labels,
    colorize_normals,
    draw_boxes,
    draw_keypoints,
    draw_mask,
    flow_to_color,
)

WHITE, BLACK = (255, 255, 255), (0, 0, 0)


def test_colorize_depth_is_inferno_after_min_max_scaling():
    # matplotlib's inferno table is an independent copy of the map opencv applies
    inferno = np.rint(matplotlib.colormaps["inferno"](np.arange(256) / 255)[:, :3] * 255).astype(np.uint8)
    depth = np.arange(256, dtype=np.float64).reshape(16, 16) * 0.01 + 5.0  # any offset and scale
    np.testing.assert_array_equal(colorize_depth(depth), inferno[np.arange(256).reshape(16, 16)])
    # by hand: 0 -> inferno's darkest (0, 0, 4), the maximum -> its brightest (252, 255, 164)
    assert colorize_depth(np.array([[0.0, 3.0]])).tolist() == [[[0, 0, 4], [252, 255, 164]]]


def test_colorize_depth_flat_and_non_finite():
    assert (colorize_depth(np.full((3, 3), 7.0)) == (0, 0, 4)).all()  # no range: all at the minimum
    d = np.array([[np.nan, 1.0, np.inf, 3.0]])
    assert colorize_depth(d).tolist() == [[[0, 0, 4], [0, 0, 4], [0, 0, 4], [252, 255, 164]]]


@pytest.mark.parametrize(("normal", "rgb"), [
    ((0, 0, 1), (128, 128, 255)),  # facing the camera: the familiar normal-map blue
    ((1, 0, 0), (255, 128, 128)), ((-1, 0, 0), (0, 128, 128)),
    ((0, -1, 0), (128, 0, 128)), ((0, 0, 0), (128, 128, 128)),
    ((2, 0, -3), (255, 128, 0)),  # out of range: clipped to [-1, 1]
])
def test_colorize_normals_by_hand(normal, rgb):
    assert colorize_normals(np.array([[normal]], float)).tolist() == [[list(rgb)]]


def test_color_wheel_is_middlebury():
    # Baker et al.'s wheel: ramps of 15 (R->Y), 6 (Y->G), 4 (G->C), 11 (C->B), 13 (B->M), 6 (M->R)
    assert COLOR_WHEEL.shape == (55, 3)
    assert COLOR_WHEEL[0].tolist() == [255, 0, 0] and COLOR_WHEEL[15].tolist() == [255, 255, 0]
    assert COLOR_WHEEL[21].tolist() == [0, 255, 0] and COLOR_WHEEL[25].tolist() == [0, 255, 255]
    assert COLOR_WHEEL[36].tolist() == [0, 0, 255] and COLOR_WHEEL[49].tolist() == [255, 0, 255]
    assert COLOR_WHEEL[13].tolist() == [255, 221, 0]  # floor(255 * 13 / 15)


@pytest.mark.parametrize(("uv", "rgb"), [
    ((1, 0), (255, 0, 0)),  # right: red, the wheel's start
    ((0, 1), (255, 229, 0)),  # down: between wheel entries 13 and 14, (221 + 238) / 2 = 229.5 -> 229
    ((-1, 0), (0, 209, 255)),  # left: entry 27, 255 - floor(255 * 2 / 11) = 209 of green
    ((0, -1), (88, 0, 255)),  # up: between entries 40 and 41, (78 + 98) / 2 = 88 of red
    ((0.5, 0), (255, 127, 127)),  # half the radius: halfway to white, floor(127.5)
    ((2, 0), (191, 0, 0)),  # beyond the radius: darkened to 3/4
    ((0, 0), WHITE),
])
def test_flow_to_color_by_hand(uv, rgb):
    flow = np.array([[uv]], np.float64)
    assert flow_to_color(flow, max_radius=1.0).tolist() == [[list(rgb)]]


def test_flow_to_color_scales_by_the_largest_motion():
    flow = np.array([[[4.0, 0.0], [2.0, 0.0], [0.0, 0.0]]])  # default radius: the largest, 4
    assert flow_to_color(flow).tolist() == [[[255, 0, 0], [255, 127, 127], list(WHITE)]]
    assert flow_to_color(np.array([[[np.nan, 0.0]]])).tolist() == [[list(WHITE)]]  # NaN = no motion


def test_labels_and_masks():
    assert colorize_labels(np.array([[0, 1, 257]])).tolist() == [[list(BLACK), PALETTE[1].tolist(),
                                                                    PALETTE[1].tolist()]]
    assert PALETTE.shape == (256, 3) and len({tuple(c) for c in PALETTE[1:]}) > 250  # distinct colours
    assert draw_mask(np.array([[0, 3], [-1, 0]])).tolist() == [[list(BLACK), list(WHITE)], [list(BLACK),
                                                                                           list(BLACK)]]


def test_draw_boxes_outlines_the_box_in_its_category_colour():
    image = np.zeros((40, 40, 3), np.uint8)
    out = draw_boxes(image, [(10, 10, 20, 10)], [3])
    colour = PALETTE[4].tolist()  # category 3 -> palette entry 1 + 3: never black
    assert out[10, 10:31].tolist() == [colour] * 21 and out[20, 10:31].tolist() == [colour] * 21  # top, bottom
    assert out[10:21, 10].tolist() == [colour] * 11 and out[10:21, 30].tolist() == [colour] * 11  # sides
    assert (out[13:18, 13:28] == 0).all() and (out[:8] == 0).all()  # inside and outside untouched
    assert (image == 0).all()  # drawn on a copy


def test_draw_keypoints_joints_white_limbs_coloured_hidden_joints_absent():
    people = np.zeros((1, 17, 3))
    people[0, :, :2] = (70, 50)  # hidden joints (v = 0): neither they nor their limbs are drawn
    people[0, 5] = (20, 30, 1)  # the shoulders, visible: limb 7 of COCO17_SKELETON joins them
    people[0, 6] = (60, 30, 1)
    out = draw_keypoints((60, 80), people, "coco17")
    assert out[30, 20].tolist() == list(WHITE) and out[30, 60].tolist() == list(WHITE)
    centre = out[30, 40] / PALETTE[1 + 7]  # the limb's middle: its colour, dimmed a little by anti-aliasing
    assert centre.min() > 0.8 and np.ptp(centre) < 0.03
    assert (out[:27] == 0).all() and (out[35:] == 0).all()  # nothing else: no hidden joint, no other limb
    assert (out[:, :16] == 0).all() and (out[:, 65:] == 0).all()
