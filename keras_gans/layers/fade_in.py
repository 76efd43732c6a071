"""ProGAN's fade-in of a new resolution (Karras et al., ICLR 2018, Sec. 3 and Fig. 2).

While a new block fades in, the network's output (G) or the features after the new block (D) are
``(1 - alpha) * old + alpha * new``, ``old`` the previous resolution's path, with ``alpha`` rising
linearly from 0 to 1. ``alpha`` is a non-trainable weight, so a saved mid-fade model keeps it and a
checkpoint restores it.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_gans")
class FadeIn(keras.layers.Layer):
    """``[old, new]`` -> ``old + alpha * (new - old)``; set ``alpha`` with ``layer.alpha.assign``."""

    def build(self, input_shape):
        self.alpha = self.add_weight(name="alpha", shape=(), initializer="zeros", trainable=False)
        self.built = True

    def call(self, inputs):
        old, new = inputs
        return old + ops.cast(self.alpha, old.dtype) * (new - old)

    def compute_output_shape(self, input_shape):
        return input_shape[1]
