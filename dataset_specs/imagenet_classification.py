"""ImageNet 1K classification: 4 classes x 4 images per sentence (LVM's category sentences).

The other ImageNet specs (colorization, inpainting, depth, normals, segmentation, edges) read
the same folder with the same reader, and take the shared fields from ``IMAGENET``.
"""

from uvd.dataset_specs.base import DatasetSpec, UVDv1Share, register

IMAGENET = dict(
    group="images_with_annotations", reader="imagenet", root_dir="imagenet", split="train",
    license="ImageNet terms of access (non-commercial research and education)",
    citation="Russakovsky et al., ImageNet Large Scale Visual Recognition Challenge, IJCV 2015",
    homepage="https://image-net.org/challenges/LSVRC/2012/",
)
COCO_IMAGENET_SHARE = dict(
    fraction=0.9155,
    basis="by train images: ImageNet 1281167 / (COCO 118287 + ImageNet 1281167); COCO has the rest",
)

IMAGENET_CLASSIFICATION = register(DatasetSpec(
    name="imagenet_classification", title="ImageNet 1K (ILSVRC2012) train images by class",
    layout="category", views=("image",),
    annotation="class (wnid folder) of each image; a sentence shows 4 images of each of 4 classes",
    uvdv1=UVDv1Share(dataset="ImageNet 1K", annotation_type="Image Classification"), **IMAGENET,
))
