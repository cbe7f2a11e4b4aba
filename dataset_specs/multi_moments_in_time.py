"""Multi-Moments in Time: the Moments in Time clips with several event labels each; the training list.

Expected layout under the root (Multi_Moments_in_Time.zip, extracted): ``trainingSet.txt`` with
header-less rows ``<category>/<file>.mp4,<label id>[,<label id>...]`` and the clips
``videos/<category>/<file>.mp4``.
"""

from uvd.dataset_specs.base import DatasetSpec, UVDv1Share, register

MULTI_MOMENTS_IN_TIME = register(DatasetSpec(
    name="multi_moments_in_time", title="Multi-Moments in Time (training)", group="videos",
    reader="video_index",
    reader_args={"index": ("trainingSet.txt", "annotations/trainingSet.txt"), "columns": ("path", "label_id"),
                 "key": "{path}", "path": "{path}", "label": "{label_id}", "videos": "videos"},
    layout="video", views=("frame",), annotation="-",
    split="train", root_dir="multi_moments_in_time",
    license="MIT-IBM Watson AI Lab research license agreement (non-commercial)",
    citation="Monfort et al. Multi-Moments in Time: Learning and Interpreting Models for Multi-Action Video "
             "Understanding. TPAMI 2021 (arXiv:1911.00232)",
    homepage="http://moments.csail.mit.edu/",
    uvdv1=UVDv1Share(dataset="Multi-moments in Time", annotation_type="-", fraction=1.0),
))
