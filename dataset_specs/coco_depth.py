"""COCO 2017 depth: [photo, its depth map from a model annotator] x 8."""

from uvd.dataset_specs.base import DatasetSpec, UVDv1Share, register

COCO_DEPTH = register(DatasetSpec(
    name="coco_depth", title="COCO 2017 train: depth maps (model annotator)",
    group="images_with_annotations", reader="coco", layout="pairs", views=("image", "image|depth"),
    reader_args={"annotation_files": ("annotations/instances_train2017.json",), "annotations": "none"},
    annotation="depth predicted from the 256x256 photo by a depth annotator (UVDv1 used DPT; pass --annotator "
               "depth=DIR), min-max scaled per image through INFERNO; items: every image of instances_train2017.json",
    root_dir="coco", license="annotations CC BY 4.0; images under the Flickr terms of use",
    citation="Lin et al., Microsoft COCO: Common Objects in Context, ECCV 2014", homepage="https://cocodataset.org",
    uvdv1=UVDv1Share(dataset="COCO, ImageNet 1K", annotation_type="Depth Map Image", fraction=0.0845,
                     basis="by train images: COCO 118287 / (118287 + ImageNet 1281167)"),
))
