"""UCF101: YouTube clips of 101 human actions; the training list of split 1.

Expected layout under the root (UCF101.rar and the recognition split zip, extracted):
``UCF-101/<Class>/v_<Class>_gXX_cYY.avi`` and ``ucfTrainTestlist/trainlist01.txt`` with lines
``<Class>/v_<Class>_gXX_cYY.avi <class index>`` (CRLF line ends, as shipped).
"""

from uvd.dataset_specs.base import DatasetSpec, UVDv1Share, register

UCF101 = register(DatasetSpec(
    name="ucf101", title="UCF101 (train, split 1)", group="videos",
    reader="video_index",
    reader_args={"index": "ucfTrainTestlist/trainlist01.txt", "delimiter": " ", "columns": ("path", "class_index"),
                 "key": "{path}", "path": "{path}", "videos": "UCF-101"},
    layout="video", views=("frame",), annotation="-",
    split="train", root_dir="ucf101",
    license="no explicit license; distributed by CRCV (University of Central Florida) for research",
    citation="Soomro, Zamir, Shah. UCF101: A Dataset of 101 Human Actions Classes From Videos in The Wild. "
             "arXiv:1212.0402, 2012",
    homepage="https://www.crcv.ucf.edu/data/UCF101.php",
    uvdv1=UVDv1Share(dataset="UCF101", annotation_type="-", fraction=1.0),
))
