"""Cityscapes (gtFine) segmentation: [street photo, its label-id map through the palette] x 8."""

from uvd.dataset_specs.base import DatasetSpec, UVDv1Share, register

CITYSCAPES_SEGMENTATION = register(DatasetSpec(
    name="cityscapes_segmentation", title="Cityscapes gtFine train: semantic segmentation",
    group="images_with_annotations", reader="segmentation_masks", layout="pairs", views=("image", "segmentation"),
    reader_args={"image_dir": "leftImg8bit/train", "label_dir": "gtFine/train", "image_suffix": "_leftImg8bit.png",
                 "label_suffix": "_gtFine_labelIds.png"},
    annotation="ground-truth fine label maps (gtFine/train/<city>/*_gtFine_labelIds.png, label ids 0..33) "
               "coloured through the fixed palette",
    root_dir="cityscapes", license="Cityscapes license (non-commercial research and education; registration "
                                   "required)",
    citation="Cordts et al., The Cityscapes Dataset for Semantic Urban Scene Understanding, CVPR 2016",
    homepage="https://www.cityscapes-dataset.com",
    uvdv1=UVDv1Share(dataset="ADE 20K, Cityscapes", annotation_type="Semantic Segmentation", fraction=0.1283,
                     basis="by train images: Cityscapes 2975 / (20210 ADE20K + 2975) = 2975 / 23185"),
))
