"""COCO 2017 edges: [photo, its edge map] x 8."""

from uvd.dataset_specs.base import DatasetSpec, UVDv1Share, register

COCO_EDGES = register(DatasetSpec(
    name="coco_edges", title="COCO 2017 train: edge detection (Canny, or an edges annotator)",
    group="images_with_annotations", reader="coco", layout="pairs", views=("image", "image|edges"),
    reader_args={"annotation_files": ("annotations/instances_train2017.json",), "annotations": "none"},
    annotation="edges of the 256x256 photo: opencv Canny by default, or an edges annotator given with --annotator "
               "edges=DIR (UVDv1 used DexiNed); items: every image of instances_train2017.json",
    root_dir="coco", license="annotations CC BY 4.0; images under the Flickr terms of use",
    citation="Lin et al., Microsoft COCO: Common Objects in Context, ECCV 2014", homepage="https://cocodataset.org",
    uvdv1=UVDv1Share(dataset="COCO, ImageNet 1K", annotation_type="Edge Detection", fraction=0.0845,
                     basis="by train images: COCO 118287 / (118287 + ImageNet 1281167)"),
))
