"""SAGAN self-attention as BigGAN uses it (Zhang et al. 2019, arXiv:1805.08318, Sec. 3).

BigGAN-PyTorch ``layers.Attention``: 1x1 convolutions ``theta`` and ``phi`` to C/8 channels, ``g`` to
C/2, ``phi`` and ``g`` max-pooled by 2 (a quarter of the keys), ``beta = softmax(theta^T phi)``
(SAGAN Eq. 1), ``o`` maps the attended ``g`` back to C channels, and the output is
``x + gamma * o`` with a learned scalar ``gamma`` initialised to 0 (SAGAN Eq. 3), so the block starts
as the identity. All four convolutions are bias-free and spectrally normalised.
"""

import keras
from keras import ops

from keras_gans.layers.spectral_norm import SpectralNorm


@keras.saving.register_keras_serializable(package="keras_gans")
class SelfAttention(keras.layers.Layer):
    """Non-local self-attention over the H x W positions of a channels-last feature map.

    Height and width must be even (keys and values are max-pooled by 2).

    Args:
        spectral_norm: wrap the four 1x1 convolutions in :class:`SpectralNorm` (BigGAN does).
        sn_epsilon: :class:`SpectralNorm` ``epsilon``.
        kernel_initializer: initializer of the convolution kernels.
    """

    def __init__(
        self, spectral_norm=True, sn_epsilon=1e-6, kernel_initializer="orthogonal", **kwargs
    ):
        super().__init__(**kwargs)
        self.spectral_norm = bool(spectral_norm)
        self.sn_epsilon = float(sn_epsilon)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def _conv(self, filters, name):
        conv = keras.layers.Conv2D(
            filters,
            1,
            use_bias=False,
            kernel_initializer=keras.initializers.get(
                keras.initializers.serialize(self.kernel_initializer)
            ),
            name=name,
        )
        return (
            SpectralNorm(conv, epsilon=self.sn_epsilon, name=f"sn_{name}")
            if self.spectral_norm
            else conv
        )

    def build(self, input_shape):
        channels = input_shape[-1]
        self.channels = channels
        self.theta = self._conv(max(1, channels // 8), "theta")
        self.phi = self._conv(max(1, channels // 8), "phi")
        self.g = self._conv(max(1, channels // 2), "g")
        self.o = self._conv(channels, "o")
        for conv in (self.theta, self.phi, self.g):
            conv.build(input_shape)
        self.o.build((*input_shape[:-1], max(1, channels // 2)))
        self.gamma = self.add_weight(shape=(), initializer="zeros", name="gamma")
        self.built = True

    def call(self, x, training=None):
        h, w = x.shape[1], x.shape[2]
        theta = self.theta(x, training=training)
        phi = ops.max_pool(self.phi(x, training=training), 2, 2)
        g = ops.max_pool(self.g(x, training=training), 2, 2)
        theta = ops.reshape(theta, (-1, h * w, theta.shape[-1]))
        phi = ops.reshape(phi, (-1, (h // 2) * (w // 2), phi.shape[-1]))
        g = ops.reshape(g, (-1, (h // 2) * (w // 2), g.shape[-1]))
        beta = ops.softmax(ops.matmul(theta, ops.transpose(phi, (0, 2, 1))), axis=-1)  # SAGAN Eq. 1
        o = ops.reshape(ops.matmul(beta, g), (-1, h, w, g.shape[-1]))
        o = self.o(o, training=training)
        return x + ops.cast(self.gamma, o.dtype) * o  # SAGAN Eq. 3, gamma starts at 0

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "spectral_norm": self.spectral_norm,
                "sn_epsilon": self.sn_epsilon,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            }
        )
        return config
