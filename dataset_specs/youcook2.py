"""YouCook2: YouTube cooking videos of 89 recipes; the training subset.

Expected layout under the root: ``youcookii_annotations_trainval.json``,
``{"database": {"<id>": {"subset": "training", "recipe_type": "113", ...}}}``, and the raw videos
``raw_videos/training/<recipe_type>/<id>.<mp4|mkv|webm>`` (the container youtube-dl chose).
"""

from uvd.dataset_specs.base import DatasetSpec, UVDv1Share, register

YOUCOOK2 = register(DatasetSpec(
    name="youcook2", title="YouCook2 (training)", group="videos",
    reader="video_index",
    reader_args={"index": ("youcookii_annotations_trainval.json", "annotations/youcookii_annotations_trainval.json"),
                 "format": "json", "records": "database", "where": {"subset": "training"},
                 "key": "{id}", "path": "{recipe_type}/{id}", "label": "{recipe_type}",
                 "videos": "raw_videos/training"},
    layout="video", views=("frame",), annotation="-",
    split="train", root_dir="youcook2",
    license="annotations MIT license; the videos are YouTube videos under their uploaders' terms",
    citation="Zhou, Xu, Corso. Towards Automatic Learning of Procedures from Web Instructional Videos. AAAI 2018",
    homepage="http://youcook2.eecs.umich.edu/",
    uvdv1=UVDv1Share(dataset="YouCook", annotation_type="-", fraction=1.0),
))
