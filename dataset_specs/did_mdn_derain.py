"""DID-MDN: [rainy, clean] x 8 deraining pairs, each stored as one side-by-side image."""

from uvd.dataset_specs.base import DatasetSpec, UVDv1Share, register

DID_MDN_DERAIN = register(DatasetSpec(
    name="did_mdn_derain", title="DID-MDN rainy / clean training pairs (heavy, medium and light rain)",
    group="images_with_annotations", reader="side_by_side_pairs",
    # The left half is the rainy input, the right half the clean target (DID-MDN's loaders crop imgA, imgB so).
    reader_args={"glob": "DID-MDN-training/*/train2018new/*.jpg", "input_half": "left"},
    layout="pairs", views=("input", "target"),
    annotation="input: a synthetic rainy image (left half of the file); target: the clean image (right half)",
    root_dir="did_mdn", license="DID-MDN terms of use (research)",
    citation="Zhang, Patel, Density-aware Single Image De-raining using a Multi-stream Dense Network, CVPR 2018",
    homepage="https://github.com/hezhangsprinter/DID-MDN",
    uvdv1=UVDv1Share(dataset="DID-MDN", annotation_type="Rainy and Clean Image Pairs"),
))
