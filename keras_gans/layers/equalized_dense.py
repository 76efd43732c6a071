"""A fully connected layer with ProGAN's equalized learning rate (Karras et al., ICLR 2018, Sec. 4.1).

As :class:`keras_gans.layers.EqualizedConv2D`: an N(0, 1) kernel scaled at run time by
``gain / sqrt(fan_in)``, biases from 0.
"""

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_gans")
class EqualizedDense(keras.layers.Layer):
    """``Dense`` on the last axis whose N(0, 1) kernel is scaled by ``gain / sqrt(fan_in)``.

    Args:
        units: output features.
        gain: ``sqrt(2)`` before a leaky ReLU (He); ProGAN's G input layer uses ``sqrt(2) / 4``
            and D's output layer 1.
        use_bias: add a bias (initialised to 0).
    """

    def __init__(self, units, gain=math.sqrt(2.0), use_bias=True, **kwargs):
        super().__init__(**kwargs)
        if units < 1:
            raise ValueError(f"units must be >= 1, got {units}")
        self.units, self.gain, self.use_bias = int(units), float(gain), bool(use_bias)

    def build(self, input_shape):
        fan_in = input_shape[-1]
        normal = keras.initializers.RandomNormal(0.0, 1.0)
        self.kernel = self.add_weight(name="kernel", shape=(fan_in, self.units), initializer=normal)
        if self.use_bias:
            self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros")
        self.scale = self.gain / math.sqrt(fan_in)
        self.built = True

    def call(self, inputs):
        x = ops.matmul(inputs, self.kernel * self.scale)
        return x + self.bias if self.use_bias else x

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units, gain=self.gain, use_bias=self.use_bias)
        return config
