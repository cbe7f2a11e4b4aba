"""HMDB51: 51 actions from movies and web videos; the training videos of split 1.

Expected layout under the root (hmdb51_org.rar with its per-action rars extracted, and
test_train_splits.rar): ``hmdb51_org/<action>/<video>.avi`` and
``testTrainMulti_7030_splits/<action>_test_split1.txt`` with lines ``<video>.avi <id>``
(1 = train, 2 = test, 0 = unused). Each action's split file is listed in parallel.
"""

from uvd.dataset_specs.base import DatasetSpec, UVDv1Share, register

HMDB51 = register(DatasetSpec(
    name="hmdb51", title="HMDB51 (train, split 1)", group="videos",
    reader="hmdb51_splits", reader_args={"split_number": 1},
    layout="video", views=("frame",), annotation="-",
    split="train", root_dir="hmdb51",
    license="CC BY 4.0 (Serre lab, Brown University)",
    citation="Kuehne, Jhuang, Garrote, Poggio, Serre. HMDB: A Large Video Database for Human Motion Recognition. "
             "ICCV 2011",
    homepage="https://serre-lab.clps.brown.edu/resource/hmdb-a-large-human-motion-database/",
    uvdv1=UVDv1Share(dataset="HMDB", annotation_type="-", fraction=1.0),
))
