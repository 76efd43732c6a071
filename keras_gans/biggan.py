"""Class-conditional BigGAN for melanoma / nevus at 128x128, in the suite's train_on_batch style.

Brock, Donahue and Simonyan, "Large Scale GAN Training for High Fidelity Natural Image Synthesis",
ICLR 2019 (arXiv:1809.11096), as BigGAN-PyTorch (ajbrock, the authors' code) builds it at 128 px.
The skin-lesion report trained a BigGAN (PyTorch, one 11 GB card, batch 16, width 64) on ISIC images
to make shareable synthetic melanomas and nevi; here it runs with Keras 3 ``train_on_batch`` loops.

Reproduced: the generator's residual up-blocks with conditional BatchNorm (BN without affine, then
``x * (1 + W_g c) + W_b c``) whose condition ``c`` is the shared class embedding concatenated with a
chunk of the hierarchical z (z split into one chunk for the input layer and one per block);
SAGAN self-attention (gamma = 0 at init) at 64x64 in G and D; spectral norm on every convolution and
linear map of G and D and on D's class embedding; the projection discriminator
``D(x, y) = w^T h + embed(y)^T h`` with ``h`` the ReLU'd, sum-pooled features (Miyato & Koyama 2018);
the hinge loss; Adam(beta_1=0, beta_2=0.999, eps=1e-6) with G 1e-4 and D 4e-4, one D step per G step
(BigGAN-PyTorch's launch script); orthogonal initialisation; an exponential moving average of G's
weights (decay 0.9999, copied outright before ``ema_start``) used for every sample; the truncation
trick at sampling time.

Deviations and choices, all documented where they are made:

* width ``ch`` = 32 by default (the report used 64, BigGAN-PyTorch 64 / 96); the block widths are
  BigGAN-PyTorch's multiples of ``ch``; 32 and 64 px models take the first blocks of the 128 px
  layout. No orthogonal regularisation (BigGAN-PyTorch's launch script turns it off too), no
  "standing statistics" for sampling.
* Spectral norm is :class:`keras_gans.layers.SpectralNorm` (a reparametrisation that never writes
  the kernel), not ``keras.layers.SpectralNormalization``, which rewrites a frozen D's kernels
  during the G step (see that module).
* The D step is one ``train_on_batch`` on the concatenated ``[real; fake]`` batch with targets +1 /
  -1 (one update on the sum of both hinge terms, as BigGAN-PyTorch does); the G step trains the
  ``combined`` model (z, class -> G -> frozen D).
* Batch statistics. D has no BatchNorm. G's fakes for the D step come from G in training mode
  (batch statistics, like BigGAN-PyTorch, whose G stays in ``train()`` there): G's trainable weights
  do not change in the D step, but its BN moving averages and spectral-norm ``u`` vectors do. In the
  G step D is frozen: it uses no batch statistics and its spectral-norm ``u`` vectors stay as they
  are, so none of D's weights change. Samples use the EMA generator in inference mode (moving
  averages, which are averaged along with the weights).
* Truncation: ``truncation_mode="resample"`` (default) draws z from a normal truncated to
  ``[-t, t]`` (values outside are redrawn), as the paper describes (Sec. 3.1); ``"scale"`` multiplies
  z by ``t``, which is what BigGAN-PyTorch's ``--z_var`` does (``t = sqrt(z_var)``).
* Classes for fakes are drawn uniformly, as in BigGAN-PyTorch (the real batches keep the data's
  melanoma / nevus imbalance).
"""

import argparse
import json
import logging
import os
import sys

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops
from scipy.stats import truncnorm

from data_loaders.images import SkipReport, save_image
from data_loaders.isic import load_isic, resolve_isic, unconditional_dataset
from keras_gans import plotting
from keras_gans.layers import (
    ConditionalBatchNormalization,
    LatentSplit,
    SelfAttention,
    SpectralNorm,
)
from keras_gans.saving import load_model, save_model
from keras_gans.training import GANTrainer, add_common_args, runtime_kwargs

# The report's / BigGAN-PyTorch's settings.
IMG_SIZE = 128
CH = 32  # report: 64 on an 11 GB card; small by default
LATENT_DIM = 120  # hierarchical: 6 chunks of 20 at 128 px
SHARED_DIM = 128  # shared class embedding
NUM_CLASSES = 2
CLASS_NAMES = ("melanoma", "nevus")
ATTENTION_RES = 64
G_LR = 1e-4
D_LR = 4e-4
BETA_1 = 0.0
BETA_2 = 0.999
ADAM_EPSILON = 1e-6
BN_MOMENTUM = 0.9  # PyTorch momentum 0.1
BN_EPSILON = 1e-5
SN_EPSILON = 1e-6
EMA_DECAY = 0.9999
EMA_START = 20_000
BATCH_SIZE = 16
EPOCHS = 800  # the report: about 1M steps of batch 16 on ~16k training images
SAMPLE_EPOCHS = 2  # on the built-in sample
SAMPLE_INTERVAL = 500
GRID = 4  # 4 x 4 samples per class in each grid
TRUNCATION_MODES = ("resample", "scale")
# Block widths as multiples of ch (BigGAN-PyTorch G_arch / D_arch at 128 px).
G_WIDTHS = (16, 16, 8, 4, 2, 1)
D_WIDTHS = (1, 2, 4, 8, 16)


def n_blocks(img_size):
    """Up-blocks from 4x4 to ``img_size`` (5 at 128 px); sizes 16 .. 128 in powers of two."""
    n = int(round(np.log2(img_size / 4))) if img_size > 0 else 0
    if img_size not in (16, 32, 64, 128) or 4 * 2**n != img_size:
        raise ValueError(f"img_size must be 16, 32, 64 or 128, got {img_size}")
    return n


def sample_latent(rng, n, dim, truncation=None, mode="resample"):
    """``n`` latent vectors from N(0, I), truncated at ``truncation`` if given (float32).

    ``mode="resample"``: a normal truncated to ``[-t, t]`` (the paper's truncation trick);
    ``"scale"``: ``t * z`` (BigGAN-PyTorch's ``z_var = t**2``).
    """
    if truncation is None:
        return rng.standard_normal((n, dim)).astype(np.float32)
    if truncation <= 0:
        raise ValueError(f"truncation must be > 0, got {truncation}")
    if mode == "resample":
        return truncnorm.rvs(-truncation, truncation, size=(n, dim), random_state=rng).astype(
            np.float32
        )
    if mode == "scale":
        return (truncation * rng.standard_normal((n, dim))).astype(np.float32)
    raise ValueError(f"truncation mode must be one of {TRUNCATION_MODES}, got {mode!r}")


# --- losses (Lim & Ye 2017, Tran et al. 2017; BigGAN-PyTorch losses.py) -------------------------------
@keras.saving.register_keras_serializable(package="keras_gans")
def d_hinge_loss(y_true, y_pred):
    """L_D = E[max(0, 1 - D(x, y))] + E[max(0, 1 + D(G(z), y))] on a ``[real; fake]`` batch.

    ``y_true`` is +1 for real and -1 for fake; the batch mean of ``2 max(0, 1 - t D)`` over equal
    halves is the sum of the two expectations.
    """
    return 2.0 * ops.relu(1.0 - ops.cast(y_true, y_pred.dtype) * y_pred)


@keras.saving.register_keras_serializable(package="keras_gans")
def d_hinge_real(y_true, y_pred):
    """The real term E[max(0, 1 - D(x, y))] of :func:`d_hinge_loss` (a metric)."""
    real = ops.cast(y_true > 0, y_pred.dtype)
    return 2.0 * real * ops.relu(1.0 - y_pred)


@keras.saving.register_keras_serializable(package="keras_gans")
def d_hinge_fake(y_true, y_pred):
    """The fake term E[max(0, 1 + D(G(z), y))] of :func:`d_hinge_loss` (a metric)."""
    fake = ops.cast(y_true < 0, y_pred.dtype)
    return 2.0 * fake * ops.relu(1.0 + y_pred)


@keras.saving.register_keras_serializable(package="keras_gans")
def g_hinge_loss(y_true, y_pred):
    """L_G = -E[D(G(z), y)]; ``y_true`` is ignored."""
    return -y_pred


# --- blocks -----------------------------------------------------------------------------------------
def sn_conv(filters, kernel_size, name, use_bias=True):
    """A spectrally normalised, orthogonally initialised ``Conv2D`` ('same' padding)."""
    conv = layers.Conv2D(
        filters,
        kernel_size,
        padding="same",
        use_bias=use_bias,
        kernel_initializer="orthogonal",
        name="conv",
    )
    return SpectralNorm(conv, epsilon=SN_EPSILON, name=name)


def sn_dense(units, name, use_bias=True):
    """A spectrally normalised, orthogonally initialised ``Dense``."""
    dense = layers.Dense(units, use_bias=use_bias, kernel_initializer="orthogonal", name="dense")
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

    The first block has no pre-activation and pools its shortcut before the 1x1 conv; the others
    apply the conv first (BigGAN-PyTorch ``DBlock.shortcut``).
    """
    h = layers.ReLU(name=f"{name}_relu0")(x) if preactivation else x
    h = sn_conv(filters, 3, f"{name}_conv1")(h)
    h = layers.ReLU(name=f"{name}_relu1")(h)
    h = sn_conv(filters, 3, f"{name}_conv2")(h)
    if downsample:
        h = layers.AveragePooling2D(2, name=f"{name}_pool")(h)
    shortcut = x
    learnable = downsample or x.shape[-1] != filters
    if preactivation:
        if learnable:
            shortcut = sn_conv(filters, 1, f"{name}_sc_conv")(shortcut)
        if downsample:
            shortcut = layers.AveragePooling2D(2, name=f"{name}_sc_pool")(shortcut)
    else:
        if downsample:
            shortcut = layers.AveragePooling2D(2, name=f"{name}_sc_pool")(shortcut)
        if learnable:
            shortcut = sn_conv(filters, 1, f"{name}_sc_conv")(shortcut)
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
        raise ValueError(
            f"latent_dim {latent_dim} must split into {n + 1} equal chunks at {img_size} px"
        )
    widths = [ch * m for m in G_WIDTHS[: n + 1]]
    z = keras.Input((latent_dim,), name=f"{name}_z")
    y = keras.Input((), dtype="int32", name=f"{name}_class")
    chunks = LatentSplit(n + 1, name=f"{name}_z_split")(z)
    # The shared class embedding (not spectrally normalised, as in BigGAN-PyTorch).
    shared = layers.Embedding(
        num_classes, shared_dim, embeddings_initializer="orthogonal", name=f"{name}_shared"
    )(y)
    h = sn_dense(4 * 4 * widths[0], f"{name}_linear")(chunks[0])
    h = layers.Reshape((4, 4, widths[0]), name=f"{name}_reshape")(h)
    res = 4
    for i in range(n):
        cond = layers.Concatenate(name=f"{name}_cond{i + 1}")([shared, chunks[i + 1]])
        h = g_block(h, cond, widths[i + 1], f"{name}_block{i + 1}")
        res *= 2
        if res == attention_res:
            h = SelfAttention(sn_epsilon=SN_EPSILON, name=f"{name}_attention")(h)
    h = layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=f"{name}_out_bn")(
        h
    )
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
    h, res, attended = img, img_size, False
    for i, filters in enumerate(widths):
        downsample = i < n
        h = d_block(h, filters, downsample, preactivation=i > 0, name=f"{name}_block{i + 1}")
        res = res // 2 if downsample else res
        if res == attention_res and not attended:
            h = SelfAttention(sn_epsilon=SN_EPSILON, name=f"{name}_attention")(h)
            attended = True
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


class BigGAN(GANTrainer):
    """The class-conditional BigGAN trainer; see the module docstring.

    Args:
        images, labels: training images (float32 ``(n, s, s, 3)`` in [-1, 1]) and class indices;
            when ``images`` is None they are read with :func:`data_loaders.isic.load_isic` from
            ``data_dir`` (None: the built-in synthetic lesion sample).
        img_size: 16, 32, 64 or 128 (the report: 128).
        ch: width multiplier of G and D.
        latent_dim: size of z (split into one chunk per G block plus one).
        num_classes, class_names: the classes (``labels`` index ``class_names``).
        shared_dim: size of the shared class embedding.
        attention_res: resolution of the self-attention block in G and D (None: no attention).
        g_lr, d_lr: Adam learning rates.
        ema_decay, ema_start: the EMA generator ``g_ema`` is a copy of G before G step ``ema_start``
            and ``decay * g_ema + (1 - decay) * g`` after every later G step.
        truncation, truncation_mode: the truncation trick for the sample grids (see
            :func:`sample_latent`); training noise is never truncated.
        output_dir: where images, models, logs and checkpoints go.
        seed: seeds weights, data order and noise.
        **runtime: strategy, mixed_precision, jit, accumulate, checkpoint_every, keep_checkpoints,
            resume, on_nan, strict, deterministic (see :class:`keras_gans.training.GANTrainer`).
    """

    loss_groups = {"discriminator": ["D_loss", "D_real", "D_fake"], "generator": ["G_loss"]}

    def __init__(
        self,
        images=None,
        labels=None,
        data_dir=None,
        img_size=IMG_SIZE,
        ch=CH,
        latent_dim=LATENT_DIM,
        num_classes=NUM_CLASSES,
        class_names=CLASS_NAMES,
        shared_dim=SHARED_DIM,
        attention_res=ATTENTION_RES,
        g_lr=G_LR,
        d_lr=D_LR,
        ema_decay=EMA_DECAY,
        ema_start=EMA_START,
        truncation=None,
        truncation_mode="resample",
        output_dir=None,
        seed=None,
        **runtime,
    ):
        n_blocks(img_size)
        class_names = tuple(class_names)
        if len(class_names) != num_classes:
            raise ValueError(
                f"{num_classes} classes need {num_classes} class_names, got {class_names}"
            )
        if truncation_mode not in TRUNCATION_MODES:
            raise ValueError(
                f"truncation_mode must be one of {TRUNCATION_MODES}, got {truncation_mode!r}"
            )
        self.img_size, self.ch, self.latent_dim = img_size, ch, latent_dim
        self.num_classes, self.class_names = num_classes, class_names
        self.ema_decay, self.ema_start = float(ema_decay), int(ema_start)
        self.truncation, self.truncation_mode = truncation, truncation_mode
        self.setup_runtime(output_dir or os.path.join("output", "biggan"), seed=seed, **runtime)
        self.images, self.labels, self.data_root = self._data(images, labels, data_dir)

        build = dict(img_size=img_size, ch=ch, num_classes=num_classes, attention_res=attention_res)
        with self.strategy.scope():
            self.d = build_discriminator(**build, name="d")
            self.set_trainable(self.d, True)
            self.d.compile(
                loss=d_hinge_loss,
                metrics=[d_hinge_real, d_hinge_fake],
                optimizer=self.make_optimizer(
                    d_lr, beta_1=BETA_1, beta_2=BETA_2, epsilon=ADAM_EPSILON
                ),
                jit_compile=self.jit_compile,
            )
            gen = dict(build, latent_dim=latent_dim, shared_dim=shared_dim)
            self.g = build_generator(**gen, name="g")
            self.g_ema = build_generator(**gen, name="g_ema")
            self.g_ema.set_weights(self.g.get_weights())
            self.g_ema.trainable = False  # changed only by the moving average
            self.combined = self.build_combined()
            self.combined.compile(
                loss=g_hinge_loss,
                optimizer=self.make_optimizer(
                    g_lr, beta_1=BETA_1, beta_2=BETA_2, epsilon=ADAM_EPSILON
                ),
                jit_compile=self.jit_compile,
            )
            # Adam's slots now, not inside the first traced step (which would then be traced twice).
            self.build_optimizers()
        self._fakes = tf.function(lambda z, y: self.g([z, y], training=True), reduce_retracing=True)
        self._ema = tf.function(self._ema_update, reduce_retracing=True)
        # Fixed noise for the sample grids: the same z for every class.
        self.fixed_z = sample_latent(
            self.rng(4), GRID * GRID, latent_dim, truncation, truncation_mode
        )

    def _data(self, images, labels, data_dir):
        if images is None:
            report = SkipReport(self.skipped_files)
            data = load_isic(
                data_dir, self.img_size, classes=self.class_names, strict=self.strict, report=report
            )
            return data.images, data.labels.astype(np.int32), data.root
        images = np.asarray(images, np.float32)
        if images.ndim != 4 or images.shape[1:] != (self.img_size, self.img_size, 3):
            raise ValueError(
                f"images must be (n, {self.img_size}, {self.img_size}, 3), got {images.shape}"
            )
        labels = np.zeros(len(images), np.int32) if labels is None else np.asarray(labels, np.int32)
        if labels.shape != (len(images),) or labels.min() < 0 or labels.max() >= self.num_classes:
            raise ValueError(
                f"labels must be {len(images)} class indices in [0, {self.num_classes})"
            )
        return images, labels, "arrays"

    def build_combined(self):
        """z, class -> G -> frozen D -> score, for the G step."""
        z = keras.Input((self.latent_dim,), name="z")
        y = keras.Input((), dtype="int32", name="class")
        img = self.g([z, y])
        self.set_trainable(self.d, False)
        score = self.d([img, y])
        return keras.Model(
            [z, y], layers.Identity(dtype="float32", name="score")(score), name="combined"
        )

    def checkpoint_objects(self):
        return {
            "g": self.g,
            "g_ema": self.g_ema,
            "d": self.d,
            "opt_d": self.d.optimizer,
            "opt_combined": self.combined.optimizer,
        }

    def build_optimizers(self):
        self.set_trainable(self.d, True)
        self.d.optimizer.build(self.d.trainable_variables)
        self.set_trainable(self.d, False)
        self.combined.optimizer.build(self.combined.trainable_variables)

    # --- training ---------------------------------------------------------------------------------
    def _ema_update(self, decay):
        for ema, w in zip(self.g_ema.weights, self.g.weights):
            ema.assign(decay * ema + (1.0 - decay) * w)

    def update_ema(self, g_steps):
        """BigGAN-PyTorch ``ema.update(itr)``: copy before ``ema_start``, then average."""
        decay = 0.0 if g_steps < self.ema_start else self.ema_decay
        self._ema(tf.constant(decay, tf.float32))

    def d_step(self, imgs, labels):
        """One D update on ``[real; G(z, y)]`` with hinge targets +1 / -1."""
        n = len(imgs)
        rng = self.rng(2, self.step)
        z = sample_latent(rng, n, self.latent_dim)
        y_fake = rng.integers(0, self.num_classes, n).astype(np.int32)
        fakes = np.asarray(self._fakes(tf.constant(z), tf.constant(y_fake)))  # G in training mode
        x = np.concatenate([imgs, fakes])
        y = np.concatenate([np.asarray(labels, np.int32), y_fake])
        target = np.concatenate([np.ones((n, 1)), -np.ones((n, 1))]).astype(np.float32)
        if self.accumulate > 1:  # keep half real, half fake in every micro-batch
            order = np.concatenate(
                [
                    np.array_split(np.arange(n), self.accumulate)[i] + off
                    for i in range(self.accumulate)
                    for off in (0, n)
                ]
            )
            x, y, target = x[order], y[order], target[order]
        self.set_trainable(self.d, True)
        logs = self.update(self.d, [x, y], target)
        return {
            "D_loss": logs["loss"],
            "D_real": logs["d_hinge_real"],
            "D_fake": logs["d_hinge_fake"],
        }

    def g_step(self, batch_size):
        """One G update through the frozen D, then the EMA update."""
        rng = self.rng(3, self.step)
        z = sample_latent(rng, batch_size, self.latent_dim)
        y = rng.integers(0, self.num_classes, batch_size).astype(np.int32)
        self.set_trainable(self.d, False)
        logs = self.update(self.combined, [z, y], np.zeros((batch_size, 1), np.float32))
        self.update_ema(self.step)
        return {"G_loss": logs["loss"]}

    def train_step(self, imgs, labels):
        """One BigGAN iteration: a D step, then a G step (BigGAN-PyTorch ``train_fns.GAN_training_function``)."""
        logs = self.d_step(imgs, labels)
        logs.update(self.g_step(len(imgs)))
        return logs

    def train(
        self, epochs=EPOCHS, batch_size=BATCH_SIZE, sample_interval=SAMPLE_INTERVAL, max_steps=None
    ):
        """Epochs of shuffled real batches; per batch one D step and one G step.

        Every ``sample_interval`` steps: one sample grid per class and the models (``g``, ``g_ema``,
        ``d``); at the end: both (unless just written), a checkpoint, ``losses.png`` and ``summary.json``.
        """
        n_batches = len(self.images) // batch_size
        if batch_size % self.accumulate:
            raise ValueError(
                f"batch_size {batch_size} must be divisible by accumulate {self.accumulate}"
            )
        if n_batches == 0:
            raise ValueError(
                f"batch_size {batch_size} is larger than the {len(self.images)} training images"
            )
        self.restore_checkpoint()
        total = epochs * n_batches if max_steps is None else min(max_steps, epochs * n_batches)
        bar = self.progress(total, initial=min(self.step, total), desc="biggan")
        done = self.step >= total
        while not done and self.epoch < epochs:
            batches = unconditional_dataset(
                self.images,
                batch_size,
                self.seed,
                self.epoch,
                self.batch_in_epoch,
                labels=self.labels,
            )
            restarted = False
            for imgs, labels in batches.as_numpy_iterator():
                logs = self.train_step(imgs, labels)
                self.step += 1
                self.batch_in_epoch += 1
                logs.update(self.maybe_evaluate())
                if not self.log_step(logs, bar):  # rolled back to the last checkpoint
                    bar.n = self.step
                    restarted = True
                    break
                bar.update(1)
                if sample_interval and self.step % sample_interval == 0:
                    self.sample_images(self.step)
                    self.save_models()
                self.maybe_checkpoint()
                if self.step >= total:
                    done = True
                    break
            if restarted:
                continue
            if self.batch_in_epoch >= n_batches:
                self.epoch += 1
                self.batch_in_epoch = 0
        bar.close()
        if not (sample_interval and self.step % sample_interval == 0):  # else just written
            self.sample_images(self.step)
            self.save_models()
        if self.checkpoint_every and self.step % self.checkpoint_every:
            self.save_checkpoint()
        if os.path.exists(self.loss_log.path):
            self.plot_losses()
        counts = {c: int(np.sum(self.labels == i)) for i, c in enumerate(self.class_names)}
        return self.write_summary(
            dataset=self.data_root,
            batch_size=batch_size,
            images=counts,
            img_size=self.img_size,
            ch=self.ch,
            truncation=self.truncation,
            truncation_mode=self.truncation_mode,
        )

    def evaluate(self):
        """FID and KID of EMA samples (classes in the data's proportions) against the data."""
        if not self.eval_extractor:
            return {}
        n = min(len(self.images), 1000)
        rng = self.rng(3, self.step)
        z = sample_latent(rng, n, self.latent_dim)
        y = self.labels[rng.integers(0, len(self.labels), n)].astype(np.int32)
        fakes = np.asarray(sample_function(self.g_ema)(tf.constant(z), tf.constant(y)))
        return self.fid_kid(self.images, fakes)

    # --- outputs ----------------------------------------------------------------------------------
    def generate(self, class_index, z=None):
        """Images of class ``class_index`` from the EMA generator (inference mode)."""
        z = self.fixed_z if z is None else np.asarray(z, np.float32)
        y = np.full(len(z), class_index, np.int32)
        return np.asarray(sample_function(self.g_ema)(tf.constant(z), tf.constant(y)))

    def sample_images(self, step):
        """One ``GRID x GRID`` grid per class, ``images/<step>_<class>.png``, same z for each class."""
        if not self.is_chief:
            return []
        paths = []
        for i, name in enumerate(self.class_names):
            path = os.path.join(self.images_dir, f"{step}_{name}.png")
            paths.append(plotting.save_image_grid(self.generate(i), path, GRID, GRID))
        return paths

    def save_models(self):
        """``models/{g,g_ema,d}.h5`` and ``.keras``, and ``models/classes.json``."""
        if not self.is_chief:
            return
        for name in ("g", "g_ema", "d"):
            model = getattr(self, name)
            was = model.trainable
            self.set_trainable(model, True)
            save_model(model, os.path.join(self.models_dir, name))
            self.set_trainable(model, was)
        with open(os.path.join(self.models_dir, "classes.json"), "w") as f:
            json.dump(list(self.class_names), f)


def sample_function(generator):
    """``f(z, class)``: the generator's traced inference-mode forward, cached on the model."""
    fn = getattr(generator, "_keras_gans_sample_fn", None)
    if fn is None:
        fn = tf.function(lambda z, y: generator([z, y], training=False), reduce_retracing=True)
        generator._keras_gans_sample_fn = fn
    return fn


def generate_images(
    generator,
    n_per_class,
    class_index,
    truncation=None,
    seed=0,
    truncation_mode="resample",
    batch_size=64,
):
    """``n_per_class`` images (float32 in [-1, 1]) of class ``class_index`` from a BigGAN generator.

    ``generator`` is a model (or a path to one) taking ``[z, class]``; z is drawn from
    ``(seed, class_index)``, truncated as :func:`sample_latent` describes; inference mode.
    """
    if isinstance(generator, (str, os.PathLike)):
        generator = load_model(generator)
    latent_dim = generator.inputs[0].shape[-1]
    z = sample_latent(
        np.random.default_rng([seed, class_index]),
        n_per_class,
        latent_dim,
        truncation,
        truncation_mode,
    )
    forward = sample_function(generator)  # every batch is padded to one shape: one trace
    out = []
    for start in range(0, n_per_class, batch_size):
        chunk = z[start : start + batch_size]
        pad = np.zeros((batch_size - len(chunk), latent_dim), np.float32)
        y = np.full(batch_size, class_index, np.int32)
        images = forward(tf.constant(np.concatenate([chunk, pad])), tf.constant(y))
        out.append(np.asarray(images)[: len(chunk)])
    return np.concatenate(out) if out else np.zeros((0, *generator.output_shape[1:]), np.float32)


def model_classes(generator, model_path=None):
    """Class names for a generator: ``classes.json`` beside the model, else the report's names."""
    n = next(layer.input_dim for layer in generator.layers if isinstance(layer, layers.Embedding))
    if model_path:
        path = os.path.join(os.path.dirname(os.path.abspath(model_path)), "classes.json")
        if os.path.exists(path):
            with open(path) as f:
                names = json.load(f)
            if len(names) == n:
                return tuple(names)
    return CLASS_NAMES if n == len(CLASS_NAMES) else tuple(f"class_{i}" for i in range(n))


def generate_files(
    model_path, n, output_dir, truncation=None, truncation_mode="resample", seed=0, classes=None
):
    """Write ``n`` images per class into ``output_dir/<class>/``; returns ``{class: [paths]}``."""
    generator = load_model(model_path)
    classes = tuple(classes) if classes else model_classes(generator, model_path)
    written = {}
    for i, name in enumerate(classes):
        images = generate_images(generator, n, i, truncation, seed, truncation_mode)
        folder = os.path.join(output_dir, name)
        os.makedirs(folder, exist_ok=True)
        written[name] = []
        for j, image in enumerate(images):
            path = os.path.join(folder, f"{name}_{j:05d}.png")
            save_image(image, path)
            written[name].append(path)
    return written


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv.pop(0) if argv and argv[0] in ("train", "generate") else "train"
    truncation = dict(
        type=float, default=None, help="truncation threshold for sampling (default: none)"
    )
    mode = dict(
        default="resample",
        choices=TRUNCATION_MODES,
        help="resample: truncated normal (paper); scale: t * z (BigGAN-PyTorch z_var)",
    )
    if command == "generate":
        parser = argparse.ArgumentParser(
            prog="python -m keras_gans.biggan generate",
            description="Write N images per class from a saved BigGAN generator into OUTPUT/<class>/.",
        )
        parser.add_argument("--model", required=True, help="generator file, e.g. models/g_ema.h5")
        parser.add_argument("--n", type=int, required=True, help="images per class")
        parser.add_argument("--output", required=True, help="folder; one sub-folder per class")
        parser.add_argument("--truncation", **truncation)
        parser.add_argument("--truncation-mode", **mode)
        parser.add_argument("--seed", type=int, default=0, help="noise seed (default: 0)")
        parser.add_argument(
            "--classes",
            default=None,
            help="comma-separated class names (default: "
            "classes.json beside the model, else melanoma,nevus)",
        )
        args = parser.parse_args(argv)
        classes = args.classes.split(",") if args.classes else None
        written = generate_files(
            args.model,
            args.n,
            args.output,
            args.truncation,
            args.truncation_mode,
            args.seed,
            classes,
        )
        print(
            f"wrote {sum(map(len, written.values()))} image(s) to {args.output} "
            f"({', '.join(f'{k}: {len(v)}' for k, v in written.items())})"
        )
        return written
    parser = argparse.ArgumentParser(
        prog="python -m keras_gans.biggan",
        description="Train the report's class-conditional BigGAN (melanoma / nevus, 128x128).",
    )
    parser.add_argument(
        "--dataset",
        default="sample",
        choices=("sample", "isic"),
        help="'sample' (built in, offline) or 'isic' (downloaded with isic-cli)",
    )
    parser.add_argument("--data-dir", default=None, help="an ISIC folder (see data_loaders.isic)")
    parser.add_argument("--img-size", type=int, default=IMG_SIZE, help=f"default: {IMG_SIZE}")
    parser.add_argument(
        "--ch", type=int, default=CH, help=f"width multiplier (default: {CH}; report: 64)"
    )
    parser.add_argument("--latent-dim", type=int, default=LATENT_DIM, help=f"default: {LATENT_DIM}")
    parser.add_argument(
        "--attention-res",
        type=int,
        default=ATTENTION_RES,
        help=f"self-attention resolution, 0 = none (default: {ATTENTION_RES})",
    )
    parser.add_argument("--ema-decay", type=float, default=EMA_DECAY, help=f"default: {EMA_DECAY}")
    parser.add_argument("--ema-start", type=int, default=EMA_START, help=f"default: {EMA_START}")
    parser.add_argument("--truncation", **truncation)
    parser.add_argument("--truncation-mode", **mode)
    add_common_args(parser, epochs=None, batch_size=BATCH_SIZE, sample_interval=SAMPLE_INTERVAL)
    args = parser.parse_args(argv)
    data_dir = resolve_isic(args.dataset, args.data_dir)
    epochs = args.epochs or (SAMPLE_EPOCHS if data_dir is None else EPOCHS)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    gan = BigGAN(
        data_dir=data_dir,
        img_size=args.img_size,
        ch=args.ch,
        latent_dim=args.latent_dim,
        attention_res=args.attention_res or None,
        ema_decay=args.ema_decay,
        ema_start=args.ema_start,
        truncation=args.truncation,
        truncation_mode=args.truncation_mode,
        **runtime_kwargs(args),
    )
    summary = gan.train(epochs, args.batch_size, args.sample_interval, args.max_steps)
    print(f"done: {summary['steps']} steps in {summary['seconds']} s; outputs in {gan.output_dir}")
    return gan


if __name__ == "__main__":
    main()
