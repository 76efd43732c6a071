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
from data_loaders.isic import load_isic
from data_loaders.mnist import load_mnist
from data_loaders.unpaired import DataLoader, UnpairedImages

__all__ = [
    "DataLoader",
    "UnpairedImages",
    "load_isic",
    "load_mnist",
    "BadImageError",
    "NoImagesError",
    "SkipReport",
    "list_images",
    "load_folder",
    "load_image",
    "load_images",
]
