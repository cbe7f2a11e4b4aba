"""COCO 2017 human pose: [photo, its people's COCO-17 skeletons on black] x 8."""

from uvd.dataset_specs.base import DatasetSpec, UVDv1Share, register

COCO_POSE = register(DatasetSpec(
    name="coco_pose", title="COCO 2017 train: human pose (ground-truth keypoints)",
    group="images_with_annotations", reader="coco", layout="pairs", views=("image", "keypoints"),
    reader_args={"annotation_files": ("annotations/person_keypoints_train2017.json",), "annotations": "keypoints"},
    annotation="ground-truth COCO-17 skeletons of every person with num_keypoints > 0 (person_keypoints_train2017"
               ".json), drawn on black; invisible joints and their limbs left out (UVDv1 used MMPose predictions); "
               "items: images with >= 1 such person",
    root_dir="coco", license="annotations CC BY 4.0; images under the Flickr terms of use",
    citation="Lin et al., Microsoft COCO: Common Objects in Context, ECCV 2014", homepage="https://cocodataset.org",
    uvdv1=UVDv1Share(dataset="COCO, lvmhp, mpii, Unite", annotation_type="Human Pose", fraction=0.25,
                     basis="the paper gives only the row's total: an equal share for each of its 4 datasets"),
))
