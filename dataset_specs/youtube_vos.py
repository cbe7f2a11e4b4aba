"""YouTube-VOS 2019: YouTube video-object-segmentation sequences; the training frames.

Expected layout under the root (the 2019 train.zip, extracted): ``train/meta.json``,
``{"videos": {"<video_id>": {"objects": {...}}}}``, and ``train/JPEGImages/<video_id>/<frame>.jpg``
(every fifth frame, named by its index: ``00000.jpg``, ``00005.jpg``...).
"""

from uvd.dataset_specs.base import DatasetSpec, UVDv1Share, register

YOUTUBE_VOS = register(DatasetSpec(
    name="youtube_vos", title="YouTube-VOS 2019 (train frames)", group="videos",
    reader="frame_folders",
    reader_args={"index": "train/meta.json", "format": "json", "records": "videos", "key": "{id}",
                 "path": "train/JPEGImages/{id}"},
    layout="frame_sequence", views=("frame",), annotation="-",
    split="train", root_dir="youtube_vos",
    license="annotations CC BY 4.0; the videos are YouTube videos under their uploaders' terms",
    citation="Xu et al. YouTube-VOS: A Large-Scale Video Object Segmentation Benchmark. ECCV 2018",
    homepage="https://youtube-vos.org/",
    uvdv1=UVDv1Share(dataset="Youtube VOS", annotation_type="-", fraction=1.0),
))
