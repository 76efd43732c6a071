"""ProGAN's networks, grown from 4x4 to the image size, and its critic update (for keras_gans.progan).

Karras, Aila, Laine and Lehtinen, "Progressive Growing of GANs for Improved Quality, Stability, and
Variation", ICLR 2018 (arXiv:1710.10196), Table 2 and Appendix A.1, as the official code builds it
(tkarras/progressive_growing_of_gans ``networks.py``, ``G_paper`` / ``D_paper``):

* G: pixel-normalised z -> dense to 4x4 -> conv3x3, then per resolution nearest-neighbour up x2 ->
  conv3x3 -> conv3x3, each conv followed by leaky ReLU(0.2) and pixel normalization; a linear 1x1
  "toRGB" per resolution (no tanh);
* D: a 1x1 "fromRGB" + leaky ReLU per resolution, per resolution conv3x3 -> conv3x3 -> average
  pool, then minibatch stddev -> conv3x3 -> dense (the paper's 4x4 conv) -> dense to one score;
* every weight layer has the equalized learning rate (:class:`keras_gans.layers.EqualizedConv2D`,
  :class:`~keras_gans.layers.EqualizedDense`); widths ``min(2 * fmap_base / res, fmap_max)``
  (512 up to 32 px, 256 at 64, 128 at 128 with the paper's 8192 / 512).

Each layer that holds weights is made once, in a *bank* (``{name: layer}``, every resolution,
built), and a *phase* model (:func:`build_generator`, :func:`build_discriminator`) is a functional
model at one resolution over those shared layers: a new phase keeps every trained weight because
it is the same layer. A fading phase adds the previous resolution's toRGB / fromRGB and a
:class:`~keras_gans.layers.FadeIn`; a stable phase holds only the layers it uses. :class:`Critic`
is D's WGAN-GP update as one compiled model (the penalty needs D's gradient at mixed images, so it
lives in the loss). Deviations: the separate up-sample / pool and conv (the official code fuses
them at 128 px and above, an equivalent speed-up) and a bias per unit of G's first dense layer (the
official code: per channel).
"""

import math

import keras
import tensorflow as tf
from keras import layers, ops

from keras_gans.errors import ConfigError
from keras_gans.layers import (
    EqualizedConv2D,
    EqualizedDense,
    FadeIn,
    MinibatchStdDev,
    PixelNormalization,
)
from keras_gans.losses import least_squares

# The paper's settings (Appendix A.1; the official config.py and networks.py).
IMG_SIZE = 128
LATENT_DIM = 512
FMAP_BASE = 8192
FMAP_MAX = 512
MBSTD_GROUP = 4
LRELU_SLOPE = 0.2
GP_WEIGHT = 10.0  # WGAN-GP's lambda
DRIFT = 0.001  # epsilon_drift


def resolutions(img_size):
    """4, 8, ..., ``img_size`` (a power of two >= 8)."""
    if img_size < 8 or img_size & (img_size - 1):
        raise ConfigError(f"--img-size must be a power of two >= 8, got {img_size}")
    return [4 * 2**i for i in range(int(math.log2(img_size)) - 1)]


def phases(img_size):
    """``[(resolution, fading)]``: 4x4 stable, then a fade-in and a stable phase per resolution."""
    out = [(4, False)]
    for res in resolutions(img_size)[1:]:
        out += [(res, True), (res, False)]
    return out


def channels(res, fmap_base=FMAP_BASE, fmap_max=FMAP_MAX):
    """Feature maps at resolution ``res`` (the official ``nf(log2(res) - 1)``)."""
    return max(1, min(2 * fmap_base // res, fmap_max))


# --- banks: every weight layer, built ---------------------------------------------------------------
def _built(layer, shape):
    layer.build(shape)
    return layer


def generator_bank(
    img_size, latent_dim=LATENT_DIM, fmap_base=FMAP_BASE, fmap_max=FMAP_MAX, name="g"
):
    """G's weight layers for every resolution, by name (``{name}_{r}x{r}_conv1``, ``_torgb`` ...)."""
    nf = lambda r: channels(r, fmap_base, fmap_max)
    # gain sqrt(2) / 4 "to match the original Theano implementation" (official networks.py).
    bank = [
        _built(
            EqualizedDense(16 * nf(4), gain=math.sqrt(2) / 4, name=f"{name}_4x4_dense"),
            (None, latent_dim),
        ),
        _built(EqualizedConv2D(nf(4), 3, name=f"{name}_4x4_conv"), (None, 4, 4, nf(4))),
    ]
    for r in resolutions(img_size)[1:]:
        bank.append(
            _built(
                EqualizedConv2D(nf(r), 3, name=f"{name}_{r}x{r}_conv1"), (None, r, r, nf(r // 2))
            )
        )
        bank.append(
            _built(EqualizedConv2D(nf(r), 3, name=f"{name}_{r}x{r}_conv2"), (None, r, r, nf(r)))
        )
    for r in resolutions(img_size):
        torgb = EqualizedConv2D(3, 1, gain=1.0, name=f"{name}_{r}x{r}_torgb")
        bank.append(_built(torgb, (None, r, r, nf(r))))
    return {layer.name: layer for layer in bank}


def discriminator_bank(img_size, fmap_base=FMAP_BASE, fmap_max=FMAP_MAX, name="d"):
    """D's weight layers for every resolution, by name (``{name}_{r}x{r}_fromrgb`` ...)."""
    nf = lambda r: channels(r, fmap_base, fmap_max)
    bank = []
    for r in resolutions(img_size):
        bank.append(
            _built(EqualizedConv2D(nf(r), 1, name=f"{name}_{r}x{r}_fromrgb"), (None, r, r, 3))
        )
    for r in resolutions(img_size)[1:]:
        bank.append(
            _built(EqualizedConv2D(nf(r), 3, name=f"{name}_{r}x{r}_conv1"), (None, r, r, nf(r)))
        )
        bank.append(
            _built(
                EqualizedConv2D(nf(r // 2), 3, name=f"{name}_{r}x{r}_conv2"), (None, r, r, nf(r))
            )
        )
    bank += [
        _built(EqualizedConv2D(nf(4), 3, name=f"{name}_4x4_conv"), (None, 4, 4, nf(4) + 1)),
        _built(EqualizedDense(nf(2), name=f"{name}_4x4_dense"), (None, 16 * nf(4))),
        _built(EqualizedDense(1, gain=1.0, name=f"{name}_4x4_out"), (None, nf(2))),
    ]
    return {layer.name: layer for layer in bank}


def _lrelu(name):
    return layers.LeakyReLU(negative_slope=LRELU_SLOPE, name=name)


# --- phase models -------------------------------------------------------------------------------------
def build_generator(bank, res, fading=False, name="g"):
    """G at ``res`` over ``bank`` (:func:`generator_bank` with the same ``name``): z -> image.

    ``fading``: the output is ``FadeIn([up(toRGB_{res/2}(h_{res/2})), toRGB_res(h_res)])``.
    """
    latent_dim = bank[f"{name}_4x4_dense"].kernel.shape[0]
    nf4 = bank[f"{name}_4x4_conv"].filters
    z = keras.Input((latent_dim,), name=f"{name}_z")
    x = PixelNormalization(name=f"{name}_z_norm")(z)  # latents on the hypersphere (A.1)
    x = bank[f"{name}_4x4_dense"](x)
    x = layers.Reshape((4, 4, nf4), name=f"{name}_4x4_reshape")(x)
    x = PixelNormalization(name=f"{name}_4x4_norm0")(_lrelu(f"{name}_4x4_lrelu0")(x))
    x = bank[f"{name}_4x4_conv"](x)
    x = PixelNormalization(name=f"{name}_4x4_norm1")(_lrelu(f"{name}_4x4_lrelu1")(x))
    previous = None
    r = 4
    while r < res:
        previous, r = x, r * 2
        x = layers.UpSampling2D(2, name=f"{name}_{r}x{r}_up")(x)
        for i in (1, 2):
            x = bank[f"{name}_{r}x{r}_conv{i}"](x)
            x = _lrelu(f"{name}_{r}x{r}_lrelu{i}")(x)
            x = PixelNormalization(name=f"{name}_{r}x{r}_norm{i}")(x)
    img = bank[f"{name}_{res}x{res}_torgb"](x)
    if fading:
        half = res // 2
        old = bank[f"{name}_{half}x{half}_torgb"](previous)
        old = layers.UpSampling2D(2, name=f"{name}_{res}x{res}_old_up")(old)
        img = FadeIn(name=f"{name}_{res}x{res}_fade")([old, img])
    img = layers.Activation("linear", dtype="float32", name=f"{name}_image")(img)
    return keras.Model(z, img, name=name)


def _d_block(bank, x, r, name):
    for i in (1, 2):
        x = _lrelu(f"{name}_{r}x{r}_lrelu{i}")(bank[f"{name}_{r}x{r}_conv{i}"](x))
    return layers.AveragePooling2D(2, name=f"{name}_{r}x{r}_pool")(x)


def build_discriminator(bank, res, fading=False, group_size=MBSTD_GROUP, name="d"):
    """D at ``res`` over ``bank`` (:func:`discriminator_bank` with the same ``name``): image -> score.

    ``fading``: after the new block, ``FadeIn([fromRGB_{res/2}(pool(image)), block_res(...)])``.
    """
    img = keras.Input((res, res, 3), name=f"{name}_image")
    x = _lrelu(f"{name}_{res}x{res}_lrelu0")(bank[f"{name}_{res}x{res}_fromrgb"](img))
    r = res
    while r > 4:
        x = _d_block(bank, x, r, name)
        if fading and r == res:
            half = res // 2
            down = layers.AveragePooling2D(2, name=f"{name}_{res}x{res}_old_pool")(img)
            old = bank[f"{name}_{half}x{half}_fromrgb"](down)
            old = _lrelu(f"{name}_{half}x{half}_lrelu0")(old)
            x = FadeIn(name=f"{name}_{res}x{res}_fade")([old, x])
        r //= 2
    x = MinibatchStdDev(group_size, name=f"{name}_4x4_mbstd")(x)
    x = _lrelu(f"{name}_4x4_lrelu1")(bank[f"{name}_4x4_conv"](x))
    x = layers.Flatten(name=f"{name}_4x4_flatten")(x)
    x = _lrelu(f"{name}_4x4_lrelu2")(bank[f"{name}_4x4_dense"](x))
    score = bank[f"{name}_4x4_out"](x)
    score = layers.Activation("linear", dtype="float32", name=f"{name}_score")(score)
    return keras.Model(img, score, name=name)


def build_combined(g, d, latent_dim):
    """z -> G -> D -> score, for the G step (D frozen there)."""
    z = keras.Input((latent_dim,), name="z")
    score = layers.Identity(dtype="float32", name="score")(d(g(z)))
    return keras.Model(z, score, name="combined")


class Critic(keras.Model):
    """D's update as one compiled model: ``x = [real, fake, mix]``; the loss holds the WGAN-GP terms.

    ``call`` gives ``[D(real); D(fake)]`` (two passes, so minibatch stddev sees one kind per batch,
    as the official code); the penalty is on ``real + mix * (fake - real)``. ``y`` is unused.
    """

    def __init__(self, d, loss="wgan-gp", gp_weight=GP_WEIGHT, drift=DRIFT, **kwargs):
        super().__init__(**kwargs)
        self.d, self.loss_kind, self.gp_weight, self.drift = d, loss, gp_weight, drift
        self.trackers = {k: keras.metrics.Mean(name=k) for k in ("d_real", "d_fake", "gp")}

    def call(self, inputs, training=False):
        real, fake = inputs[0], inputs[1]
        return ops.concatenate([self.d(real, training=training), self.d(fake, training=training)])

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        real, fake, mix = x
        d_real, d_fake = ops.split(ops.cast(y_pred, "float32"), 2)
        if self.loss_kind == "lsgan":  # Mao et al. Eq. 2, a = 0, b = 1
            loss = ops.mean(least_squares(ops.ones_like(d_real), d_real))
            loss = loss + ops.mean(least_squares(ops.zeros_like(d_fake), d_fake))
            gp = ops.zeros(())
        else:
            mixed = real + ops.cast(mix, real.dtype) * (fake - real)
            with tf.GradientTape() as tape:
                tape.watch(mixed)
                score = ops.sum(ops.cast(self.d(mixed, training=True), "float32"))
            norms = ops.sqrt(ops.sum(ops.square(tape.gradient(score, mixed)), axis=(1, 2, 3)))
            gp = ops.mean(ops.square(norms - 1.0))
            # L_D = E[D(G(z))] - E[D(x)] + lambda GP + eps_drift E[D(x)^2]  (A.1)
            loss = ops.mean(d_fake) - ops.mean(d_real) + self.gp_weight * gp
            loss = loss + self.drift * ops.mean(ops.square(d_real))
        for name, value in zip(self.trackers, (d_real, d_fake, gp)):
            self.trackers[name].update_state(ops.mean(value))
        replicas = tf.distribute.get_strategy().num_replicas_in_sync  # Keras' compiled losses do so
        return loss / replicas
