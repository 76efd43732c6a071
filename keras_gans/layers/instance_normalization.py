"""Instance normalization with the two meanings found in CycleGAN code.

* ``axis=None`` is keras-contrib's layer, which Keras-GAN (and so the report) used: each sample is
  normalised over H, W and C together, with one scalar ``gamma`` and ``beta``, and ``epsilon`` is added
  to the standard deviation: ``(x - mean) / (std + eps)``.
* ``axis=-1`` is per-channel instance norm as in Ulyanov et al. (2016), the CycleGAN paper and
  tensorflow-addons: statistics over H and W per channel, ``gamma`` and ``beta`` per channel. With
  ``epsilon_mode="variance"`` it computes ``(x - mean) / sqrt(var + eps)`` exactly like tensorflow-addons
  (``Addons>InstanceNormalization``); with ``"std"`` it is keras-contrib's layer built with ``axis=-1``.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_gans")
class InstanceNormalization(keras.layers.Layer):
    """Per-sample normalization; see the module docstring for ``axis`` and ``epsilon_mode``.

    Args:
        axis: ``None`` (statistics over every non-batch axis, scalar affine parameters) or the
            channel axis (statistics over the other non-batch axes, one parameter per channel).
        epsilon: added to the standard deviation (``"std"``) or to the variance (``"variance"``).
        epsilon_mode: ``"std"`` (keras-contrib) or ``"variance"`` (tensorflow-addons, PyTorch).
        center, scale: learn ``beta`` / ``gamma``.
    """

    def __init__(
        self,
        axis=None,
        epsilon=1e-3,
        epsilon_mode="std",
        center=True,
        scale=True,
        beta_initializer="zeros",
        gamma_initializer="ones",
        beta_regularizer=None,
        gamma_regularizer=None,
        beta_constraint=None,
        gamma_constraint=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if epsilon_mode not in ("std", "variance"):
            raise ValueError(f"epsilon_mode must be 'std' or 'variance', got {epsilon_mode!r}")
        self.axis = axis
        self.epsilon = epsilon
        self.epsilon_mode = epsilon_mode
        self.center = center
        self.scale = scale
        self.beta_initializer = keras.initializers.get(beta_initializer)
        self.gamma_initializer = keras.initializers.get(gamma_initializer)
        self.beta_regularizer = keras.regularizers.get(beta_regularizer)
        self.gamma_regularizer = keras.regularizers.get(gamma_regularizer)
        self.beta_constraint = keras.constraints.get(beta_constraint)
        self.gamma_constraint = keras.constraints.get(gamma_constraint)
        self.supports_masking = True

    def build(self, input_shape):
        ndim = len(input_shape)
        if self.axis == 0:
            raise ValueError("InstanceNormalization cannot normalise over the batch axis (axis=0).")
        if self.axis is None:
            shape = (1,)
        else:
            dim = input_shape[self.axis]
            if dim is None:
                raise ValueError(f"axis {self.axis} of input shape {input_shape} must be defined.")
            shape = (dim,)
        self._ndim = ndim
        self.gamma = (
            self.add_weight(
                shape=shape,
                name="gamma",
                initializer=self.gamma_initializer,
                regularizer=self.gamma_regularizer,
                constraint=self.gamma_constraint,
            )
            if self.scale
            else None
        )
        self.beta = (
            self.add_weight(
                shape=shape,
                name="beta",
                initializer=self.beta_initializer,
                regularizer=self.beta_regularizer,
                constraint=self.beta_constraint,
            )
            if self.center
            else None
        )

    def call(self, inputs):
        ndim = len(inputs.shape)
        axes = list(range(1, ndim))
        broadcast = [1] * ndim
        if self.axis is not None:
            axis = self.axis % ndim
            axes.remove(axis)
            broadcast[axis] = inputs.shape[axis]
        x = ops.cast(inputs, self.compute_dtype)
        mean = ops.mean(x, axis=axes, keepdims=True)
        variance = ops.var(x, axis=axes, keepdims=True)
        if self.epsilon_mode == "std":
            normed = (x - mean) / (ops.sqrt(variance) + self.epsilon)
        else:
            normed = (x - mean) * ops.rsqrt(variance + self.epsilon)
        if self.scale:
            normed = normed * ops.reshape(ops.cast(self.gamma, normed.dtype), broadcast)
        if self.center:
            normed = normed + ops.reshape(ops.cast(self.beta, normed.dtype), broadcast)
        return normed

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "axis": self.axis,
                "epsilon": self.epsilon,
                "epsilon_mode": self.epsilon_mode,
                "center": self.center,
                "scale": self.scale,
                "beta_initializer": keras.initializers.serialize(self.beta_initializer),
                "gamma_initializer": keras.initializers.serialize(self.gamma_initializer),
                "beta_regularizer": keras.regularizers.serialize(self.beta_regularizer),
                "gamma_regularizer": keras.regularizers.serialize(self.gamma_regularizer),
                "beta_constraint": keras.constraints.serialize(self.beta_constraint),
                "gamma_constraint": keras.constraints.serialize(self.gamma_constraint),
            }
        )
        return config


def instance_norm_for(norm, name=None):
    """The normalisation layer for a ``norm=`` option: ``"contrib"`` (the report) or ``"instance"``."""
    if norm == "contrib":
        return InstanceNormalization(axis=None, epsilon=1e-3, epsilon_mode="std", name=name)
    if norm == "instance":
        return InstanceNormalization(axis=-1, epsilon=1e-3, epsilon_mode="variance", name=name)
    raise ValueError(
        f"norm must be 'contrib' (the report, keras-contrib) or 'instance', got {norm!r}"
    )
