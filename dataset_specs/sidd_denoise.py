"""SIDD: [noisy, clean] x 8 image denoising pairs."""

from uvd.dataset_specs.base import DatasetSpec, UVDv1Share, register

SIDD_DENOISE = register(DatasetSpec(
    name="sidd_denoise", title="SIDD smartphone noisy / ground-truth sRGB pairs",
    group="images_with_annotations", reader="paired_folders",
    # SIDD_Small_sRGB_Only (or SIDD_Medium_Srgb): Data/<scene instance>/NOISY_SRGB_010.PNG + GT_SRGB_010.PNG
    reader_args={"input_glob": "*/Data/*/NOISY_SRGB_*.PNG", "input_part": "NOISY_SRGB_",
                 "target_part": "GT_SRGB_"},
    layout="pairs", views=("input", "target"),
    annotation="input: a noisy smartphone sRGB image; target: its ground-truth (denoised) image",
    root_dir="sidd", license="SIDD terms of use (research)",
    citation="Abdelhamed, Lin, Brown, A High-Quality Denoising Dataset for Smartphone Cameras, CVPR 2018",
    homepage="https://www.eecs.yorku.ca/~kamel/sidd/",
    uvdv1=UVDv1Share(dataset="SIDD", annotation_type="Denoised Image"),
))
