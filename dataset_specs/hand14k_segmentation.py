"""Hand14K (the EGTEA Gaze+ hand masks): frames and hand masks, as aligned sequences (LVM's multi-
sequence sentences: 2 shots x 2 tasks x 16 frames, tasks separate and interleaved) (UVDv1
videos_with_annotations)."""

from uvd.dataset_specs.base import DatasetSpec, UVDv1Share, register

HAND14K_SEGMENTATION = register(DatasetSpec(
    name="hand14k_segmentation",
    title="Hand14K: EGTEA Gaze+ hand masks (hand14k.zip: Images/ + Masks/; frames grouped into videos by the "
          "trailing frame number of their names, an assumed naming)",
    group="videos_with_annotations",
    reader="hand14k", reader_args={"images_dir": "Images", "masks_dir": "Masks"},
    layout="multi_sequence", views=("frame", "mask"),
    annotation="ground-truth hand masks drawn white on black (draw_mask); a video's annotated frames are the "
               "masks whose names share its prefix, in frame-number order (the release's file naming could not "
               "be verified: see pipeline/readers/hands.py)",
    split="train", root_dir="hand14k",
    license="EGTEA Gaze+ terms: non-commercial research use",
    citation="Li, Liu and Rehg, In the Eye of Beholder: Joint Learning of Gaze and Actions in First Person Video, "
             "ECCV 2018",
    homepage="http://www.cbi.gatech.edu/fpv/",
    uvdv1=UVDv1Share(dataset="Hand14K", annotation_type="Hand Segmentation", fraction=1.0),
    version="2.0.0",  # 2: multi_sequence layout (was 8 interleaved pairs)
))
