"""ImageNet 1K with model semantic segmentation: [image, segmentation] x 8."""

from uvd.dataset_specs.base import DatasetSpec, UVDv1Share, register
from uvd.dataset_specs.imagenet_classification import COCO_IMAGENET_SHARE, IMAGENET

IMAGENET_SEGMENTATION = register(DatasetSpec(
    name="imagenet_segmentation", title="ImageNet 1K (ILSVRC2012) images and semantic segmentations",
    layout="pairs", views=("image", "image|segmentation"),
    annotation="class map of the image in palette colours from the segmentation model annotator (UVDv1 used "
               "Mask2Former pseudo-labels); needs --annotator segmentation=DIR",
    uvdv1=UVDv1Share(dataset="COCO, ImageNet 1K", annotation_type="Semantic Segmentation",
                     **COCO_IMAGENET_SHARE),
    **IMAGENET,
))
