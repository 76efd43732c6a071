"""DCGAN on ISIC skin lesions at 64x64, and the unconditional trainer the basic GAN shares.

Radford, Metz and Chintala, "Unsupervised Representation Learning with Deep Convolutional
Generative Adversarial Networks", ICLR 2016 (arXiv:1511.06434): the report's second model, trained
on "the preprocessed images" (report 001, Sec. 3.3; 23,345 images of all diagnoses, Sec. 3.1-3.2:
``classes="all"``; the default is melanoma and nevus, the classes the harness compares). The report
does not say how it trained; the ``train_on_batch`` updates below are Keras-GAN's (our choice).

Architecture (Radford et al. Sec. 3): G projects z (100-d, N(0, 1) as in Keras-GAN) to 4x4, then
strided ``Conv2DTranspose`` + BatchNorm + ReLU up to the image, tanh out; D is strided ``Conv2D`` +
LeakyReLU(0.2), BatchNorm on every block but the first, then a sigmoid unit. Channels halve / double
per stage, weights start from N(0, 0.02), Adam(2e-4, beta_1=0.5) for both. The size (a power of two
>= 8: 32, 64, 128) sets the number of stages.

The step (Keras-GAN ``dcgan.py``): D on real images (target 1), D on fakes (target 0), then
``combined`` = D(G(z)) with target 1 and D frozen (the non-saturating loss, paper Eq. 1 and
Goodfellow et al. Sec. 3). The loop, sample grids, checkpoints, resume and the saved models
(``models/generator`` and ``models/discriminator``, ``.h5`` and ``.keras``) are
:meth:`keras_gans.training.GANTrainer.run`'s. Changed for Keras 3 and users:

* **Frozen BatchNorm.** Keras 3 runs a frozen ``BatchNormalization`` in inference mode, so inside
  ``combined`` D would normalise fakes with its moving statistics (a mix of past real and fake
  batches) while D was trained with batch statistics: G would climb another function than the one
  D learned (GANs-in-Action#14, "tf.keras DCGAN produces noise"). The default ``frozen_bn="batch"``
  keeps Keras 2's behaviour and Radford's code: in ``combined`` D's BatchNorm uses the fake batch's
  statistics with D's frozen gamma and beta and never updates the moving statistics. It is a view
  of D (:func:`batch_stats_view`: the same layers, only BatchNorm swapped), so the saved D is a
  plain Keras model. ``frozen_bn="moving"`` is Keras 3's inference mode, for comparison.
* Each compiled model has its own Adam (Keras 3 refuses a shared one).
* The fakes for the D step come from one traced G call in training mode (batch statistics, as in
  the G step and Radford's code), not Keras-GAN's ``predict``; epochs are shuffled passes seeded
  per epoch instead of random batches with replacement; the 5x5 grids use fixed noise.

``python -m keras_gans.dcgan generate`` (:mod:`keras_gans.sampling`) writes images from a saved G
for the classifier harness. :class:`DCGAN` also trains on any array (AnoGAN passes MNIST at
32x32x1) and on one class (``class_name``), as the harness trains one generator per class.
"""

import functools
import math
import os

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

from data_loaders.images import SkipReport, image_array
from data_loaders.isic import CLASSES, load_isic, resolve_isic, source_name, unconditional_dataset
from data_loaders.isic_metadata import parse_classes
from keras_gans import cli, sampling
from keras_gans.errors import ConfigError
from keras_gans.sampling import generate_images  # also dcgan.generate_images for the harness
from keras_gans.training import GANTrainer

# Radford et al.'s settings, Keras-GAN dcgan.py's updates and batch (the report states 64x64 only).
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
FROZEN_BN = ("batch", "moving")


# --- blocks -----------------------------------------------------------------------------------------
def _stages(img_size):
    """The number of stride-2 stages between 4x4 and ``img_size``."""
    n = int(round(math.log2(img_size))) - 2 if img_size > 0 else 0
    if n < 1 or 4 * 2**n != img_size:
        raise ConfigError(f"img_size must be a power of two >= 8 (32, 64, 128), got {img_size}")
    return n


def _init():
    return keras.initializers.RandomNormal(0.0, 0.02)  # Radford et al. Sec. 4


def _strided(layer, filters, name, **kwargs):
    """A 4x4 stride-2 ``Conv2D`` / ``Conv2DTranspose`` (same padding) with N(0, 0.02) weights."""
    return layer(filters, KERNEL, 2, "same", kernel_initializer=_init(), name=name, **kwargs)


def _bn(name):
    gamma = keras.initializers.RandomNormal(1.0, 0.02)
    return layers.BatchNormalization(momentum=BN_MOMENTUM, gamma_initializer=gamma, name=name)


def up_block(x, filters, name):
    """Radford's G block: ConvTranspose(4x4, stride 2) -> BatchNorm -> ReLU."""
    x = _strided(layers.Conv2DTranspose, filters, f"{name}_deconv", use_bias=False)(x)
    return layers.ReLU(name=f"{name}_relu")(_bn(f"{name}_bn")(x))


def down_block(x, filters, name, i, batch_norm=True):
    """Radford's D block: Conv(4x4, stride 2) -> [BatchNorm] -> LeakyReLU(0.2), numbered ``i``."""
    x = _strided(layers.Conv2D, filters, f"{name}_conv{i}", use_bias=not batch_norm)(x)
    if batch_norm:
        x = _bn(f"{name}_bn{i}")(x)
    return layers.LeakyReLU(negative_slope=0.2, name=f"{name}_lrelu{i}")(x)


# --- networks ---------------------------------------------------------------------------------------
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
    out = _strided(
        layers.Conv2DTranspose, channels, f"{name}_out", activation="tanh", dtype="float32"
    )
    return keras.Model(z, out(x), name=name)


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
        x, bn = ops.cast(inputs, "float32"), self.bn
        axis = bn.axis % len(x.shape)
        mean, variance = ops.moments(x, [i for i in range(len(x.shape)) if i != axis])
        y = ops.batch_normalization(x, mean, variance, axis, bn.beta, bn.gamma, bn.epsilon)
        return ops.cast(y, inputs.dtype)


def batch_stats_view(discriminator):
    """``discriminator`` with every BatchNorm normalising by batch statistics; all else shared."""
    swap = lambda layer: (
        BatchStatistics(layer) if isinstance(layer, layers.BatchNormalization) else layer
    )
    return keras.models.clone_model(discriminator, clone_function=swap)


# --- the trainer ------------------------------------------------------------------------------------
class DCGAN(GANTrainer):
    """An unconditional ``train_on_batch`` GAN (Keras-GAN ``DCGAN``); see the module docstring.

    Args:
        images: ``(n, s, s, c)`` in [-1, 1] (or a ``tf.data.Dataset`` of images, read at once) to
            train on instead of ISIC; sets ``img_size`` and ``channels``.
        data_dir: an ISIC folder (see :func:`data_loaders.isic.load_isic`); ``None``: ``dataset``.
        class_name: ``"melanoma"`` or ``"nevus"`` to train on one class; ``None``: ``classes``.
        classes: the ISIC classes to train on, ``"all"`` (every diagnosis, the report's) or a
            tuple (default melanoma and nevus); ``dedup``: see :func:`data_loaders.isic.load_isic`.
        img_size, channels, latent_dim: the image and noise shapes.
        output_dir: where images, models, logs and checkpoints go.
        seed: seeds weights, data order and noise.
        dataset: ``"sample"`` (built in, offline) or ``"isic"`` (the ``isic-cli`` download).
        gf, df: generator / discriminator filters (``None``: the model's default).
        learning_rate, beta_1: Adam for D and for ``combined``.
        frozen_bn: ``"batch"`` (Keras 2 behaviour, default) or ``"moving"`` (Keras 3's).
        **runtime: the run options of :meth:`keras_gans.training.GANTrainer.setup_runtime`.

    ISIC images are read on first use (:attr:`images`), so the models can be built without data.
    """

    name = "dcgan"
    default_epochs = EPOCHS
    default_batch_size = BATCH_SIZE
    default_sample_interval = SAMPLE_INTERVAL
    default_sample_epochs = SAMPLE_EPOCHS
    default_img_size, default_gf, default_df = IMG_SIZE, GF, DF
    generator_builder = staticmethod(build_generator)
    discriminator_builder = staticmethod(build_discriminator)
    loss_groups = {
        "discriminator": ["D_loss", "D_acc"],
        "generator": ["G_loss"],
        "FID": ["fid"],
        "mode coverage": ["mode_share", "kl_uniform"],
    }

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
        classes=CLASSES,
        dedup="lesion",
        **runtime,
    ):
        if frozen_bn not in FROZEN_BN:
            raise ConfigError(f"--frozen-bn must be 'batch' or 'moving', got {frozen_bn!r}")
        if class_name is not None and class_name not in CLASSES:
            raise ConfigError(f"--class must be one of {', '.join(CLASSES)}, got {class_name!r}")
        if images is not None:
            images = image_array(images)
            img_size, channels = images.shape[1], images.shape[3]
        elif channels not in (1, 3):
            raise ConfigError(f"--channels must be 1 or 3 for ISIC images, got {channels}")
        if latent_dim < 1:
            raise ConfigError(f"--latent-dim must be >= 1, got {latent_dim}")
        self.check_img_size(img_size)
        self.img_size, self.channels, self.latent_dim = int(img_size), int(channels), latent_dim
        self.class_name, self.frozen_bn = class_name, frozen_bn
        self.classes, self.dedup = parse_classes(classes), dedup
        self.dataset, self.data_dir = dataset, data_dir
        self.gf, self.df = gf or self.default_gf, df or self.default_df
        self.learning_rate, self.beta_1 = learning_rate, beta_1
        run = os.path.join("output", self.name, source_name(images, data_dir, dataset, class_name))
        self.setup_runtime(output_dir or run, seed=seed, **runtime)
        self._images = images
        self.data_root = "array" if images is not None else None  # set by the ISIC load
        self.class_counts = None
        self.build_models()
        self._fake = tf.function(lambda z: self.generator(z, training=True), reduce_retracing=True)
        self.fixed_z = self.noise(GRID[0] * GRID[1], 1)  # key (1,): the grids; (0, step): training

    @staticmethod
    def check_img_size(img_size):
        """Refuse, before anything is read or built, a size the builders cannot make."""
        if img_size < 8 or img_size & (img_size - 1):
            raise ConfigError(f"--img-size must be a power of two >= 8, got {img_size}")

    @property
    def images(self):
        """The training images in [-1, 1], ISIC's read (and cached by the loader) on first use."""
        if self._images is None:
            classes = (self.class_name,) if self.class_name else self.classes
            root, report = resolve_isic(self.dataset, self.data_dir), SkipReport(self.skipped_files)
            options = dict(strict=self.strict, report=report, dedup=self.dedup)
            data = load_isic(root, self.img_size, classes, **options)
            self.data_root, self.class_counts = data.root, data.counts()
            grey = self.channels == 1
            self._images = data.images.mean(axis=-1, keepdims=True) if grey else data.images
        return self._images

    def build(self):
        opt = lambda: self.make_optimizer(self.learning_rate, beta_1=self.beta_1)
        self.discriminator = self.discriminator_builder(self.img_size, self.channels, self.df)
        self.compile(
            self.discriminator, loss="binary_crossentropy", optimizer=opt(), metrics=["accuracy"]
        )
        shape = (self.img_size, self.channels)
        self.generator = self.generator_builder(self.latent_dim, *shape, self.gf)
        self.combined = self.build_combined()
        self.compile(
            self.combined, frozen=(self.discriminator,), loss="binary_crossentropy", optimizer=opt()
        )
        return {"generator": self.generator, "discriminator": self.discriminator}

    def build_combined(self):
        """z -> G -> frozen D (see "Frozen BatchNorm" in the module docstring) -> validity."""
        z = keras.Input(shape=(self.latent_dim,), name="z")
        critic = self.discriminator
        if self.frozen_bn == "batch":
            critic = batch_stats_view(self.discriminator)
        return keras.Model(z, critic(self.generator(z)), name="combined")

    def config(self):
        shape = ("img_size", "channels", "latent_dim", "gf", "df")
        return {"architecture": self.name, **{k: getattr(self, k) for k in shape}}

    # --- the declaration for GANTrainer.run ---------------------------------------------------------
    def noise(self, n, *key):
        """z ~ N(0, 1), ``(n, latent_dim)``, drawn from ``rng(*key)`` (the same key, the same z)."""
        return self.rng(*key).standard_normal((n, self.latent_dim)).astype(np.float32)

    def steps_per_epoch(self, batch_size):
        return len(self.images) // batch_size

    def batches(self, batch_size, epoch, skip):
        data = unconditional_dataset(self.images, batch_size, self.seed, epoch, skip_batches=skip)
        return data.as_numpy_iterator()

    def train_step(self, imgs):
        """Keras-GAN's order: D on real, D on fakes, then G through the frozen D."""
        valid = np.ones((len(imgs), 1), np.float32)
        fake = np.zeros_like(valid)
        z = self.noise(len(imgs), 0, self.step)
        gen_imgs = self._fake(tf.constant(z)).numpy()
        # D: log D(x) + log(1 - D(G(z))) as two BCE calls (real -> 1, fake -> 0), paper Eq. 1.
        d_real = self.update(self.discriminator, imgs, valid)
        d_fake = self.update(self.discriminator, gen_imgs, fake)
        # G: the non-saturating -log D(G(z)) (target 1), Goodfellow et al. Sec. 3.
        g = self.update(self.combined, z, valid)
        return {
            "D_loss": 0.5 * (float(d_real["loss"]) + float(d_fake["loss"])),
            "D_acc": 0.5 * (float(d_real["accuracy"]) + float(d_fake["accuracy"])),
            "G_loss": float(g["loss"]),
        }

    def sample_grid(self):
        """A 5x5 grid from the fixed noise (inference mode), comparable from step to step."""
        imgs = np.asarray(self.generator(self.fixed_z, training=False))
        return {"images": imgs, "rows": GRID[0], "cols": GRID[1]}

    def summary_info(self):
        info = {"dataset": self.data_root, "images": len(self.images)}
        names = ("class_name", "class_counts", "frozen_bn", "dedup")
        return info | {k: getattr(self, k) for k in names}

    def evaluate(self):
        """FID and KID of ``len(images)`` (at most 1000) samples against the training images; their
        mode coverage given a ``coverage_classifier`` (digits: :mod:`keras_gans.mode_coverage`)."""
        if not (self.eval_extractor or self.coverage_classifier):
            return {}
        fakes = generate_images(self.generator, min(len(self.images), 1000), seed=self.step)
        scores = self.fid_kid(self.images, fakes)
        scores = {k: v for k, v in scores.items() if k in ("fid", "kid")}
        return {**scores, **self.mode_coverage(fakes)}


# --- command line -----------------------------------------------------------------------------------
def _train_args(parser, trainer_cls):
    add = parser.add_argument
    add("--dataset", default="sample", choices=("sample", "isic"), help="ISIC source")
    add("--data-dir", default=None, help="an ISIC folder (isic-cli, HAM10000 or CSV)")
    add("--class", dest="class_name", default=None, choices=CLASSES, help="one class only")
    cli.add_isic_args(parser)
    add("--img-size", type=cli.positive_int, default=trainer_cls.default_img_size, help="pixels")
    add("--channels", type=int, default=3, choices=(1, 3), help="1: grey")
    add("--latent-dim", type=cli.positive_int, default=LATENT_DIM, help="z size")
    add("--gf", type=cli.positive_int, default=trainer_cls.default_gf, help="G filters")
    add("--df", type=cli.positive_int, default=trainer_cls.default_df, help="D filters")
    add("--learning-rate", type=cli.positive_float, default=LEARNING_RATE, help="Adam, G and D")
    add("--beta-1", type=cli.fraction, default=BETA_1, help="Adam's beta_1, G and D")
    add("--frozen-bn", default="batch", choices=FROZEN_BN, help="G step: batch (Keras 2) or moving")
    cli.add_training_args(parser, trainer_cls)
    parser.epilog = (
        f"Without --epochs or --max-steps: {trainer_cls.default_sample_epochs} epochs on the "
        f"built-in sample, {trainer_cls.default_epochs} otherwise."
    )


_MODEL_OPTIONS = (
    *("dataset", "data_dir", "class_name", "img_size", "channels", "latent_dim", "gf", "df"),
    *("learning_rate", "beta_1", "frozen_bn", "classes", "dedup"),
)


def _train(args, trainer_cls):
    on_sample = args.dataset == "sample" and not args.data_dir
    if args.epochs is None and args.max_steps is None and on_sample:
        args.epochs = trainer_cls.default_sample_epochs
    options = {name: getattr(args, name) for name in _MODEL_OPTIONS}
    return cli.train(trainer_cls(**options, **cli.runtime_kwargs(args)), args)


def train_command(trainer_cls, description):
    """The ``train`` command of an unconditional trainer (this DCGAN, :class:`keras_gans.gan.GAN`)."""
    arguments, run = (functools.partial(f, trainer_cls=trainer_cls) for f in (_train_args, _train))
    return cli.Command("train", description, arguments, run)


COMMANDS = [
    train_command(DCGAN, "Train the report's DCGAN (ISIC melanoma / nevus, 64x64)."),
    sampling.GENERATE,
]


def main(argv=None):
    return cli.main("python -m keras_gans.dcgan", __doc__.partition("\n")[0], COMMANDS, argv)


if __name__ == "__main__":
    main()
