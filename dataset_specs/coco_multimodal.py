"""COCO 2017 multi-task sentences: 3 photos x 5 modalities, one shuffled modality order per sentence."""

from uvd.dataset_specs.base import DatasetSpec, register

COCO_MULTIMODAL = register(DatasetSpec(
    name="coco_multimodal", title="COCO 2017 train: multi-task sentences (photo, normals, edges, depth, "
                                  "segmentation; LVM's multi-task data, not a separate UVDv1 row)",
    group="images_with_annotations", reader="coco", layout="multimodal",
    views=("image", "image|normals", "image|edges", "image|depth", "segmentation"),
    reader_args={"annotation_files": ("annotations/instances_train2017.json",), "annotations": "segmentation"},
    annotation="per photo: normals and depth from model annotators (UVDv1: NLL-AngMF, DPT), Canny edges (or an "
               "edges annotator; UVDv1: DexiNed) and the ground-truth instance masks painted by category (UVDv1: "
               "Mask2Former), as LVM's tokenize_multi_datasets_muse.py sentences; the UVDv1 table has no row of its "
               "own for them, so uvdv1 is None; items: images with >= 1 mask",
    root_dir="coco", license="annotations CC BY 4.0; images under the Flickr terms of use",
    citation="Lin et al., Microsoft COCO: Common Objects in Context, ECCV 2014", homepage="https://cocodataset.org",
    uvdv1=None,
))
