"""CO3D v2: turntable-style phone videos of objects in 50 categories, shipped as frames, with
foreground masks and depth-validity masks; every sequence.

Expected layout under the root (the per-category zips, extracted):
``<category>/<sequence_name>/{images,masks,depth_masks}/frame000001.{jpg,png}`` next to
``<category>/sequence_annotations.jgz``. CO3D's set lists choose frames for few/many-view
evaluation, not whole sequences, so all sequences are used. Sentences are LVM's
(tokenize_co3d_muse.py): 4 frames of each of 4 consecutive sequences with their masks, then the
same frames with their depth masks (UVDv1 counted CO3D as video).
"""

from uvd.dataset_specs.base import DatasetSpec, UVDv1Share, register

CO3D = register(DatasetSpec(
    name="co3d", title="CO3D v2 (all sequences: frames, masks, depth masks)", group="videos",
    reader="co3d_sequences",
    layout="co3d", views=("frame", "mask", "depth_mask"),
    annotation="mask: CO3D's foreground mask (masks/); depth_mask: its depth-validity mask (depth_masks/), both "
               "at the frame's position in the sorted folder, as the release pairs them",
    split="all", root_dir="co3d",
    license="CC BY-NC 4.0",
    citation="Reizenstein et al. Common Objects in 3D: Large-Scale Learning and Evaluation of Real-life 3D "
             "Category Reconstruction. ICCV 2021",
    homepage="https://github.com/facebookresearch/co3d",
    uvdv1=UVDv1Share(dataset="Co3D", annotation_type="-", fraction=1.0),
    version="2.0.0",  # 2: LVM's co3d layout with masks and depth masks (was 16-frame sequences)
))
