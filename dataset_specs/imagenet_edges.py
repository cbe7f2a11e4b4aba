"""ImageNet 1K with edge maps: [image, edges] x 8."""

from uvd.dataset_specs.base import DatasetSpec, UVDv1Share, register
from uvd.dataset_specs.imagenet_classification import COCO_IMAGENET_SHARE, IMAGENET

IMAGENET_EDGES = register(DatasetSpec(
    name="imagenet_edges", title="ImageNet 1K (ILSVRC2012) images and edge maps",
    layout="pairs", views=("image", "image|edges"),
    annotation="white edges on black: opencv's Canny by default, or a DexiNed export given as --annotator "
               "edges=DIR (UVDv1 used DexiNed pseudo-labels)",
    uvdv1=UVDv1Share(dataset="COCO, ImageNet 1K", annotation_type="Edge Detection",
                     **COCO_IMAGENET_SHARE),
    **IMAGENET,
))
