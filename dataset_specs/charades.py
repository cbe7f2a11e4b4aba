"""Charades v1: scripted indoor activities filmed at home; the training CSV (480p videos).

Expected layout under the root: ``Charades_v1_train.csv`` (header ``id,subject,scene,...``) and
``Charades_v1_480/<id>.mp4``.
"""

from uvd.dataset_specs.base import DatasetSpec, UVDv1Share, register

CHARADES = register(DatasetSpec(
    name="charades", title="Charades v1 (train, 480p)", group="videos",
    reader="video_index",
    reader_args={"index": "Charades_v1_train.csv", "key": "{id}", "path": "{id}", "videos": "Charades_v1_480"},
    layout="video", views=("frame",), annotation="-",
    split="train", root_dir="charades",
    license="Allen Institute for AI Charades license (non-commercial research)",
    citation="Sigurdsson et al. Hollywood in Homes: Crowdsourcing Data Collection for Activity Understanding. "
             "ECCV 2016",
    homepage="https://prior.allenai.org/projects/charades",
    uvdv1=UVDv1Share(dataset="Charades v1", annotation_type="-", fraction=1.0),
))
