"""Jester: crowd-sourced webcam clips of 27 hand gestures, shipped as JPEG frames; the training CSV.

Expected layout under the root: ``jester-v1-train.csv`` with header-less rows ``<id>;<label>`` and
the frames ``20bn-jester-v1/<id>/00001.jpg``...
"""

from uvd.dataset_specs.base import DatasetSpec, UVDv1Share, register

JESTER = register(DatasetSpec(
    name="jester", title="Jester v1 (train frames)", group="videos",
    reader="frame_folders",
    reader_args={"index": "jester-v1-train.csv", "delimiter": ";", "columns": ("id", "label"), "key": "{id}",
                 "path": "20bn-jester-v1/{id}", "label": "{label}"},
    layout="frame_sequence", views=("frame",), annotation="-",
    split="train", root_dir="jester",
    license="Qualcomm Technologies research-use license (non-commercial)",
    citation="Materzynska, Berger, Bax, Memisevic. The Jester Dataset: A Large-Scale Video Dataset of Human "
             "Gestures. ICCV Workshops 2019",
    homepage="https://www.qualcomm.com/developer/software/jester-dataset",
    uvdv1=UVDv1Share(dataset="jester", annotation_type="-", fraction=1.0),
))
