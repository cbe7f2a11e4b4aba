"""Charades-Ego: paired first- and third-person videos of the Charades scripts; the training CSV.

Expected layout under the root: ``CharadesEgo_v1_train.csv`` (header ``id,subject,...``; ids of
egocentric videos end in ``EGO``) and ``CharadesEgo_v1_480/<id>.mp4``.
"""

from uvd.dataset_specs.base import DatasetSpec, UVDv1Share, register

CHARADES_EGO = register(DatasetSpec(
    name="charades_ego", title="Charades-Ego (train, 480p)", group="videos",
    reader="video_index",
    reader_args={"index": "CharadesEgo_v1_train.csv", "key": "{id}", "path": "{id}",
                 "videos": "CharadesEgo_v1_480"},
    layout="video", views=("frame",), annotation="-",
    split="train", root_dir="charades_ego",
    license="Allen Institute for AI Charades license (non-commercial research)",
    citation="Sigurdsson, Gupta, Schmid, Farhadi, Alahari. Charades-Ego: A Large-Scale Dataset of Paired Third "
             "and First Person Videos. arXiv:1804.09626, 2018",
    homepage="https://prior.allenai.org/projects/charades-ego",
    uvdv1=UVDv1Share(dataset="CharadesEgo", annotation_type="-", fraction=1.0),
))
