"""KITTI stereo: [left, right] x 8 pairs (2015 image_2/image_3, or 2012 colored_0/colored_1)."""

from uvd.dataset_specs.base import DatasetSpec, UVDv1Share, register

KITTI_STEREO = register(DatasetSpec(
    name="kitti_stereo", title="KITTI stereo 2015 / 2012 left / right training pairs",
    group="images_with_annotations", reader="kitti_stereo",
    layout="pairs", views=("left", "right"),
    annotation="left: the left colour camera; right: the right colour camera at the same instant",
    root_dir="kitti", license="CC BY-NC-SA 3.0",
    citation="Menze, Geiger, Object Scene Flow for Autonomous Vehicles, CVPR 2015; Geiger, Lenz, Urtasun, "
             "Are we ready for Autonomous Driving? The KITTI Vision Benchmark Suite, CVPR 2012",
    homepage="https://www.cvlibs.net/datasets/kitti/eval_scene_flow.php?benchmark=stereo",
    uvdv1=UVDv1Share(dataset="Kitti", annotation_type="Stereo"),
))
