"""AVA (videos row): the movies of AVA v2.2's training annotations, as plain video clips.

Expected layout under the root ``ava/`` (shared with the Video Detection spec of the same
dataset): the CVDF movies ``videos/trainval/<video_id>.<mkv|mp4|webm>`` and the v2.2 annotation
zip extracted into ``annotations/`` (``ava_train_v2.2.csv``: header-less rows ``video_id,
middle_frame_timestamp, x1, y1, x2, y2, action_id, person_id``, many per video). Each movie
named by the training CSV is one item.
"""

from uvd.dataset_specs.base import DatasetSpec, UVDv1Share, register

AVA_VIDEOS = register(DatasetSpec(
    name="ava_videos", title="AVA v2.2 movies (train)", group="videos",
    reader="video_index",
    reader_args={"index": ("annotations/ava_train_v2.2.csv", "ava_train_v2.2.csv"),
                 "columns": ("video_id", "timestamp", "x1", "y1", "x2", "y2", "action_id", "person_id"),
                 "key": "{video_id}", "path": "{video_id}", "videos": "videos/trainval"},
    layout="video", views=("frame",), annotation="-",
    split="train", root_dir="ava",
    license="annotations CC BY 4.0 (Google); the movies are under their rights holders' terms",
    citation="Gu et al. AVA: A Video Dataset of Spatio-temporally Localized Atomic Visual Actions. CVPR 2018",
    homepage="https://research.google.com/ava/",
    uvdv1=UVDv1Share(dataset="AVA", annotation_type="-", fraction=1.0),
))
