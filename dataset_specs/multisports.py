"""MultiSports: sports videos (aerobic gymnastics, basketball, football, volleyball); the trainval videos.

Expected layout under the root: ``trainval/<sport>/<video>.mp4``. The release says which of
them are train and which val only in its annotation pickle (``multisports_GT.pkl``), and uvd
never unpickles data, so every video of ``trainval/`` is used (the test videos, in ``test/``,
are not).
"""

from uvd.dataset_specs.base import DatasetSpec, UVDv1Share, register

MULTISPORTS = register(DatasetSpec(
    name="multisports", title="MultiSports (trainval videos)", group="videos",
    reader="video_tree", reader_args={"folder": "trainval"},
    layout="video", views=("frame",), annotation="-",
    split="trainval", root_dir="multisports",
    license="CC BY-NC 4.0",
    citation="Li, Chen, He, Wu, Wang, Wang. MultiSports: A Multi-Person Video Dataset of Spatio-Temporally "
             "Localized Sports Actions. ICCV 2021",
    homepage="https://deeperaction.github.io/datasets/multisports.html",
    uvdv1=UVDv1Share(dataset="MultiSports", annotation_type="-", fraction=1.0),
))
