"""Custom Keras layers of keras_gans; every one is registered for `.h5` and `.keras` saving."""

from keras_gans.layers.instance_normalization import InstanceNormalization, instance_norm_for

__all__ = ["InstanceNormalization", "instance_norm_for"]
