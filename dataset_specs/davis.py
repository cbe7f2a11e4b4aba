"""DAVIS 2017: densely annotated video-object-segmentation sequences; the 480p training sequences.

Expected layout under the root (DAVIS-2017-trainval-480p.zip, extracted): ``ImageSets/2017/train.txt``
(one sequence name a line) and ``JPEGImages/480p/<sequence>/00000.jpg``...
"""

from uvd.dataset_specs.base import DatasetSpec, UVDv1Share, register

DAVIS = register(DatasetSpec(
    name="davis", title="DAVIS 2017 (train, 480p frames)", group="videos",
    reader="frame_folders",
    reader_args={"index": "ImageSets/2017/train.txt", "columns": ("sequence",), "key": "{sequence}",
                 "path": "JPEGImages/480p/{sequence}"},
    layout="frame_sequence", views=("frame",), annotation="-",
    split="train", root_dir="davis",
    license="annotations CC BY-NC 4.0; the videos are under their owners' terms (research use)",
    citation="Pont-Tuset et al. The 2017 DAVIS Challenge on Video Object Segmentation. arXiv:1704.00675, 2017",
    homepage="https://davischallenge.org/",
    uvdv1=UVDv1Share(dataset="DAVIS", annotation_type="-", fraction=1.0),
))
