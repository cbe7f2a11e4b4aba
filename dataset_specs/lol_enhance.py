"""LOL: [low light, normal light] x 8 enhancement pairs."""

from uvd.dataset_specs.base import DatasetSpec, UVDv1Share, register

LOL_ENHANCE = register(DatasetSpec(
    name="lol_enhance", title="LOL (LOw-Light) v1 low / normal-light pairs (our485)",
    group="images_with_annotations", reader="paired_folders",
    reader_args={"input_glob": "our485/low/*.png", "input_part": "/low/", "target_part": "/high/"},
    layout="pairs", views=("input", "target"),
    annotation="input: a low-light photo; target: the same scene at normal exposure",
    root_dir="lol", license="LOL terms of use (research)",
    citation="Wei, Wang, Yang, Liu, Deep Retinex Decomposition for Low-Light Enhancement, BMVC 2018",
    homepage="https://daooshee.github.io/BMVC2018website/",
    uvdv1=UVDv1Share(dataset="LOL", annotation_type="Light Enhanced Image"),
))
