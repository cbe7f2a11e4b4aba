"""MPII Human Pose photos with model pose skeletons: [image, pose] x 8."""

from uvd.dataset_specs.base import DatasetSpec, UVDv1Share, register

MPII_POSE = register(DatasetSpec(
    name="mpii_pose", title="MPII Human Pose photos and pose skeletons",
    group="images_with_annotations", reader="image_folder",
    reader_args={"folder": "images"},  # mpii_human_pose_v1.tar.gz extracts to images/<id>.jpg
    layout="pairs", views=("image", "image|pose"),
    annotation="COCO-17 skeletons of every person, drawn on black by the pose model annotator (UVDv1 used MMPose "
               "predictions); needs --annotator pose=DIR",
    root_dir="mpii", license="Simplified BSD (MPII Human Pose)",
    citation="Andriluka, Pishchulin, Gehler, Schiele, 2D Human Pose Estimation: New Benchmark and State of the "
             "Art Analysis, CVPR 2014",
    homepage="http://human-pose.mpi-inf.mpg.de/",
    uvdv1=UVDv1Share(dataset="COCO, lvmhp, mpii, Unite", annotation_type="Human Pose", fraction=0.25,
                     basis="the paper gives only the row's total; split equally among its four datasets"),
))
