"""AVA v2.2 person boxes on keyframes: keyframes and keyframes with boxes, as aligned sequences (LVM's
multi-sequence sentences: 2 shots x 2 tasks x 16 frames, tasks separate and interleaved) (UVDv1
videos_with_annotations).

The same videos feed the plain ``ava_videos`` spec (group videos); both read the folder ``ava``.
"""

from uvd.dataset_specs.base import DatasetSpec, UVDv1Share, register

AVA_DETECTION = register(DatasetSpec(
    name="ava_detection",
    title="AVA v2.2: person boxes on the 1 Hz keyframes of movie videos",
    group="videos_with_annotations",
    reader="ava_detection",
    reader_args={"annotations": "ava_train_v2.2.csv", "videos_dir": "videos/trainval", "time_offset": 0.0},
    layout="multi_sequence", views=("frame", "boxes"),
    annotation="ground-truth person boxes of ava_train_v2.2.csv drawn over the keyframe (one rectangle per "
               "distinct box and person, coloured by person id); keyframe t is video frame round((t - "
               "time_offset) x fps)",
    split="train", root_dir="ava",
    license="annotations CC BY 4.0; videos from YouTube under their owners' terms",
    citation="Gu et al., AVA: A Video Dataset of Spatio-temporally Localized Atomic Visual Actions, CVPR 2018",
    homepage="https://research.google.com/ava/",
    uvdv1=UVDv1Share(dataset="AVA", annotation_type="Video Detection", fraction=1.0),
    version="2.0.0",  # 2: multi_sequence layout (was 8 interleaved pairs)
))
