"""COCO 2017 object detection: [photo, photo with its boxes] x 8."""

from uvd.dataset_specs.base import DatasetSpec, UVDv1Share, register

COCO_DETECTION = register(DatasetSpec(
    name="coco_detection", title="COCO 2017 train: object detection (ground-truth boxes)",
    group="images_with_annotations", reader="coco", layout="pairs", views=("image", "boxes"),
    reader_args={"annotation_files": ("annotations/instances_train2017.json",), "annotations": "boxes"},
    annotation="ground-truth boxes from instances_train2017.json (crowd regions included) drawn over the photo, "
               "coloured by category id (UVDv1 used MMDetection predictions); items: images with >= 1 annotation",
    root_dir="coco", license="annotations CC BY 4.0; images under the Flickr terms of use",
    citation="Lin et al., Microsoft COCO: Common Objects in Context, ECCV 2014", homepage="https://cocodataset.org",
    uvdv1=UVDv1Share(dataset="COCO", annotation_type="Object Detection", fraction=1.0,
                     basis="the row names COCO alone"),
))
