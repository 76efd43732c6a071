"""BigGAN's networks at 16 to 128 px: blocks, generator, discriminator (for keras_gans.biggan).

Brock, Donahue and Simonyan, "Large Scale GAN Training for High Fidelity Natural Image Synthesis",
ICLR 2019 (arXiv:1809.11096), Appendix B, as BigGAN-PyTorch (ajbrock, the authors' code) builds it:

* G: residual up-blocks with conditional BatchNorm (``BN(x) * (1 + W_g c) + W_b c``) whose
  condition ``c`` is the shared class embedding concatenated with a chunk of the hierarchical z;
* D: residual down-blocks, then the projection ``D(x, y) = w^T h + embed(y)^T h`` on ReLU'd,
  sum-pooled features (Miyato & Koyama 2018, Eq. 3);
* SAGAN self-attention (gamma = 0 at init) at 64x64 in both; spectral norm on every convolution and
  linear map and on D's class embedding; orthogonal initialisation.

Block widths are BigGAN-PyTorch's multiples of ``ch``; 16 to 64 px models take the first blocks of
the 128 px layout. Spectral norm is :class:`keras_gans.layers.SpectralNorm`, a reparametrisation
that never writes the kernel: ``keras.layers.SpectralNormalization`` rewrites a frozen D's kernels
during the G step.
"""

import keras
import numpy as np
from keras import layers

from keras_gans.errors import ConfigError
from keras_gans.layers import (
    ConditionalBatchNormalization,
    LatentSplit,
    SelfAttention,
    SpectralNorm,
)

# BigGAN-PyTorch's 128 px settings (not stated in the report, which gives 128 px; its repo: ch 64).
IMG_SIZE = 128
CH = 32
LATENT_DIM = 120  # hierarchical: 6 chunks of 20 at 128 px
SHARED_DIM = 128  # shared class embedding
NUM_CLASSES = 2
ATTENTION_RES = 64
BN_MOMENTUM = 0.9  # PyTorch momentum 0.1
BN_EPSILON = 1e-5
SN_EPSILON = 1e-6
# Block widths as multiples of ch (BigGAN-PyTorch G_arch / D_arch at 128 px).
G_WIDTHS = (16, 16, 8, 4, 2, 1)
D_WIDTHS = (1, 2, 4, 8, 16)


def n_blocks(img_size):
    """Up-blocks from 4x4 to ``img_size`` (5 at 128 px)."""
    if img_size not in (16, 32, 64, 128):
        raise ConfigError(f"--img-size must be 16, 32, 64 or 128, got {img_size}")
    return int(np.log2(img_size // 4))


# --- blocks -----------------------------------------------------------------------------------------
def sn_conv(filters, kernel_size, name):
    """A spectrally normalised, orthogonally initialised ``Conv2D`` ('same' padding)."""
    conv = layers.Conv2D(
        filters, kernel_size, padding="same", kernel_initializer="orthogonal", name="conv"
    )
    return SpectralNorm(conv, epsilon=SN_EPSILON, name=name)


def sn_dense(units, name):
    """A spectrally normalised, orthogonally initialised ``Dense``."""
    dense = layers.Dense(units, kernel_initializer="orthogonal", name="dense")
    return SpectralNorm(dense, epsilon=SN_EPSILON, name=name)


def g_block(x, cond, filters, name):
    """BigGAN GBlock: cBN -> ReLU -> up x2 -> conv3 -> cBN -> ReLU -> conv3, plus up x2 -> conv1."""
    cbn = dict(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, sn_epsilon=SN_EPSILON)
    h = ConditionalBatchNormalization(**cbn, name=f"{name}_cbn1")([x, cond])
    h = layers.ReLU(name=f"{name}_relu1")(h)
    h = layers.UpSampling2D(2, name=f"{name}_up")(h)
    h = sn_conv(filters, 3, f"{name}_conv1")(h)
    h = ConditionalBatchNormalization(**cbn, name=f"{name}_cbn2")([h, cond])
    h = layers.ReLU(name=f"{name}_relu2")(h)
    h = sn_conv(filters, 3, f"{name}_conv2")(h)
    shortcut = layers.UpSampling2D(2, name=f"{name}_sc_up")(x)
    shortcut = sn_conv(filters, 1, f"{name}_sc_conv")(shortcut)
    return layers.Add(name=f"{name}_add")([h, shortcut])


def d_block(x, filters, downsample, preactivation, name):
    """BigGAN DBlock: [ReLU] -> conv3 -> ReLU -> conv3 -> [avg-pool], plus a 1x1 shortcut.

    The first block (no pre-activation) pools its shortcut before the 1x1 conv, the others after
    (BigGAN-PyTorch ``DBlock.shortcut``).
    """
    h = layers.ReLU(name=f"{name}_relu0")(x) if preactivation else x
    h = sn_conv(filters, 3, f"{name}_conv1")(h)
    h = layers.ReLU(name=f"{name}_relu1")(h)
    h = sn_conv(filters, 3, f"{name}_conv2")(h)
    pool = lambda t, suffix: layers.AveragePooling2D(2, name=f"{name}_{suffix}")(t)
    if downsample:
        h = pool(h, "pool")
    shortcut = x
    if downsample and not preactivation:
        shortcut = pool(shortcut, "sc_pool")
    if downsample or x.shape[-1] != filters:
        shortcut = sn_conv(filters, 1, f"{name}_sc_conv")(shortcut)
    if downsample and preactivation:
        shortcut = pool(shortcut, "sc_pool")
    return layers.Add(name=f"{name}_add")([h, shortcut])


# --- networks ---------------------------------------------------------------------------------------
def build_generator(
    img_size=IMG_SIZE,
    ch=CH,
    latent_dim=LATENT_DIM,
    num_classes=NUM_CLASSES,
    shared_dim=SHARED_DIM,
    attention_res=ATTENTION_RES,
    name="g",
):
    """G([z, class]) -> image in [-1, 1]: linear to 4x4, up-blocks, BN -> ReLU -> conv3 -> tanh."""
    n = n_blocks(img_size)
    if latent_dim % (n + 1):
        raise ConfigError(
            f"--latent-dim {latent_dim} must split into {n + 1} equal chunks at {img_size} px"
        )
    widths = [ch * m for m in G_WIDTHS[: n + 1]]
    z = keras.Input((latent_dim,), name=f"{name}_z")
    y = keras.Input((), dtype="int32", name=f"{name}_class")
    chunks = LatentSplit(n + 1, name=f"{name}_z_split")(z)  # hierarchical z (paper Sec. 3)
    # The shared class embedding is not spectrally normalised (BigGAN-PyTorch).
    shared = layers.Embedding(
        num_classes, shared_dim, embeddings_initializer="orthogonal", name=f"{name}_shared"
    )(y)
    h = sn_dense(4 * 4 * widths[0], f"{name}_linear")(chunks[0])
    h = layers.Reshape((4, 4, widths[0]), name=f"{name}_reshape")(h)
    for i in range(n):
        cond = layers.Concatenate(name=f"{name}_cond{i + 1}")([shared, chunks[i + 1]])
        h = g_block(h, cond, widths[i + 1], f"{name}_block{i + 1}")
        if 8 * 2**i == attention_res:
            h = SelfAttention(sn_epsilon=SN_EPSILON, name=f"{name}_attention")(h)
    bn = dict(momentum=BN_MOMENTUM, epsilon=BN_EPSILON)
    h = layers.BatchNormalization(**bn, name=f"{name}_out_bn")(h)
    h = layers.ReLU(name=f"{name}_out_relu")(h)
    h = sn_conv(3, 3, f"{name}_out_conv")(h)
    img = layers.Activation("tanh", dtype="float32", name=f"{name}_tanh")(h)
    return keras.Model([z, y], img, name=name)


def build_discriminator(
    img_size=IMG_SIZE, ch=CH, num_classes=NUM_CLASSES, attention_res=ATTENTION_RES, name="d"
):
    """D([image, class]) -> score: down-blocks, ReLU, global sum pool, linear + class projection."""
    n = n_blocks(img_size)
    widths = [ch * m for m in D_WIDTHS[:n]] + [ch * D_WIDTHS[-1]]
    img = keras.Input((img_size, img_size, 3), name=f"{name}_image")
    y = keras.Input((), dtype="int32", name=f"{name}_class")
    h, res = img, img_size
    for i, filters in enumerate(widths):
        h = d_block(h, filters, i < n, preactivation=i > 0, name=f"{name}_block{i + 1}")
        if i < n:
            res //= 2
            if res == attention_res:
                h = SelfAttention(sn_epsilon=SN_EPSILON, name=f"{name}_attention")(h)
    h = layers.ReLU(name=f"{name}_relu")(h)
    h = layers.GlobalAveragePooling2D(name=f"{name}_pool")(h)
    h = layers.Rescaling(float(res * res), name=f"{name}_sum")(h)  # global sum pooling
    out = sn_dense(1, f"{name}_linear")(h)
    embed = layers.Embedding(
        num_classes, widths[-1], embeddings_initializer="orthogonal", name="embedding"
    )
    embed = SpectralNorm(embed, epsilon=SN_EPSILON, name=f"{name}_embed")(y)
    projection = layers.Dot(axes=1, name=f"{name}_projection")([embed, h])  # Miyato & Koyama Eq. 3
    score = layers.Add(dtype="float32", name=f"{name}_score")([out, projection])
    return keras.Model([img, y], score, name=name)


def build_combined(g, d, latent_dim):
    """z, class -> G -> D -> score, for the G step (D frozen there)."""
    z = keras.Input((latent_dim,), name="z")
    y = keras.Input((), dtype="int32", name="class")
    score = layers.Identity(dtype="float32", name="score")(d([g([z, y]), y]))
    return keras.Model([z, y], score, name="combined")
