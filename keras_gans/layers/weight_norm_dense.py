"""A fully connected layer with weight normalization (Salimans and Kingma, arXiv:1602.07868, 2016).

``y = act(g * (x @ v) / ||v|| + b)``, each output unit's direction ``v`` (the ``kernel`` column)
normalised to unit length and its length ``g`` learned apart (Eq. 2). :meth:`WeightNormDense.
data_init` is the paper's data-dependent initialisation (Sec. 3): on a batch, ``g`` and ``b`` are set
so that every unit's pre-activation has mean 0 and standard deviation ``init_scale``. Salimans et
al.'s SGAN (arXiv:1606.03498, code ``nn.DenseLayer``) builds its MNIST discriminator of such layers.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_gans")
class WeightNormDense(keras.layers.Layer):
    """``Dense`` on the last axis with the kernel's columns normalised and scaled by ``g``.

    Args:
        units: output features.
        activation: applied after ``g * x @ (v / ||v||) + b``.
        kernel_initializer: the directions ``v`` (default N(0, 0.05), as Salimans' ``WeightNormLayer``;
            their MNIST ``DenseLayer`` draws N(0, 0.1)).
        epsilon: floor of ``||v||``.
    """

    def __init__(self, units, activation=None, kernel_initializer=None, epsilon=1e-8, **kwargs):
        super().__init__(**kwargs)
        if units < 1:
            raise ValueError(f"units must be >= 1, got {units}")
        self.units, self.epsilon = int(units), float(epsilon)
        self.activation = keras.activations.get(activation)
        init = kernel_initializer or keras.initializers.RandomNormal(0.0, 0.05)
        self.kernel_initializer = keras.initializers.get(init)

    def build(self, input_shape):
        shape = (input_shape[-1], self.units)
        self.kernel = self.add_weight(
            name="kernel", shape=shape, initializer=self.kernel_initializer
        )
        self.scale = self.add_weight(name="scale", shape=(self.units,), initializer="ones")
        self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros")
        self.built = True

    def direction(self):
        """``v / ||v||``, column by column."""
        norm = ops.sqrt(ops.sum(ops.square(self.kernel), axis=0, keepdims=True))
        return self.kernel / ops.maximum(norm, self.epsilon)

    def call(self, inputs):
        x = ops.matmul(inputs, ops.cast(self.direction(), inputs.dtype))
        return self.activation(x * ops.cast(self.scale, x.dtype) + ops.cast(self.bias, x.dtype))

    def data_init(self, inputs, init_scale=1.0):
        """Set ``g`` and ``b`` so the pre-activations of ``inputs`` have mean 0 and std
        ``init_scale`` per unit (Salimans and Kingma Sec. 3); returns the layer's outputs then."""
        t = ops.matmul(ops.cast(inputs, "float32"), self.direction())
        mean, std = ops.mean(t, axis=0), ops.std(t, axis=0)
        g = init_scale / ops.maximum(std, self.epsilon)
        self.scale.assign(g)
        self.bias.assign(-mean * g)
        return self(inputs)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self):
        config = super().get_config()
        config.update(
            units=self.units,
            activation=keras.activations.serialize(self.activation),
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            epsilon=self.epsilon,
        )
        return config
