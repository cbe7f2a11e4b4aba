"""ActivityNet v1.3: untrimmed YouTube videos of 200 activities; the training subset.

Expected layout under the root: ``activity_net.v1-3.min.json``,
``{"database": {"<id>": {"subset": "training", "annotations": [...], ...}}}``, and the videos
``v_<id>.mp4`` (or ``.mkv``/``.webm``, as the crawler saved them) anywhere below the root.
"""

from uvd.dataset_specs.base import DatasetSpec, UVDv1Share, register

ACTIVITYNET = register(DatasetSpec(
    name="activitynet", title="ActivityNet v1.3 (training)", group="videos",
    reader="video_index",
    reader_args={"index": "activity_net.v1-3.min.json", "format": "json", "records": "database",
                 "where": {"subset": "training"}, "key": "{id}", "path": "v_{id}", "videos": ""},
    layout="video", views=("frame",), annotation="-",
    split="train", root_dir="activitynet",
    license="annotations for research use; the videos are YouTube videos under their uploaders' terms",
    citation="Caba Heilbron, Escorcia, Ghanem, Niebles. ActivityNet: A Large-Scale Video Benchmark for Human "
             "Activity Understanding. CVPR 2015",
    homepage="http://activity-net.org/",
    uvdv1=UVDv1Share(dataset="ActivityNet", annotation_type="-", fraction=1.0),
))
