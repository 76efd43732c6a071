"""Conditional batch normalization with a per-sample gain and bias computed from a condition vector.

De Vries et al. 2017 and Dumoulin et al. 2017, in BigGAN's form (Brock, Donahue and Simonyan 2019,
arXiv:1809.11096, Sec. 3 and Appendix B; BigGAN-PyTorch ``layers.ccbn``): batch normalization
*without* its own affine parameters, then ``x * (1 + gain(c)) + bias(c)`` where ``gain`` and ``bias``
are bias-free linear maps of the condition ``c`` (the shared class embedding concatenated with a chunk
of z), spectrally normalised like every other linear map of the generator.

Statistics follow ``keras.layers.BatchNormalization``: batch statistics (and a moving-average update)
when called with ``training=True`` on a trainable layer, the moving averages otherwise.
"""

import keras
from keras import ops

from keras_gans.layers.spectral_norm import SpectralNorm


@keras.saving.register_keras_serializable(package="keras_gans")
class ConditionalBatchNormalization(keras.layers.Layer):
    """``BN(x) * (1 + gain(c)) + bias(c)``; call it on ``[x, c]`` with ``x`` channels-last.

    Args:
        momentum: moving-average momentum (Keras convention; PyTorch's 0.1 is Keras' 0.9).
        epsilon: added to the variance (BigGAN-PyTorch ``BN_eps``: 1e-5).
        spectral_norm: wrap ``gain`` and ``bias`` in :class:`SpectralNorm` (BigGAN does).
        sn_epsilon: :class:`SpectralNorm` ``epsilon``.
        kernel_initializer: initializer of the ``gain`` and ``bias`` kernels.
    """

    def __init__(
        self,
        momentum=0.9,
        epsilon=1e-5,
        spectral_norm=True,
        sn_epsilon=1e-6,
        kernel_initializer="orthogonal",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.spectral_norm = bool(spectral_norm)
        self.sn_epsilon = float(sn_epsilon)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def _linear(self, units, name):
        dense = keras.layers.Dense(
            units,
            use_bias=False,
            kernel_initializer=keras.initializers.get(
                keras.initializers.serialize(self.kernel_initializer)
            ),
            name=name,
        )
        return (
            SpectralNorm(dense, epsilon=self.sn_epsilon, name=f"sn_{name}")
            if self.spectral_norm
            else dense
        )

    def build(self, input_shape):
        x_shape, c_shape = input_shape
        channels = x_shape[-1]
        self.bn = keras.layers.BatchNormalization(
            momentum=self.momentum, epsilon=self.epsilon, center=False, scale=False, name="bn"
        )
        self.bn.build(x_shape)
        self.gain = self._linear(channels, "gain")
        self.gain.build(c_shape)
        self.bias = self._linear(channels, "bias")
        self.bias.build(c_shape)
        self.built = True

    def call(self, inputs, training=None):
        x, c = inputs
        normed = self.bn(x, training=training)
        shape = [-1] + [1] * (len(x.shape) - 2) + [x.shape[-1]]
        gain = 1.0 + ops.reshape(self.gain(c, training=training), shape)
        bias = ops.reshape(self.bias(c, training=training), shape)
        return normed * ops.cast(gain, normed.dtype) + ops.cast(bias, normed.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "momentum": self.momentum,
                "epsilon": self.epsilon,
                "spectral_norm": self.spectral_norm,
                "sn_epsilon": self.sn_epsilon,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            }
        )
        return config
