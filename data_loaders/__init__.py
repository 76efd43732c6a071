"""Data pipelines for keras_gans: every loader returns images scaled to [-1, 1]."""

from data_loaders.images import (
    BadImageError,
    NoImagesError,
    SkipReport,
    list_images,
    load_folder,
    load_image,
    load_images,
)

__all__ = [
    "BadImageError",
    "NoImagesError",
    "SkipReport",
    "list_images",
    "load_folder",
    "load_image",
    "load_images",
]
