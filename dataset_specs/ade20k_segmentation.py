"""ADE20K (SceneParsing 150) segmentation: [photo, its label map through the palette] x 8."""

from uvd.dataset_specs.base import DatasetSpec, UVDv1Share, register

ADE20K_SEGMENTATION = register(DatasetSpec(
    name="ade20k_segmentation", title="ADE20K SceneParsing (ADEChallengeData2016) train: semantic segmentation",
    group="images_with_annotations", reader="segmentation_masks", layout="pairs", views=("image", "segmentation"),
    reader_args={"image_dir": "images/training", "label_dir": "annotations/training", "image_suffix": ".jpg",
                 "label_suffix": ".png"},
    annotation="ground-truth label maps (annotations/training/*.png, class ids 0..150, 0 = other in black) "
               "coloured through the fixed palette; the root is the unzipped ADEChallengeData2016 folder",
    root_dir="ade20k", license="ADE20K terms of use (non-commercial research and education); images from their "
                               "owners",
    citation="Zhou et al., Scene Parsing through ADE20K Dataset, CVPR 2017",
    homepage="http://sceneparsing.csail.mit.edu",
    uvdv1=UVDv1Share(dataset="ADE 20K, Cityscapes", annotation_type="Semantic Segmentation", fraction=0.8717,
                     basis="by train images: ADE20K 20210 / (20210 + Cityscapes 2975) = 20210 / 23185"),
))
