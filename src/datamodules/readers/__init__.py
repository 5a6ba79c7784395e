"""Image readers: decode image files, list them in a folder or a dataset_tool zip, serve them as datasets.

One module per concern; this package re-exports their public names, so configs and code keep
naming ``src.datamodules.readers.ImageFolderDataset`` (runs and checkpoints store that ``_target_``):

- :mod:`~src.datamodules.readers.decoding`: bytes -> uint8 ``[C, H, W]`` (any PIL mode, crop, resize
  filter), which names are images, the bad-file errors;
- :mod:`~src.datamodules.readers.sources`: folders, zips and the FFHQ tree listed in a fixed order,
  their ``dataset.json`` labels, dataset_tool's archive names;
- :mod:`~src.datamodules.readers.video`: the frames of video clips (PyAV), chosen by time range and
  stride, for ``scripts/prepare_dataset.py``;
- :mod:`~src.datamodules.readers.datasets`: the shared bad-file policy and :class:`ImageFolderDataset`.
"""

from src.datamodules.readers.datasets import ImageFolderDataset, SkippingImageDataset
from src.datamodules.readers.decoding import (
    IMAGE_EXTENSIONS,
    RESIZE_FILTERS,
    BadImageError,
    ImageTooSmallError,
    center_crop_box,
    convert_image,
    decode_image,
    is_image_name,
)
from src.datamodules.readers.sources import (
    FFHQ_SUBFOLDERS,
    LABEL_FILE,
    DataRootNotFoundError,
    FolderSource,
    ZipSource,
    archive_name,
    open_source,
)
from src.datamodules.readers.video import VIDEO_EXTENSIONS, VideoClipError, VideoSource, is_video_name, list_videos

__all__ = [
    "RESIZE_FILTERS",
    "IMAGE_EXTENSIONS",
    "FFHQ_SUBFOLDERS",
    "LABEL_FILE",
    "BadImageError",
    "DataRootNotFoundError",
    "ImageTooSmallError",
    "decode_image",
    "convert_image",
    "is_image_name",
    "center_crop_box",
    "FolderSource",
    "ZipSource",
    "open_source",
    "archive_name",
    "VIDEO_EXTENSIONS",
    "VideoClipError",
    "VideoSource",
    "is_video_name",
    "list_videos",
    "SkippingImageDataset",
    "ImageFolderDataset",
]
