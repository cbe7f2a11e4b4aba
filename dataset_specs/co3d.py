"""CO3D v2: turntable-style phone videos of objects in 50 categories, shipped as frames; every sequence.

Expected layout under the root (the per-category zips, extracted):
``<category>/<sequence_name>/images/frame000001.jpg``... next to ``<category>/sequence_annotations.jgz``.
CO3D's set lists choose frames for few/many-view evaluation, not whole sequences, so all
sequences are used; the frames are sentences of a frame sequence (UVDv1 counted CO3D as video).
"""

from uvd.dataset_specs.base import DatasetSpec, UVDv1Share, register

CO3D = register(DatasetSpec(
    name="co3d", title="CO3D v2 (all sequences, frames)", group="videos",
    reader="co3d_sequences",
    layout="frame_sequence", views=("frame",), annotation="-",
    split="all", root_dir="co3d",
    license="CC BY-NC 4.0",
    citation="Reizenstein et al. Common Objects in 3D: Large-Scale Learning and Evaluation of Real-life 3D "
             "Category Reconstruction. ICCV 2021",
    homepage="https://github.com/facebookresearch/co3d",
    uvdv1=UVDv1Share(dataset="Co3D", annotation_type="-", fraction=1.0),
))
