"""Diving48: competitive dives of 48 classes, trimmed; the V2 training list.

Expected layout under the root: ``Diving48_V2_train.json``, a list of
``{"vid_name", "label", "start_frame", "end_frame"}``, and the trimmed clips ``rgb/<vid_name>.mp4``.
"""

from uvd.dataset_specs.base import DatasetSpec, UVDv1Share, register

DIVING48 = register(DatasetSpec(
    name="diving48", title="Diving48 (V2 train)", group="videos",
    reader="video_index",
    reader_args={"index": "Diving48_V2_train.json", "format": "json", "key": "{vid_name}", "path": "{vid_name}",
                 "label": "{label}", "videos": "rgb"},
    layout="video", views=("frame",), annotation="-",
    split="train", root_dir="diving48",
    license="research use (SVCL, UC San Diego)",
    citation="Li, Li, Vasconcelos. RESOUND: Towards Action Recognition without Representation Bias. ECCV 2018",
    homepage="http://www.svcl.ucsd.edu/projects/resound/dataset.html",
    uvdv1=UVDv1Share(dataset="diving48", annotation_type="-", fraction=1.0),
))
