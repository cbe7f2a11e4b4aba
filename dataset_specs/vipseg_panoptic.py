"""VIPSeg: video panoptic segmentation, frames and panoptic maps, as aligned sequences (LVM's multi-
sequence sentences: 2 shots x 2 tasks x 16 frames, tasks separate and interleaved) (UVDv1
videos_with_annotations)."""

from uvd.dataset_specs.base import DatasetSpec, UVDv1Share, register

VIPSEG_PANOPTIC = register(DatasetSpec(
    name="vipseg_panoptic",
    title="VIPSeg (VIPSeg_720P): video panoptic segmentation",
    group="videos_with_annotations",
    reader="vipseg", reader_args={"split_file": ""},
    layout="multi_sequence", views=("frame", "panoptic"),
    annotation="ground-truth panoptic masks (panomasks/, 0 void, stuff = category, things = category x 100 + "
               "instance) drawn as category colours through the shared palette; void black, the instances of a "
               "category share its colour",
    split="train", root_dir="vipseg",
    license="research use; see the VIPSeg-Dataset repository (no licence file published)",
    citation="Miao et al., Large-scale Video Panoptic Segmentation in the Wild: A Benchmark, CVPR 2022",
    homepage="https://github.com/VIPSeg-Dataset/VIPSeg-Dataset",
    uvdv1=UVDv1Share(dataset="VIPSeg", annotation_type="Video Panoptic Segmentation", fraction=1.0),
    version="2.0.0",  # 2: multi_sequence layout (was 8 interleaved pairs)
))
