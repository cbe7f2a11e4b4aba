"""JHMDB puppet joints: frames and poses, as aligned sequences (LVM's multi-sequence sentences: 2 shots
x 2 tasks x 16 frames, tasks separate and interleaved) (UVDv1 videos_with_annotations)."""

from uvd.dataset_specs.base import DatasetSpec, UVDv1Share, register

JHMDB_POSE = register(DatasetSpec(
    name="jhmdb_pose",
    title="JHMDB: frames and the annotated puppet's 15 joints",
    group="videos_with_annotations",
    reader="jhmdb_pose", reader_args={"split_number": 1},
    layout="multi_sequence", views=("frame", "pose"),
    annotation="ground-truth joints (joint_positions.mat pos_img, 15 puppet joints per frame) drawn as the "
               "jhmdb15 skeleton on black at the frame's size",
    split="train", root_dir="jhmdb",
    license="research use; see jhmdb.is.tue.mpg.de",
    citation="Jhuang et al., Towards Understanding Action Recognition, ICCV 2013",
    homepage="http://jhmdb.is.tue.mpg.de/",
    uvdv1=UVDv1Share(dataset="JHMDB", annotation_type="Video Human Pose", fraction=1.0),
    version="2.0.0",  # 2: multi_sequence layout (was 8 interleaved pairs)
))
