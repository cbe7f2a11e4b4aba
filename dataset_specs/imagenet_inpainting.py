"""ImageNet 1K inpainting: [masked, original] x 8 (LVM's inpainting sentences)."""

from uvd.dataset_specs.base import DatasetSpec, UVDv1Share, register
from uvd.dataset_specs.imagenet_classification import IMAGENET

IMAGENET_INPAINTING = register(DatasetSpec(
    name="imagenet_inpainting", title="ImageNet 1K (ILSVRC2012) masked / original pairs",
    layout="inpainting", views=("image|masked", "image"),
    annotation="input: the image with LVM's mask (one square hole with p = 0.3, else random 32-px patches); "
               "target: the image",
    uvdv1=UVDv1Share(dataset="ImageNet 1K", annotation_type="Inpainting"), **IMAGENET,
))
