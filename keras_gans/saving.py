"""Saving and loading models (placeholder API; being completed)."""

import os

import keras

from keras_gans import layers as _layers  # noqa: F401  (registers the custom layers)


class ModelFileError(ValueError):
    """A model file is missing, truncated, or not a Keras model."""


def save_model(model, path_stem, formats=("h5", "keras")):
    """Save ``model`` as ``path_stem.h5`` and ``path_stem.keras``, atomically; returns the paths."""
    os.makedirs(os.path.dirname(os.path.abspath(path_stem)) or ".", exist_ok=True)
    paths = []
    for fmt in formats:
        final = f"{path_stem}.{fmt}"
        tmp = f"{path_stem}.tmp.{fmt}"
        model.save(tmp)
        os.replace(tmp, final)
        paths.append(final)
    return paths


def load_model(path, compile=False, custom_objects=None):
    """Load a `.h5` / `.keras` model file."""
    if not os.path.exists(path):
        raise ModelFileError(f"model file not found: {path}")
    return keras.saving.load_model(path, compile=compile, custom_objects=custom_objects)
