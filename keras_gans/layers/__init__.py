"""Custom Keras layers of keras_gans; every one is registered for `.h5` and `.keras` saving."""

from keras_gans.layers.instance_normalization import InstanceNormalization, instance_norm_for

__all__ = ["InstanceNormalization", "instance_norm_for"]

# BigGAN (keras_gans.biggan)
from keras_gans.layers.conditional_batch_normalization import ConditionalBatchNormalization  # noqa: E402
from keras_gans.layers.latent_split import LatentSplit  # noqa: E402
from keras_gans.layers.self_attention import SelfAttention  # noqa: E402
from keras_gans.layers.spectral_norm import SpectralNorm  # noqa: E402

__all__ += ["ConditionalBatchNormalization", "LatentSplit", "SelfAttention", "SpectralNorm"]
