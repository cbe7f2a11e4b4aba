"""ImageNet 1K with model depth maps: [image, depth] x 8."""

from uvd.dataset_specs.base import DatasetSpec, UVDv1Share, register
from uvd.dataset_specs.imagenet_classification import COCO_IMAGENET_SHARE, IMAGENET

IMAGENET_DEPTH = register(DatasetSpec(
    name="imagenet_depth", title="ImageNet 1K (ILSVRC2012) images and depth maps",
    layout="pairs", views=("image", "image|depth"),
    annotation="colourised depth map of the image from the depth model annotator (UVDv1 used DPT pseudo-labels); "
               "needs --annotator depth=DIR",
    uvdv1=UVDv1Share(dataset="COCO, ImageNet 1K", annotation_type="Depth Map Image",
                     **COCO_IMAGENET_SHARE),
    **IMAGENET,
))
