"""The downstream metrics against hand-worked examples, and the decoders that read class ids and
joints back from the build's own renders (uvd.media.drawing)."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from uvd.media.drawing import colorize_labels, draw_keypoints, draw_mask
from uvd.model.metrics import IoU, PCKh, decode_keypoints, head_size, mse, psnr, segmentation_classes

# A standing person, COCO-17 order (nose, eyes, ears, shoulders, elbows, wrists, hips, knees, ankles).
PERSON = np.array([[128, 40], [120, 35], [136, 35], [110, 40], [146, 40], [100, 80], [156, 80], [90, 120],
                   [166, 120], [85, 150], [171, 150], [110, 150], [146, 150], [105, 200], [151, 200],
                   [100, 240], [156, 240]], float)
# A JHMDB-15 puppet: neck, belly, face, shoulders, hips, elbows, knees, wrists, ankles (right, left).
PUPPET = np.array([[128, 60], [128, 130], [128, 28], [100, 65], [156, 65], [110, 140], [146, 140], [85, 100],
                   [171, 100], [108, 190], [148, 190], [80, 135], [176, 135], [105, 235], [151, 235]], float)


def test_psnr_and_mse_by_hand():
    a = np.zeros((2, 2, 3), np.uint8)
    b = a.copy()
    b[0, 0] = 255  # one pixel of four is off by 1.0 in each channel
    assert mse(a, b) == pytest.approx(0.75)  # LVM: mean over pixels of the channel-summed error, 3 / 4
    assert psnr(a, b) == pytest.approx(10 * math.log10(4))  # mean squared error 1/4 -> 6.02 dB
    c = np.full((2, 2, 3), 51, np.uint8)  # 0.2 everywhere: mse per channel 0.04
    assert psnr(a, c) == pytest.approx(10 * math.log10(25)) and mse(a, c) == pytest.approx(0.12)
    assert psnr(a, a) == math.inf


def test_miou_by_hand():
    truth = np.array([[1, 1], [2, 2]])
    pred = np.array([[1, 2], [2, 2]])
    iou = IoU()
    iou.add(pred, truth)
    # class 1: intersection 1, union 2 -> 0.5; class 2: intersection 2, union 3 -> 2/3
    assert iou.miou() == pytest.approx((0.5 + 2 / 3) / 2)
    iou.add(np.array([[3, 3], [3, 3]]), np.array([[3, 3], [3, 3]]))  # class 3: 4 / 4
    # summed over images: class 1 1/2, class 2 2/3, class 3 1
    assert iou.miou() == pytest.approx((0.5 + 2 / 3 + 1) / 3)
    assert math.isnan(IoU().miou())


def test_segmentation_renders_decode_to_their_classes():
    labels = np.random.default_rng(0).integers(0, 151, (256, 256))
    assert np.array_equal(segmentation_classes(colorize_labels(labels)), labels)
    noisy = np.clip(colorize_labels(labels).astype(int) + 2, 0, 255).astype(np.uint8)  # a little off
    assert np.array_equal(segmentation_classes(noisy), labels)
    mask = np.zeros((8, 8), int)
    mask[2:5, 2:5] = 1
    assert np.array_equal(segmentation_classes(draw_mask(mask), "mask"), mask)


def test_pckh_by_hand():
    truth = np.zeros((17, 3))
    truth[:, 2] = 1
    truth[3, :2], truth[4, :2] = (100, 50), (120, 50)  # ears 20 px apart: head size 20, threshold 10
    pred = truth.copy()
    pred[0, :2] += (6, 8)  # 10 px away: found (<= 0.5 x 20)
    pred[1, :2] += (0, 10.5)  # 10.5 px: missed
    pred[2, 2] = 0  # not predicted: missed
    truth[5, 2] = 0  # not visible in the truth: not counted
    pck = PCKh("coco17")
    pck.add(pred, truth)
    assert (pck.found, pck.total) == (14, 16) and pck.value() == pytest.approx(14 / 16)
    assert head_size(truth, "coco17") == 20
    headless = truth.copy()
    headless[3, 2] = 0
    pck.add(pred, headless)  # no head segment: not scored
    assert pck.total == 16 and pck.no_head == 1


@pytest.mark.parametrize("skeleton", ["coco17", "jhmdb15"])
def test_keypoints_decode_from_the_skeleton_render(skeleton):
    joints = PERSON if skeleton == "coco17" else PUPPET
    people = np.concatenate([joints, np.ones((len(joints), 1))], 1)[None]
    decoded = decode_keypoints(draw_keypoints((256, 256), people, skeleton), skeleton)
    assert decoded[:, 2].all() and np.abs(decoded[:, :2] - joints).max() < 1.0
    # drawn at 3x2 the size and resized as the build resizes renders
    big = draw_keypoints((512, 768), people * [3, 2, 1], skeleton)
    decoded = decode_keypoints(cv2.resize(big, (256, 256), interpolation=cv2.INTER_AREA), skeleton)
    assert decoded[:, 2].all() and np.abs(decoded[:, :2] - joints).max() < 1.0


def test_missing_limbs_hide_their_joints_and_pckh_of_a_shifted_person():
    people = np.concatenate([PERSON, np.ones((17, 1))], 1)
    people[15, 2] = people[13, 2] = 0  # left knee and ankle not visible: limbs 0 and 1 not drawn
    decoded = decode_keypoints(draw_keypoints((256, 256), people[None]), "coco17")
    assert decoded[15, 2] == 0 and decoded[13, 2] == 0 and decoded[11, 2] == 1
    truth = decode_keypoints(draw_keypoints((256, 256), people[None]), "coco17")
    shifted = people.copy()
    shifted[:, 0] += 12  # head size 36 (ear to ear): 12 px is within 18
    pck = PCKh("coco17")
    pck.add(decode_keypoints(draw_keypoints((256, 256), shifted[None]), "coco17"), truth)
    assert pck.value() == 1.0
    far = people.copy()
    far[:, 0] += 40  # beyond half the head
    pck = PCKh("coco17")
    pck.add(decode_keypoints(draw_keypoints((256, 256), far[None]), "coco17"), truth)
    assert pck.value() == 0.0
