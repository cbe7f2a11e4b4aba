"""JHMDB puppet optical flow: frames and flow, as aligned sequences (LVM's multi-sequence sentences: 2
shots x 2 tasks x 16 frames, tasks separate and interleaved) (UVDv1 videos_with_annotations)."""

from uvd.dataset_specs.base import DatasetSpec, UVDv1Share, register

JHMDB_FLOW = register(DatasetSpec(
    name="jhmdb_flow",
    title="JHMDB: frames and the annotated puppet's optical flow (puppet_flow_com)",
    group="videos_with_annotations",
    reader="jhmdb_flow", reader_args={"split_number": 1, "flow_dir": "puppet_flow_com", "flow_key": ""},
    layout="multi_sequence", views=("frame", "flow"),
    annotation="ground-truth puppet flow (puppet_flow_com/<action>/<video>/puppet_flow.mat, the H x W x 2 x T "
               "array) drawn with the Middlebury colour wheel (flow_to_color, per-frame maximum radius)",
    split="train", root_dir="jhmdb",
    license="research use; see jhmdb.is.tue.mpg.de",
    citation="Jhuang et al., Towards Understanding Action Recognition, ICCV 2013",
    homepage="http://jhmdb.is.tue.mpg.de/",
    uvdv1=UVDv1Share(dataset="JHMDB", annotation_type="Optical Flow", fraction=1.0),
    version="2.0.0",  # 2: multi_sequence layout (was 8 interleaved pairs)
))
