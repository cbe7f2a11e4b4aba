"""LV-MHP v2 photos with model pose skeletons: [image, pose] x 8."""

from uvd.dataset_specs.base import DatasetSpec, UVDv1Share, register

LVMHP_POSE = register(DatasetSpec(
    name="lvmhp_pose", title="LV-MHP v2 (Multi-Human Parsing) training photos and pose skeletons",
    group="images_with_annotations", reader="image_folder",
    reader_args={"folder": "LV-MHP-v2/train/images"},
    layout="pairs", views=("image", "image|pose"),
    annotation="COCO-17 skeletons of every person, drawn on black by the pose model annotator (UVDv1 used MMPose "
               "predictions, not the release's own pose labels); needs --annotator pose=DIR",
    root_dir="lvmhp", license="LV-MHP terms of use (research)",
    citation="Zhao et al., Understanding Humans in Crowded Scenes: Deep Nested Adversarial Learning and A New "
             "Benchmark for Multi-Human Parsing, ACM MM 2018",
    homepage="https://lv-mhp.github.io/",
    uvdv1=UVDv1Share(dataset="COCO, lvmhp, mpii, Unite", annotation_type="Human Pose", fraction=0.25,
                     basis="the paper gives only the row's total; split equally among its four datasets"),
))
