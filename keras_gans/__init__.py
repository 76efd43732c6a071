"""keras_gans: Keras 3 reproductions of five GAN reports (see README.md)."""

import os as _os
import sys as _sys

__version__ = "0.1.0"

# `python -m keras_gans...` imports this package before TensorFlow: keep TensorFlow's C++ log lines
# (oneDNN notices, "could not find cuda drivers", remapper messages) off the terminal unless the user
# asked for them with --verbose or set TF_CPP_MIN_LOG_LEVEL themselves.
# Some of those lines are written before TensorFlow reads the variable, so its import runs with the
# process's stderr pointed at /dev/null (Python's own errors are raised after it is restored).
if (
    _sys.argv[:1] == ["-m"]
    and "--verbose" not in _sys.argv
    and "TF_CPP_MIN_LOG_LEVEL" not in _os.environ
):
    _os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    _saved = _os.dup(2)
    try:
        with open(_os.devnull, "w") as _null:
            _os.dup2(_null.fileno(), 2)
            import tensorflow  # noqa: F401
    finally:
        _os.dup2(_saved, 2)
        _os.close(_saved)


def load_model(path, compile=False, custom_objects=None):
    """Load a `.h5` or `.keras` model saved by keras_gans or by tf.keras 2 / Keras-GAN code.

    See :func:`keras_gans.saving.load_model`.
    """
    from keras_gans.saving import load_model as _load_model

    return _load_model(path, compile=compile, custom_objects=custom_objects)


__all__ = ["load_model", "__version__"]
