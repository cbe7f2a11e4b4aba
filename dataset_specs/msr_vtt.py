"""MSR-VTT: 10,000 web video clips with captions; the training split of the train/val release.

Expected layout under the root: ``train_val_videodatainfo.json``,
``{"videos": [{"video_id": "video0", "split": "train", "category": 9, ...}], "sentences": [...]}``,
and ``TrainValVideo/video0.mp4``.
"""

from uvd.dataset_specs.base import DatasetSpec, UVDv1Share, register

MSR_VTT = register(DatasetSpec(
    name="msr_vtt", title="MSR-VTT (train)", group="videos",
    reader="video_index",
    reader_args={"index": "train_val_videodatainfo.json", "format": "json", "records": "videos",
                 "where": {"split": "train"}, "key": "{video_id}", "path": "{video_id}", "label": "{category}",
                 "videos": "TrainValVideo"},
    layout="video", views=("frame",), annotation="-",
    split="train", root_dir="msr_vtt",
    license="Microsoft Research license for research use; the clips are web videos under their owners' terms",
    citation="Xu, Mei, Yao, Rui. MSR-VTT: A Large Video Description Dataset for Bridging Video and Language. "
             "CVPR 2016",
    homepage="https://www.microsoft.com/en-us/research/publication/"
             "msr-vtt-a-large-video-description-dataset-for-bridging-video-and-language/",
    uvdv1=UVDv1Share(dataset="MSR-VTT", annotation_type="-", fraction=1.0),
))
