"""Spectral normalization as a reparametrization: the layer computes with ``W / sigma(W)``.

Miyato, Kataoka, Koyama and Yoshida, "Spectral Normalization for Generative Adversarial Networks",
ICLR 2018 (arXiv:1802.05957), Eq. 8 and Algorithm 1, as BigGAN-PyTorch's ``SN`` mixin applies it:
``sigma`` is estimated by power iteration from a stored vector ``u``; the gradient flows through
``W / sigma(W)`` (``u`` and ``v`` are constants for it); ``u`` is updated only in training.

Why not ``keras.layers.SpectralNormalization``: in training mode it *overwrites the wrapped kernel*
with ``W / sigma`` on every call, whether or not the layer is trainable. Inside a combined model
whose discriminator is frozen, the generator step therefore still rewrites the discriminator's
kernels and ``u`` (checked on Keras 3.15.1), so "the G step leaves D unchanged" cannot hold, and the
gradient skips the ``1 / sigma(W)`` term. This wrapper never writes the kernel: the optimizer is the
only thing that changes it. ``u`` is updated only when the call is in training mode *and* the layer
is trainable (the rule Keras applies to ``BatchNormalization``), so a frozen discriminator is left
exactly as it was.
"""

import keras
from keras import ops


def _l2_normalize(x, epsilon):
    return x / ops.maximum(ops.sqrt(ops.sum(ops.square(x))), epsilon)


@keras.saving.register_keras_serializable(package="keras_gans")
class SpectralNorm(keras.layers.Wrapper):
    """Wrap a layer with a ``kernel`` (Dense, Conv*) or ``embeddings`` (Embedding) so it uses W/sigma.

    Args:
        layer: the layer to wrap; its own weights stay the unnormalised ``W``.
        power_iterations: power-iteration steps per call (BigGAN: 1).
        epsilon: floor of the norms in the power iteration (BigGAN-PyTorch's ``SN_eps``).
    """

    def __init__(self, layer, power_iterations=1, epsilon=1e-6, **kwargs):
        kwargs.pop("autocast", None)
        # sigma is estimated in the variable dtype (float32) even under mixed precision.
        super().__init__(layer, autocast=False, **kwargs)
        if power_iterations < 1:
            raise ValueError(f"power_iterations must be >= 1, got {power_iterations}")
        self.power_iterations = int(power_iterations)
        self.epsilon = float(epsilon)

    @property
    def weight(self):
        """The wrapped layer's unnormalised variable (``kernel`` or ``embeddings``)."""
        if hasattr(self.layer, "kernel"):
            return self.layer.kernel
        if hasattr(self.layer, "embeddings"):
            return self.layer.embeddings
        raise ValueError(f"{type(self.layer).__name__} has neither a 'kernel' nor 'embeddings'")

    def build(self, input_shape):
        if not self.layer.built:
            self.layer.build(input_shape)
        units = self.weight.shape[-1]
        self.vector_u = self.add_weight(
            shape=(1, units),
            initializer=keras.initializers.RandomNormal(stddev=1.0),
            trainable=False,
            aggregation="mean",  # every replica computes the same u from the same W
            name="vector_u",
        )
        self.built = True

    def sigma(self, w=None, update=False):
        """The power-iteration estimate of the largest singular value of ``W`` (reshaped to 2-D).

        With ``update`` the refined ``u`` is stored for the next call.
        """
        w = ops.convert_to_tensor(self.weight) if w is None else w
        w_mat = ops.reshape(w, (-1, w.shape[-1]))
        u = _l2_normalize(ops.convert_to_tensor(self.vector_u), self.epsilon)
        for _ in range(self.power_iterations):
            v = _l2_normalize(ops.matmul(u, ops.transpose(w_mat)), self.epsilon)
            u = _l2_normalize(ops.matmul(v, w_mat), self.epsilon)
        u, v = ops.stop_gradient(u), ops.stop_gradient(v)
        if update:
            self.vector_u.assign(u)
        return ops.sum(ops.matmul(v, w_mat) * u)  # sigma = v^T W u, paper Algorithm 1

    def normalized_weight(self):
        """``W / sigma(W)`` from the stored ``u`` (no update)."""
        w = ops.convert_to_tensor(self.weight)
        return w / self.sigma(w)

    def call(self, inputs, training=None):
        w = ops.convert_to_tensor(self.weight)
        w_sn = w / self.sigma(w, update=bool(training) and self.trainable)  # paper Eq. 8
        # The wrapped layer reads W/sigma for this call only; its variable is never assigned.
        with keras.StatelessScope(state_mapping=[(self.weight, w_sn)]):
            return self.layer(inputs)

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update({"power_iterations": self.power_iterations, "epsilon": self.epsilon})
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        # keras.layers.Wrapper.from_config pops "layer" from the caller's dict; work on a copy.
        return super().from_config(dict(config), custom_objects=custom_objects)
