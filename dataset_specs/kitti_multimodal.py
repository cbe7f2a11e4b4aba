"""KITTI multi-task sentences: 2 frames x 7 modalities, one shuffled modality order per sentence
(LVM's commented KITTI configuration of tokenize_multi_datasets_muse.py).

It reads the release's own preparation, ``kitti-cot_crop/<modality>/<frame>.png`` for the
modalities image, depth, next_frame, scene_flow, sementic_seg, sementic_seg_rbg and stereo (its
spelling), which LVM did not publish: make it from KITTI with your own tools, one folder per
modality and the same file name for the same frame. ``kitti_stereo`` ([left, right] x 8 pairs of
the raw stereo images) is uvd's own reading of the UVDv1 KITTI row; this spec is the release's.
"""

from uvd.dataset_specs.base import DatasetSpec, register

KITTI_MULTIMODAL = register(DatasetSpec(
    name="kitti_multimodal",
    title="KITTI multi-task sentences from LVM's kitti-cot_crop folders (7 modalities; not a separate UVDv1 row)",
    group="images_with_annotations", reader="kitti_modalities", layout="multimodal",
    views=("image", "depth", "next_frame", "scene_flow", "sementic_seg", "sementic_seg_rbg", "stereo"),
    layout_args={"n_shots": 2},
    annotation="the modality images as prepared (kitti-cot_crop), matched by file name; 2 shots x 7 modalities in "
               "one shuffled order per sentence, 5 epochs",
    root_dir="kitti-cot_crop", license="CC BY-NC-SA 3.0",
    citation="Geiger, Lenz, Urtasun, Are we ready for Autonomous Driving? The KITTI Vision Benchmark Suite, CVPR 2012",
    homepage="https://www.cvlibs.net/datasets/kitti/",
    uvdv1=None,
))
