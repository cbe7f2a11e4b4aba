"""Moments in Time: one million 3-second clips of 339 events; the training CSV.

Expected layout under the root (Moments_in_Time_Raw.zip, extracted): ``trainingSet.csv`` with
header-less rows ``<category>/<file>.mp4,<category>,<agreement>,<disagreement>`` and the clips
``training/<category>/<file>.mp4``.
"""

from uvd.dataset_specs.base import DatasetSpec, UVDv1Share, register

MOMENTS_IN_TIME = register(DatasetSpec(
    name="moments_in_time", title="Moments in Time (training)", group="videos",
    reader="video_index",
    reader_args={"index": ("trainingSet.csv", "annotations/trainingSet.csv"),
                 "columns": ("path", "category", "agreement", "disagreement"),
                 "key": "{path}", "path": "{path}", "label": "{category}", "videos": "training"},
    layout="video", views=("frame",), annotation="-",
    split="train", root_dir="moments_in_time",
    license="MIT-IBM Watson AI Lab research license agreement (non-commercial)",
    citation="Monfort et al. Moments in Time Dataset: one million videos for event understanding. TPAMI 2019",
    homepage="http://moments.csail.mit.edu/",
    uvdv1=UVDv1Share(dataset="Moments in Time", annotation_type="-", fraction=1.0),
))
