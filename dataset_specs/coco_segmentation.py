"""COCO 2017 segmentation: [photo, its instance masks painted by category] x 8."""

from uvd.dataset_specs.base import DatasetSpec, UVDv1Share, register

COCO_SEGMENTATION = register(DatasetSpec(
    name="coco_segmentation", title="COCO 2017 train: semantic segmentation (ground-truth instance masks)",
    group="images_with_annotations", reader="coco", layout="pairs", views=("image", "segmentation"),
    reader_args={"annotation_files": ("annotations/instances_train2017.json",), "annotations": "segmentation"},
    annotation="ground-truth instance masks of instances_train2017.json (polygons, and crowd RLE) painted with "
               "their category id, largest first, through the fixed palette (UVDv1 used Mask2Former predictions); "
               "items: images with >= 1 mask",
    root_dir="coco", license="annotations CC BY 4.0; images under the Flickr terms of use",
    citation="Lin et al., Microsoft COCO: Common Objects in Context, ECCV 2014", homepage="https://cocodataset.org",
    uvdv1=UVDv1Share(dataset="COCO, ImageNet 1K", annotation_type="Semantic Segmentation", fraction=0.0845,
                     basis="by train images: COCO 118287 / (118287 + ImageNet 1281167)"),
))
