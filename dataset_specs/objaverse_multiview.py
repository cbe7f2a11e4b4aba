"""Objaverse renders (Zero-1-to-3 views_release): an object's views in rotation order (UVDv1 synthetic_3d_views)."""

from uvd.dataset_specs.base import DatasetSpec, UVDv1Share, register

OBJAVERSE_MULTIVIEW = register(DatasetSpec(
    name="objaverse_multiview",
    title="Objaverse rendered multiviews (Zero-1-to-3 views_release: 12 RGBA renders and cameras per object)",
    group="synthetic_3d_views",
    reader="objaverse_views", reader_args={"views_dir": "views_release"},
    layout="multiview", views=("view",),
    annotation="- (views ordered by camera azimuth; RGBA renders composited onto white)",
    split="train", root_dir="objaverse",
    license="Objaverse: ODC-By 1.0, each object under its own Creative Commons licence",
    citation="Deitke et al., Objaverse: A Universe of Annotated 3D Objects, CVPR 2023; renders from Liu et al., "
             "Zero-1-to-3: Zero-shot One Image to 3D Object, ICCV 2023",
    homepage="https://objaverse.allenai.org/",
    uvdv1=UVDv1Share(dataset="Objaverse Rendered Multiviews", annotation_type="-", fraction=1.0),
))
