"""ProGAN's pixelwise feature vector normalization (Karras et al., ICLR 2018, Sec. 4.2, Eq. 2).

``b = a / sqrt(mean_j a_j^2 + eps)`` over the channels of each pixel, with no learned parameters;
the generator applies it after every convolution (and to z), so that G and D cannot escalate their
signal magnitudes against each other.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_gans")
class PixelNormalization(keras.layers.Layer):
    """Normalise each feature vector (the last axis) to unit mean square.

    Args:
        epsilon: added to the mean square (the paper's 1e-8).
    """

    def __init__(self, epsilon=1e-8, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)

    def call(self, inputs):
        mean_square = ops.mean(ops.square(inputs), axis=-1, keepdims=True)
        return inputs * ops.rsqrt(mean_square + self.epsilon)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config["epsilon"] = self.epsilon
        return config
