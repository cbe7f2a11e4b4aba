"""Ego4D: egocentric daily-life video; every full-scale video of the metadata manifest.

Expected layout under the root, as the Ego4D CLI downloads it (``--datasets full_scale
--metadata``): ``v2/ego4d.json`` with ``{"videos": [{"video_uid": ...}, ...]}`` and
``v2/full_scale/<video_uid>.mp4``. Ego4D has no train split of whole videos: all are used.
Users who downloaded the clips instead set ``records: clips``, ``key``/``path``: ``{clip_uid}``
and ``videos: v2/clips``.
"""

from uvd.dataset_specs.base import DatasetSpec, UVDv1Share, register

EGO4D = register(DatasetSpec(
    name="ego4d", title="Ego4D (full-scale videos)", group="videos",
    reader="video_index",
    reader_args={"index": ("v2/ego4d.json", "v1/ego4d.json", "ego4d.json"), "format": "json", "records": "videos",
                 "key": "{video_uid}", "path": "{video_uid}", "videos": "v2/full_scale"},
    layout="video", views=("frame",), annotation="-",
    split="all", root_dir="ego4d",
    license="Ego4D license agreement (research use, signed per user)",
    citation="Grauman et al. Ego4D: Around the World in 3,000 Hours of Egocentric Video. CVPR 2022",
    homepage="https://ego4d-data.org/",
    uvdv1=UVDv1Share(dataset="Ego4D", annotation_type="-", fraction=1.0),
))
