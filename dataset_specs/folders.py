"""Generic sources: any folder of images, any folder of videos (``--source images:DIR``)."""

from uvd.dataset_specs.base import DatasetSpec, register

IMAGES = register(DatasetSpec(
    name="images", title="A folder of images (unpaired)", group="unpaired_images",
    reader="image_files", layout="single_image", views=("image",),
    annotation="-", license="the folder's own", homepage="",
))

VIDEOS = register(DatasetSpec(
    name="videos", title="A folder of video files", group="videos",
    reader="video_files", layout="video", views=("frame",),
    annotation="-", license="the folder's own", homepage="",
))
