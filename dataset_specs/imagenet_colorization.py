"""ImageNet 1K colorization: [grayscale, colour] x 8 (LVM's colorization sentences)."""

from uvd.dataset_specs.base import DatasetSpec, UVDv1Share, register
from uvd.dataset_specs.imagenet_classification import IMAGENET

IMAGENET_COLORIZATION = register(DatasetSpec(
    name="imagenet_colorization", title="ImageNet 1K (ILSVRC2012) grayscale / colour pairs",
    layout="colorization", views=("image|gray", "image"),
    annotation="input: the image's luma (0.2989 R + 0.5870 G + 0.1140 B) as gray; target: the colour image",
    uvdv1=UVDv1Share(dataset="ImageNet 1K", annotation_type="Grayscale and Colorized Image Pairs"), **IMAGENET,
))
