"""LAION-5B images as img2dataset downloads them (webdataset tars): one image per sentence."""

from uvd.dataset_specs.base import DatasetSpec, UVDv1Share, register

LAION = register(DatasetSpec(
    name="laion", title="LAION-5B images (img2dataset webdataset shards)", group="unpaired_images",
    reader="laion", layout="single_image", views=("image",), annotation="-", root_dir="laion",
    license="CC BY 4.0 (the metadata); each image keeps its own copyright",
    citation="Schuhmann et al., LAION-5B: An open large-scale dataset for training next generation "
             "image-text models, NeurIPS 2022",
    homepage="https://laion.ai/blog/laion-5b/",
    uvdv1=UVDv1Share(dataset="LAION 5B (1.5B images subset)", annotation_type="-",
                     basis="UVDv1 used a 1.5B-image subset; this spec reads whatever shards the root holds"),
))
