"""Kinetics-700: 10-second YouTube clips of 700 human actions; the training CSV.

Expected layout under the root: the CVDF release (k700-2020: ``annotations/train.csv``) or the
2019 archive (``train.csv``), columns ``label,youtube_id,time_start,time_end,split``, and the
clips as the downloaders write them, ``train/<label>/<youtube_id>_<start:06d>_<end:06d>.mp4``
(a flat ``train/`` folder resolves too: clips are found by file name).
"""

from uvd.dataset_specs.base import DatasetSpec, UVDv1Share, register

CLIP = "{youtube_id}_{time_start:0>6}_{time_end:0>6}"

KINETICS700 = register(DatasetSpec(
    name="kinetics700", title="Kinetics-700 (train)", group="videos",
    reader="video_index",
    reader_args={"index": ("annotations/train.csv", "train.csv"), "key": CLIP, "path": "{label}/" + CLIP,
                 "label": "{label}", "videos": "train"},
    layout="video", views=("frame",), annotation="-",
    split="train", root_dir="kinetics700",
    license="annotations CC BY 4.0 (Google DeepMind); the clips are YouTube videos under their uploaders' terms",
    citation="Carreira, Noland, Hillier, Zisserman. A Short Note on the Kinetics-700 Human Action Dataset. "
             "arXiv:1907.06987, 2019",
    homepage="https://github.com/cvdfoundation/kinetics-dataset",
    uvdv1=UVDv1Share(dataset="Kinetics 700", annotation_type="-", fraction=1.0),
))
