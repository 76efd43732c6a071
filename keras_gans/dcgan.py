"""DCGAN on ISIC skin lesions at 64x64, and the unconditional trainer the basic GAN shares.

Radford, Metz and Chintala, "Unsupervised Representation Learning with Deep Convolutional
Generative Adversarial Networks", ICLR 2016 (arXiv:1511.06434). The report's second model: a DCGAN
at 64x64 on the preprocessed ISIC images, trained with Keras-GAN's ``train_on_batch`` loop.

Architecture (Radford et al. Sec. 3): G projects z (100-d, N(0, 1) as in Keras-GAN) to 4x4, then
strided ``Conv2DTranspose`` + BatchNorm + ReLU up to the image, tanh out; D is strided ``Conv2D`` +
LeakyReLU(0.2), BatchNorm on every block but the first, then a sigmoid unit. Channels halve / double
per stage (``base_filters`` at the last G / first D stage), weights start from N(0, 0.02), and both
models use Adam(2e-4, beta_1=0.5). The stage count follows the size: 32, 64 or 128 pixels (any power
of two >= 8 works, which the tests use).

The loop (Keras-GAN ``dcgan.py``): per batch, D on real images (target 1), D on fakes (target 0),
then ``combined`` = D(G(z)) with target 1 and D frozen (the non-saturating loss, paper Eq. 1 and
Goodfellow et al. Sec. 3). Keras 3 specifics:

* D is unfrozen before its ``train_on_batch`` and frozen before the combined one (Keras 3 reads
  ``trainable`` when a train function is first traced), and each compiled model has its own Adam.
* **Frozen BatchNorm.** Keras 3 runs a frozen ``BatchNormalization`` in inference mode, so inside
  ``combined`` D would normalise fakes with its moving statistics, a mix of past real and fake
  batches, while D itself was trained with per-batch statistics: G would climb a different function
  than the one D learned (GANs-in-Action#14, "tf.keras DCGAN produces noise"). The default
  ``frozen_bn="batch"`` keeps the report's Keras 2 behaviour and Radford's reference code: inside
  ``combined`` D's BatchNorm layers normalise with the statistics of the fake batch itself, with D's
  frozen gamma and beta, and never touch the moving statistics (the D step alone updates them).
  This is a view of D (:func:`batch_stats_view`: the same layer objects, only BatchNorm swapped)
  used in ``combined`` only; the saved D is a plain Keras model. ``frozen_bn="moving"`` is Keras 3's
  native inference-mode behaviour, for comparison.
* The fakes for the D step come from one traced G call in training mode (batch statistics, as in the
  G step and Radford's code), not from Keras-GAN's ``predict`` (inference mode); epochs are shuffled
  passes over the data (seeded per epoch) instead of Keras-GAN's random batches with replacement;
  ``models/generator`` and ``models/discriminator`` (``.h5`` and ``.keras``) are written with every
  checkpoint (``--checkpoint-every`` steps) and at the end, runs resume from checkpoints, and the
  5x5 sample grids use fixed noise.

:func:`generate_images` and ``python -m keras_gans.dcgan generate`` draw images from a saved G for
the classifier harness; :class:`DCGAN` also trains on any array (AnoGAN passes MNIST at 32x32x1) and
on one class only (``class_name``), as the harness trains one generator per class.
"""

import argparse
import logging
import math
import os
import sys

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

from data_loaders.images import SkipReport, save_image
from data_loaders.isic import CLASSES, load_isic, resolve_isic, unconditional_dataset
from keras_gans import plotting
from keras_gans.saving import load_model, save_model
from keras_gans.training import GANTrainer, add_common_args, runtime_kwargs

# The report's settings (Radford et al.; Keras-GAN dcgan.py for the loop and batch size).
IMG_SIZE = 64
LATENT_DIM = 100
GF = 64  # generator filters at the last stage
DF = 64  # discriminator filters at the first stage
KERNEL = 4  # 4x4 as in the PyTorch reference DCGAN (Radford's Theano code used 5x5)
BN_MOMENTUM = 0.8  # Keras-GAN's BatchNormalization(momentum=0.8)
LEARNING_RATE = 2e-4
BETA_1 = 0.5
BATCH_SIZE = 32
EPOCHS = 25  # the report does not say; about 18k steps on its 23,345 images
SAMPLE_EPOCHS = 30  # on the built-in sample (320 images): a few minutes on two CPU cores
SAMPLE_INTERVAL = 50
GRID = (5, 5)


def _stages(img_size):
    """The number of stride-2 stages between 4x4 and ``img_size``."""
    n = int(round(math.log2(img_size))) - 2 if img_size > 0 else 0
    if n < 1 or 4 * 2**n != img_size:
        raise ValueError(f"img_size must be a power of two >= 8 (32, 64, 128), got {img_size}")
    return n


def _init():
    return keras.initializers.RandomNormal(0.0, 0.02)


def _bn(name):
    gamma = keras.initializers.RandomNormal(1.0, 0.02)
    return layers.BatchNormalization(momentum=BN_MOMENTUM, gamma_initializer=gamma, name=name)


def up_block(x, filters, name):
    """Radford's G block: ConvTranspose(4x4, stride 2) -> BatchNorm -> ReLU."""
    x = layers.Conv2DTranspose(
        filters,
        KERNEL,
        2,
        "same",
        use_bias=False,
        kernel_initializer=_init(),
        name=f"{name}_deconv",
    )(x)
    x = _bn(f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def down_block(x, filters, name, i, batch_norm=True):
    """Radford's D block: Conv(4x4, stride 2) -> [BatchNorm] -> LeakyReLU(0.2), numbered ``i``."""
    x = layers.Conv2D(
        filters,
        KERNEL,
        2,
        "same",
        use_bias=not batch_norm,
        kernel_initializer=_init(),
        name=f"{name}_conv{i}",
    )(x)
    if batch_norm:
        x = _bn(f"{name}_bn{i}")(x)
    return layers.LeakyReLU(negative_slope=0.2, name=f"{name}_lrelu{i}")(x)


def build_generator(
    latent_dim=LATENT_DIM, img_size=IMG_SIZE, channels=3, base_filters=GF, name="generator"
):
    """z -> Dense to 4x4 -> BN -> ReLU -> up blocks -> ConvTranspose(s2) -> tanh.

    Layers are named ``{name}_project``, ``{name}_reshape``, ``{name}_bn0``, then
    ``{name}_up{i}_deconv`` / ``_bn`` / ``_relu`` and ``{name}_out``.
    """
    n = _stages(img_size)
    filters = base_filters * 2 ** (n - 1)
    z = keras.Input(shape=(latent_dim,), name=f"{name}_z")
    x = layers.Dense(
        16 * filters, use_bias=False, kernel_initializer=_init(), name=f"{name}_project"
    )(z)
    x = layers.Reshape((4, 4, filters), name=f"{name}_reshape")(x)
    x = layers.ReLU(name=f"{name}_relu0")(_bn(f"{name}_bn0")(x))
    for i in range(1, n):
        x = up_block(x, filters // 2**i, f"{name}_up{i}")
    img = layers.Conv2DTranspose(
        channels,
        KERNEL,
        2,
        "same",
        activation="tanh",
        kernel_initializer=_init(),
        dtype="float32",
        name=f"{name}_out",
    )(x)
    return keras.Model(z, img, name=name)


def build_discriminator(img_size=IMG_SIZE, channels=3, base_filters=DF, name="discriminator"):
    """Down blocks from ``base_filters`` (no BatchNorm on the first) to 4x4 -> Dense(1, sigmoid).

    Blocks are named ``{name}_conv{i}``, ``{name}_bn{i}`` (i >= 2) and ``{name}_lrelu{i}``, for
    i = 1..n, so a feature layer can be picked by name (AnoGAN's discrimination loss).
    """
    n = _stages(img_size)
    img = keras.Input(shape=(img_size, img_size, channels), name=f"{name}_input")
    x = img
    for i in range(1, n + 1):  # no BatchNorm on D's input layer (Radford et al. Sec. 3)
        x = down_block(x, base_filters * 2 ** (i - 1), name, i, batch_norm=i > 1)
    x = layers.Flatten(name=f"{name}_flatten")(x)
    validity = layers.Dense(1, activation="sigmoid", dtype="float32", name=f"{name}_validity")(x)
    return keras.Model(img, validity, name=name)


class BatchStatistics(layers.Layer):
    """A frozen ``BatchNormalization`` as Keras 2 ran it: batch moments, its gamma/beta, no update.

    Wraps (shares) ``bn``; used only inside ``combined`` (see :func:`batch_stats_view`), not saved.
    """

    def __init__(self, bn, **kwargs):
        super().__init__(name=f"{bn.name}_batch_stats", dtype=bn.dtype_policy, **kwargs)
        self.bn = bn

    def call(self, inputs, training=None, mask=None):
        x = ops.cast(inputs, "float32")
        axis = self.bn.axis % len(x.shape)
        mean, variance = ops.moments(x, [i for i in range(len(x.shape)) if i != axis])
        y = ops.batch_normalization(
            x,
            mean,
            variance,
            axis=axis,
            offset=self.bn.beta,
            scale=self.bn.gamma,
            epsilon=self.bn.epsilon,
        )
        return ops.cast(y, inputs.dtype)


def batch_stats_view(discriminator):
    """``discriminator`` with every BatchNorm normalising by batch statistics; all else shared."""
    swap = lambda layer: (
        BatchStatistics(layer) if isinstance(layer, layers.BatchNormalization) else layer
    )
    return keras.models.clone_model(discriminator, clone_function=swap)


class DCGAN(GANTrainer):
    """An unconditional ``train_on_batch`` GAN (Keras-GAN ``DCGAN``); see the module docstring.

    Args:
        images: float32 ``(n, h, w, c)`` in [-1, 1] to train on instead of ISIC (sets ``img_size``
            and ``channels``).
        data_dir: an ISIC folder (see :func:`data_loaders.isic.load_isic`); ``None``: ``dataset``.
        class_name: ``"melanoma"`` or ``"nevus"`` to train on one class; ``None``: both.
        img_size, channels, latent_dim: the image and noise shapes.
        output_dir: where images, models, logs and checkpoints go.
        seed: seeds weights, data order and noise.
        dataset: ``"sample"`` (built in, offline) or ``"isic"`` (the ``isic-cli`` download).
        gf, df: generator / discriminator filters (``None``: the model's default).
        learning_rate, beta_1: Adam for D and for ``combined``.
        frozen_bn: ``"batch"`` (Keras 2 behaviour, default) or ``"moving"`` (Keras 3's).
        **runtime: strategy, mixed_precision, jit, accumulate, checkpoint_every, keep_checkpoints,
            resume, on_nan, strict, deterministic (see :class:`keras_gans.training.GANTrainer`).
    """

    name = "dcgan"
    default_img_size = IMG_SIZE
    default_gf, default_df = GF, DF
    default_epochs, default_sample_epochs = EPOCHS, SAMPLE_EPOCHS
    generator_builder = staticmethod(build_generator)
    discriminator_builder = staticmethod(build_discriminator)
    loss_groups = {"discriminator": ["D_loss", "D_acc"], "generator": ["G_loss"]}

    def __init__(
        self,
        images=None,
        data_dir=None,
        class_name=None,
        img_size=IMG_SIZE,
        channels=3,
        latent_dim=LATENT_DIM,
        output_dir=None,
        seed=None,
        dataset="sample",
        gf=None,
        df=None,
        learning_rate=LEARNING_RATE,
        beta_1=BETA_1,
        frozen_bn="batch",
        **runtime,
    ):
        if frozen_bn not in ("batch", "moving"):
            raise ValueError(f"frozen_bn must be 'batch' or 'moving', got {frozen_bn!r}")
        if class_name is not None and class_name not in CLASSES:
            raise ValueError(f"class_name must be one of {', '.join(CLASSES)}, got {class_name!r}")
        if images is not None:
            images = np.asarray(images, np.float32)
            if images.ndim != 4:
                raise ValueError(f"images must be (n, h, w, c), got shape {images.shape}")
            img_size, channels = images.shape[1], images.shape[3]
        self.check_img_size(img_size)
        self.img_size, self.channels, self.latent_dim = img_size, channels, latent_dim
        self.class_name, self.frozen_bn = class_name, frozen_bn
        self.gf = gf or self.default_gf
        self.df = df or self.default_df
        source = (
            "array"
            if images is not None
            else os.path.basename(os.path.normpath(data_dir or dataset))
        )
        output_dir = output_dir or os.path.join(
            "output", self.name, source + (f"_{class_name}" if class_name else "")
        )
        self.setup_runtime(output_dir, seed=seed, **runtime)
        self.data_root, self.class_counts = "array", None
        if images is None:
            images = self._load_isic(dataset, data_dir)
        self.images = images

        with self.strategy.scope():
            self.discriminator = self.discriminator_builder(
                self.img_size, self.channels, self.df, name="discriminator"
            )
            self.discriminator.compile(
                loss="binary_crossentropy",
                optimizer=self.make_optimizer(learning_rate, beta_1=beta_1),
                metrics=["accuracy"],
                jit_compile=self.jit_compile,
            )
            self.generator = self.generator_builder(
                self.latent_dim, self.img_size, self.channels, self.gf, name="generator"
            )
            self.combined = self.build_combined()
            self.combined.compile(
                loss="binary_crossentropy",
                optimizer=self.make_optimizer(learning_rate, beta_1=beta_1),
                jit_compile=self.jit_compile,
            )
        self._fake = tf.function(lambda z: self.generator(z, training=True), reduce_retracing=True)
        self._sampled_at = None
        self.fixed_z = self.noise(GRID[0] * GRID[1], 1)  # key (1,): the grids; (0, step): training

    @staticmethod
    def check_img_size(img_size):
        """Raise ``ValueError`` early (before any data is read) for a size the builders refuse."""
        _stages(img_size)

    def _load_isic(self, dataset, data_dir):
        classes = (self.class_name,) if self.class_name else CLASSES
        report = SkipReport(skipped=self.skipped_files)
        data = load_isic(
            resolve_isic(dataset, data_dir),
            self.img_size,
            classes,
            strict=self.strict,
            report=report,
        )
        self.data_root = data.root
        self.class_counts = data.counts()
        images = data.images
        if self.channels == 1:
            images = images.mean(axis=-1, keepdims=True)
        elif self.channels != 3:
            raise ValueError(f"channels must be 1 or 3 for ISIC images, got {self.channels}")
        return images

    def build_combined(self):
        """z -> G -> frozen D (see "Frozen BatchNorm" in the module docstring) -> validity."""
        z = keras.Input(shape=(self.latent_dim,), name="z")
        img = self.generator(z)
        self.set_trainable(self.discriminator, False)
        critic = (
            self.discriminator
            if self.frozen_bn == "moving"
            else batch_stats_view(self.discriminator)
        )
        validity = critic(img)
        return keras.Model(z, validity, name="combined")

    def checkpoint_objects(self):
        return {
            "generator": self.generator,
            "discriminator": self.discriminator,
            "opt_discriminator": self.discriminator.optimizer,
            "opt_combined": self.combined.optimizer,
        }

    def save_checkpoint(self):
        """A checkpoint plus the ``.h5`` / ``.keras`` models (every N steps and at the end)."""
        path = super().save_checkpoint()
        self.save_models()
        return path

    def build_optimizers(self):
        self.set_trainable(self.discriminator, True)
        self.discriminator.optimizer.build(self.discriminator.trainable_variables)
        self.set_trainable(self.discriminator, False)
        self.combined.optimizer.build(self.combined.trainable_variables)

    # --- training -------------------------------------------------------------------------------
    def noise(self, n, *key):
        """z ~ N(0, 1), ``(n, latent_dim)``, drawn from ``rng(*key)`` (the same key, the same z)."""
        return self.rng(*key).standard_normal((n, self.latent_dim)).astype(np.float32)

    def train_step(self, imgs, valid, fake):
        """One step in Keras-GAN's order; returns the logged values."""
        z = self.noise(len(imgs), 0, self.step)
        gen_imgs = self._fake(tf.constant(z)).numpy()
        # D: log D(x) + log(1 - D(G(z))) as two BCE calls (real -> 1, fake -> 0), paper Eq. 1.
        self.set_trainable(self.discriminator, True)
        d_real = self.update(self.discriminator, imgs, valid)
        d_fake = self.update(self.discriminator, gen_imgs, fake)
        # G: the non-saturating -log D(G(z)) through the frozen D (target 1).
        self.set_trainable(self.discriminator, False)
        g = self.update(self.combined, z, valid)
        return {
            "D_loss": 0.5 * (float(d_real["loss"]) + float(d_fake["loss"])),
            "D_acc": 0.5 * (float(d_real["accuracy"]) + float(d_fake["accuracy"])),
            "G_loss": float(g["loss"]),
        }

    def evaluate(self):
        """FID and KID of ``len(images)`` (at most 1000) samples against the training images."""
        if not self.eval_extractor:
            return {}
        n = min(len(self.images), 1000)
        fakes = generate_images(self.generator, n, seed=self.step, latent_dim=self.latent_dim)
        return self.fid_kid(self.images, fakes)

    def train(
        self, epochs=None, batch_size=BATCH_SIZE, sample_interval=SAMPLE_INTERVAL, max_steps=None
    ):
        """Keras-GAN's loop over seeded epochs; ``epochs=None``: enough for ``max_steps``."""
        n_batches = len(self.images) // batch_size
        if n_batches == 0:
            raise ValueError(
                f"batch_size {batch_size} is larger than the {len(self.images)} images"
            )
        if epochs is None:
            epochs = math.ceil(max_steps / n_batches) if max_steps else self.default_epochs
        self.restore_checkpoint()
        valid = np.ones((batch_size, 1), np.float32)
        fake = np.zeros((batch_size, 1), np.float32)
        total = epochs * n_batches if max_steps is None else min(max_steps, epochs * n_batches)
        bar = self.progress(total, initial=min(self.step, total), desc=self.name)
        while self.step < total:
            batches = unconditional_dataset(
                self.images, batch_size, self.seed, self.epoch, skip_batches=self.batch_in_epoch
            )
            restarted = False
            for imgs in batches.as_numpy_iterator():
                logs = self.train_step(imgs, valid, fake)
                self.step += 1
                self.batch_in_epoch += 1
                logs.update(self.maybe_evaluate())
                if not self.log_step(logs, bar):  # rolled back to the last checkpoint
                    bar.n = self.step
                    restarted = True
                    break
                bar.update(1)
                if sample_interval and self.step % sample_interval == 0:
                    self.sample_images()
                self.maybe_checkpoint()
                if self.step >= total:
                    break
            if not restarted and self.batch_in_epoch >= n_batches:
                self.epoch += 1
                self.batch_in_epoch = 0
        bar.close()
        if self.checkpoint_every:
            self.save_checkpoint()
        else:
            self.save_models()
        if self._sampled_at != self.step:
            self.sample_images()
        self.plot_losses()
        return self.write_summary(
            dataset=self.data_root,
            images=len(self.images),
            class_name=self.class_name,
            img_size=self.img_size,
            batch_size=batch_size,
            class_counts=self.class_counts,
            frozen_bn=self.frozen_bn,
        )

    # --- outputs --------------------------------------------------------------------------------
    def sample_images(self):
        """A 5x5 grid from the fixed noise: ``images/<epoch>_<batch>.png``."""
        if not self.is_chief:
            return None
        self._sampled_at = self.step
        imgs = np.asarray(self.generator(self.fixed_z, training=False))
        path = os.path.join(self.images_dir, f"{self.epoch}_{self.batch_in_epoch}.png")
        return plotting.save_image_grid(imgs, path, *GRID)

    def save_models(self):
        """``models/{generator,discriminator}.h5`` and ``.keras``, with trainable set for reuse."""
        if not self.is_chief:
            return
        for model in (self.generator, self.discriminator):
            was = model.trainable
            self.set_trainable(model, True)
            save_model(model, os.path.join(self.models_dir, model.name))
            self.set_trainable(model, was)


def generate_images(generator, n, seed=0, latent_dim=None, batch_size=64):
    """``n`` images in [-1, 1] from a generator (a model or a saved file), z ~ N(0, 1) seeded.

    The noise is drawn at once, so the images do not depend on ``batch_size``.
    """
    model = load_model(generator) if isinstance(generator, (str, os.PathLike)) else generator
    latent_dim = latent_dim or model.input_shape[-1]
    z = np.random.default_rng(seed).standard_normal((n, latent_dim)).astype(np.float32)
    out = [
        np.asarray(model(z[i : i + batch_size], training=False)) for i in range(0, n, batch_size)
    ]
    return np.concatenate(out) if out else np.zeros((0, *model.output_shape[1:]), np.float32)


def generate_files(model_path, n, output_dir, seed=0, batch_size=64, prefix=""):
    """Write ``n`` generated images as ``<prefix><index>.png`` in ``output_dir``; returns paths."""
    images = generate_images(model_path, n, seed=seed, batch_size=batch_size)
    os.makedirs(output_dir, exist_ok=True)
    paths = [os.path.join(output_dir, f"{prefix}{i:05d}.png") for i in range(len(images))]
    for img, path in zip(images, paths):
        save_image(img, path)
    return paths


def run_cli(trainer_cls, argv, prog, description):
    """The ``train`` / ``generate`` command line shared by the unconditional trainers."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv.pop(0) if argv and argv[0] in ("train", "generate") else "train"
    if command == "generate":
        parser = argparse.ArgumentParser(
            prog=f"{prog} generate", description="Write N images from a saved generator as PNGs."
        )
        parser.add_argument(
            "--model", required=True, help="generator file, e.g. models/generator.h5"
        )
        parser.add_argument("--n", type=int, default=100, help="number of images (default: 100)")
        parser.add_argument("--output", required=True, help="folder for the PNG files")
        parser.add_argument("--seed", type=int, default=0, help="noise seed (default: 0)")
        parser.add_argument("--batch-size", type=int, default=64, help="default: 64")
        parser.add_argument("--prefix", default="", help="file name prefix, e.g. melanoma_")
        args = parser.parse_args(argv)
        paths = generate_files(
            args.model, args.n, args.output, args.seed, args.batch_size, args.prefix
        )
        print(f"wrote {len(paths)} image(s) to {args.output}")
        return paths
    cls = trainer_cls
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument(
        "--dataset", default="sample", choices=("sample", "isic"), help="default: sample"
    )
    parser.add_argument(
        "--data-dir", default=None, help="an ISIC folder (isic-cli, HAM10000 or CSV)"
    )
    parser.add_argument(
        "--class", dest="class_name", default=None, choices=CLASSES, help="one class only"
    )
    parser.add_argument(
        "--img-size",
        type=int,
        default=cls.default_img_size,
        help=f"default: {cls.default_img_size}",
    )
    parser.add_argument("--channels", type=int, default=3, choices=(1, 3), help="default: 3")
    parser.add_argument("--latent-dim", type=int, default=LATENT_DIM, help=f"default: {LATENT_DIM}")
    parser.add_argument(
        "--gf", type=int, default=cls.default_gf, help=f"G filters (default: {cls.default_gf})"
    )
    parser.add_argument(
        "--df", type=int, default=cls.default_df, help=f"D filters (default: {cls.default_df})"
    )
    parser.add_argument("--learning-rate", type=float, default=LEARNING_RATE, help="default: 2e-4")
    parser.add_argument(
        "--frozen-bn",
        default="batch",
        choices=("batch", "moving"),
        help="BatchNorm of the frozen D in the G step: batch statistics (Keras 2) or moving",
    )
    add_common_args(parser, epochs=None, batch_size=BATCH_SIZE, sample_interval=SAMPLE_INTERVAL)
    args = parser.parse_args(argv)
    on_sample = args.dataset == "sample" and not args.data_dir
    epochs = args.epochs
    if epochs is None and args.max_steps is None:
        epochs = cls.default_sample_epochs if on_sample else cls.default_epochs
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    gan = cls(
        data_dir=args.data_dir,
        class_name=args.class_name,
        img_size=args.img_size,
        channels=args.channels,
        latent_dim=args.latent_dim,
        dataset=args.dataset,
        gf=args.gf,
        df=args.df,
        learning_rate=args.learning_rate,
        frozen_bn=args.frozen_bn,
        **runtime_kwargs(args),
    )
    summary = gan.train(epochs, args.batch_size, args.sample_interval, args.max_steps)
    print(f"done: {summary['steps']} steps in {summary['seconds']} s; outputs in {gan.output_dir}")
    return gan


def main(argv=None):
    return run_cli(
        DCGAN,
        argv,
        "python -m keras_gans.dcgan",
        "Train the report's DCGAN (ISIC melanoma / nevus, 64x64), or generate images from one.",
    )


if __name__ == "__main__":
    main()
