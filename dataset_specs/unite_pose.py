"""Unite the People (UP-3D) photos with model pose skeletons: [image, pose] x 8.

LVM's table names this source only "Unite"; it is read here as Unite the People (Lassner et
al. 2017), whose UP-3D release holds ``up-3d/<n>_image.png`` photos beside renders and fits,
with split lists naming the photos (``/00000_image.png``).
"""

from uvd.dataset_specs.base import DatasetSpec, UVDv1Share, register

UNITE_POSE = register(DatasetSpec(
    name="unite_pose", title="Unite the People (UP-3D) photos and pose skeletons",
    group="images_with_annotations", reader="image_folder",
    reader_args={"folder": "up-3d", "list_file": "trainval.txt"},
    layout="pairs", views=("image", "image|pose"),
    annotation="COCO-17 skeletons of every person, drawn on black by the pose model annotator (UVDv1 used MMPose "
               "predictions); needs --annotator pose=DIR. 'Unite' is taken to be Unite the People (UP-3D): the "
               "*_image.png photos its trainval.txt lists (renders, masks and fits are not read)",
    root_dir="unite", license="UP dataset terms of use (research)",
    citation="Lassner, Romero, Kiefel, Bogo, Black, Gehler, Unite the People: Closing the Loop Between 3D and 2D "
             "Human Representations, CVPR 2017",
    homepage="https://files.is.tue.mpg.de/classner/up/",
    uvdv1=UVDv1Share(dataset="COCO, lvmhp, mpii, Unite", annotation_type="Human Pose", fraction=0.25,
                     basis="the paper gives only the row's total; split equally among its four datasets"),
))
