"""Custom Keras layers of keras_gans; every one is registered for `.h5` and `.keras` saving."""

from keras_gans.layers.instance_normalization import InstanceNormalization, instance_norm_for

__all__ = ["InstanceNormalization", "instance_norm_for"]

# BigGAN (keras_gans.biggan)
from keras_gans.layers.conditional_batch_normalization import ConditionalBatchNormalization  # noqa: E402
from keras_gans.layers.latent_split import LatentSplit  # noqa: E402
from keras_gans.layers.self_attention import SelfAttention  # noqa: E402
from keras_gans.layers.spectral_norm import SpectralNorm  # noqa: E402

__all__ += ["ConditionalBatchNormalization", "LatentSplit", "SelfAttention", "SpectralNorm"]

# ProGAN (keras_gans.progan)
from keras_gans.layers.equalized_conv2d import EqualizedConv2D  # noqa: E402
from keras_gans.layers.equalized_dense import EqualizedDense  # noqa: E402
from keras_gans.layers.fade_in import FadeIn  # noqa: E402
from keras_gans.layers.minibatch_stddev import MinibatchStdDev  # noqa: E402
from keras_gans.layers.pixel_normalization import PixelNormalization  # noqa: E402

__all__ += ["EqualizedConv2D", "EqualizedDense", "FadeIn", "MinibatchStdDev", "PixelNormalization"]

# SGAN (keras_gans.sgan)
from keras_gans.layers.weight_norm_dense import WeightNormDense  # noqa: E402

__all__ += ["WeightNormDense"]
