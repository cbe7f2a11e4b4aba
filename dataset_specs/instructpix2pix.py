"""InstructPix2Pix: [original, edited] x 8 pairs from the Hugging Face parquet release."""

from uvd.dataset_specs.base import DatasetSpec, UVDv1Share, register

INSTRUCTPIX2PIX = register(DatasetSpec(
    name="instructpix2pix", title="InstructPix2Pix (CLIP-filtered) original / edited image pairs",
    group="images_with_annotations", reader="parquet_pairs",
    reader_args={"files_glob": "data/train-*.parquet", "input_column": "original_image",
                 "target_column": "edited_image",
                 "text_columns": ("original_prompt", "edit_prompt", "edited_prompt")},
    layout="pairs", views=("input", "target"),
    annotation="input: the original generated image; target: the image after the edit instruction (the prompts "
               "are kept in each item's annotation, not drawn)",
    root_dir="instructpix2pix", license="see the Hugging Face dataset card (images generated with Stable Diffusion)",
    citation="Brooks, Holynski, Efros, InstructPix2Pix: Learning to Follow Image Editing Instructions, CVPR 2023",
    homepage="https://huggingface.co/datasets/timbrooks/instructpix2pix-clip-filtered",
    uvdv1=UVDv1Share(dataset="Subset of InstructPix2Pix", annotation_type="Style Transfer",
                     basis="UVDv1 used an unspecified subset; this spec reads every parquet the root holds"),
))
