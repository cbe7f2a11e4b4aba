"""ImageNet 1K multi-task sentences: 3 photos x 5 modalities, one shuffled modality order per
sentence (LVM's ``i1k_cot_uni-mapped`` configuration of tokenize_multi_datasets_muse.py)."""

from uvd.dataset_specs.base import DatasetSpec, register
from uvd.dataset_specs.imagenet_classification import IMAGENET

IMAGENET_MULTIMODAL = register(DatasetSpec(
    name="imagenet_multimodal",
    title="ImageNet 1K (ILSVRC2012) multi-task sentences (photo, depth, edges, normals, segmentation; LVM's "
          "multi-task data, not a separate UVDv1 row)",
    layout="multimodal", views=("image", "image|depth", "image|edges", "image|normals", "image|segmentation"),
    annotation="per photo: depth, normals and segmentation from model annotators (LVM used Prismer's pseudo-labels), "
               "Canny edges (or an edges annotator); 3 shots x 5 modalities in one shuffled order per sentence, "
               "5 epochs, as the release's commented ImageNet configuration; its tokens are counted in the ImageNet "
               "annotation rows, so uvdv1 is None",
    uvdv1=None,
    **IMAGENET,
))
