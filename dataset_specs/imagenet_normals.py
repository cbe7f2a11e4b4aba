"""ImageNet 1K with model surface normals: [image, normals] x 8."""

from uvd.dataset_specs.base import DatasetSpec, UVDv1Share, register
from uvd.dataset_specs.imagenet_classification import COCO_IMAGENET_SHARE, IMAGENET

IMAGENET_NORMALS = register(DatasetSpec(
    name="imagenet_normals", title="ImageNet 1K (ILSVRC2012) images and surface normals",
    layout="pairs", views=("image", "image|normals"),
    annotation="surface normals of the image as RGB from the normals model annotator (UVDv1 used NLL-AngMF "
               "pseudo-labels); needs --annotator normals=DIR",
    uvdv1=UVDv1Share(dataset="COCO, ImageNet 1K", annotation_type="Surface Normal Image",
                     **COCO_IMAGENET_SHARE),
    **IMAGENET,
))
