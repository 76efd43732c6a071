"""A convolution with ProGAN's equalized learning rate (Karras et al., ICLR 2018, Sec. 4.1).

The kernel is initialised from N(0, 1) and multiplied at run time by He's constant
``c = gain / sqrt(fan_in)``, so Adam's per-parameter step is the same for every layer, whatever its
fan-in (the official code's ``use_wscale``). Biases start at 0.
"""

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_gans")
class EqualizedConv2D(keras.layers.Layer):
    """``Conv2D`` ('same' padding, stride 1) whose N(0, 1) kernel is scaled by ``gain / sqrt(fan_in)``.

    Args:
        filters: output channels.
        kernel_size: the square kernel's side (odd).
        gain: ``sqrt(2)`` before a leaky ReLU (He); 1 for ProGAN's linear toRGB layers.
        use_bias: add a bias (initialised to 0).
    """

    def __init__(self, filters, kernel_size, gain=math.sqrt(2.0), use_bias=True, **kwargs):
        super().__init__(**kwargs)
        if filters < 1 or kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"filters >= 1 and an odd kernel_size, got {filters}, {kernel_size}")
        self.filters, self.kernel_size = int(filters), int(kernel_size)
        self.gain, self.use_bias = float(gain), bool(use_bias)

    def build(self, input_shape):
        channels = input_shape[-1]
        shape = (self.kernel_size, self.kernel_size, channels, self.filters)
        normal = keras.initializers.RandomNormal(0.0, 1.0)
        self.kernel = self.add_weight(name="kernel", shape=shape, initializer=normal)
        if self.use_bias:
            self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")
        self.scale = self.gain / math.sqrt(self.kernel_size * self.kernel_size * channels)
        self.built = True

    def call(self, inputs):
        x = ops.conv(inputs, self.kernel * self.scale, strides=1, padding="same")
        return x + self.bias if self.use_bias else x

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters,
            kernel_size=self.kernel_size,
            gain=self.gain,
            use_bias=self.use_bias,
        )
        return config
