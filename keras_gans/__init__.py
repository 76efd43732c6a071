"""keras_gans: Keras 3 reproductions of five GAN reports (see README.md)."""

__version__ = "0.1.0"


def load_model(path, compile=False, custom_objects=None):
    """Load a `.h5` or `.keras` model saved by keras_gans or by tf.keras 2 / Keras-GAN code.

    See :func:`keras_gans.saving.load_model`.
    """
    from keras_gans.saving import load_model as _load_model

    return _load_model(path, compile=compile, custom_objects=custom_objects)


__all__ = ["load_model", "__version__"]
