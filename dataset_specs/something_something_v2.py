"""Something-Something v2: crowd-sourced clips of hands acting on objects; the training JSON.

Expected layout under the root: ``labels/train.json`` (or ``something-something-v2-train.json``),
a list of ``{"id", "label", "template", "placeholders"}``, and the videos
``20bn-something-something-v2/<id>.webm`` (VP9 WebM, as released).
"""

from uvd.dataset_specs.base import DatasetSpec, UVDv1Share, register

SOMETHING_SOMETHING_V2 = register(DatasetSpec(
    name="something_something_v2", title="Something-Something v2 (train)", group="videos",
    reader="video_index",
    reader_args={"index": ("labels/train.json", "something-something-v2-train.json",
                           "labels/something-something-v2-train.json"),
                 "format": "json", "key": "{id}", "path": "{id}", "label": "{template}",
                 "videos": "20bn-something-something-v2"},
    layout="video", views=("frame",), annotation="-",
    split="train", root_dir="something_something_v2",
    license="Qualcomm Technologies research-use license (non-commercial)",
    citation="Goyal et al. The \"something something\" video database for learning and evaluating visual common "
             "sense. ICCV 2017",
    homepage="https://www.qualcomm.com/developer/software/something-something-v-2-dataset",
    uvdv1=UVDv1Share(dataset="Something-something v2", annotation_type="-", fraction=1.0),
))
