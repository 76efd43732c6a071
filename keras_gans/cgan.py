"""Class-conditional DCGAN (cGAN) on MNIST digits or ISIC lesions, on the shared training core.

Mirza and Osindero, "Conditional Generative Adversarial Nets", arXiv:1411.1784 (2014): G and D both
see the class y, D maximises log D(x|y) + log(1 - D(G(z|y)|y)) and G the non-saturating
log D(G(z|y)|y) (paper Eq. 2). The loop is Keras-GAN ``cgan``'s: latent 100, Adam(2e-4, 0.5), BCE,
batch 32, random batches drawn with replacement, ``train_on_batch`` on D (real), D (fake), then the
``combined`` model with D frozen. The networks are a small DCGAN instead of Keras-GAN's MLP.

The label is embedded: in G the embedding is concatenated to z (keras-io ``conditional_gan`` does so
with a one-hot label) and, through a Dense layer, is a channel of the first feature map; in D it is a
channel of the input image (keras-io) and a projection term ``<embed(y), h>`` on D's features
(Miyato and Koyama, arXiv:1802.05637). With ``n_classes=None`` the same builders make a plain DCGAN
(the MNIST study trains one on the rare digit alone: our reading of the report, which does not say).

Deviations: the fakes of a D step are conditioned on the real batch's labels and the G step reuses
them (keras-io), so D cannot spot fakes by label frequency (Keras-GAN draws uniform labels, which on
a 1:300:300 set shows D a "1" that is nearly always fake); ``balanced_batches`` draws real batches
class-balanced instead. Without the projection term a small cGAN ignored the label for hundreds of
steps. D has no BatchNormalization, since a frozen Keras 3 BN runs in inference mode inside
``combined``. Batches of an epoch are keyed by ``(seed, epoch, batch)`` and an epoch is
``len(images) // batch_size`` of them (at least one: draws with replacement also work on fewer
images than a batch, such as the report's single rare digit).
"""

import argparse
import functools
import os

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from data_loaders.images import SkipReport, image_array
from data_loaders.isic import CLASSES as ISIC_CLASSES
from data_loaders.isic import load_isic
from data_loaders.mnist import load_mnist
from keras_gans import cli, sampling
from keras_gans.errors import ConfigError
from keras_gans.training import GANTrainer

# Keras-GAN cgan's settings (latent 100, Adam(2e-4, 0.5), batch 32); the DCGAN's sizes.
LATENT_DIM = 100
EMBEDDING_DIM = 50
BASE_FILTERS = 32
LEARNING_RATE = 2e-4
BETA_1 = 0.5
BATCH_SIZE = 32
EPOCHS = 25  # ~1,000 steps on the offline digits; Keras-GAN ran 20,000 steps (~11 MNIST epochs)
SAMPLE_INTERVAL = 200
IMG_SIZES = {"mnist": 28, "isic": 32}
# rng keys of the fixed sample-grid noise, the step noise, the FID fakes
_SAMPLE_KEY, _NOISE_KEY, _EVAL_KEY = 2**31 - 1, 2**31 - 2, 2**31 - 3


# --- blocks ---------------------------------------------------------------------------------------
def label_embedding(label, n_classes, dim, name):
    """An int label of shape (1,) -> a learned (1, dim) embedding."""
    return layers.Embedding(n_classes, dim, name=f"{name}_embedding")(label)


def label_map(embedding, size, name):
    """An embedding -> Dense(size*size) -> a (size, size, 1) map, concatenated as a channel."""
    e = layers.Dense(size * size, name=f"{name}_dense")(embedding)
    return layers.Reshape((size, size, 1), name=f"{name}_map")(e)


def up_block(x, filters, name):
    """Conv2DTranspose(k4, s2) -> BatchNormalization(0.8) -> LeakyReLU(0.2): doubles H and W."""
    x = layers.Conv2DTranspose(filters, 4, strides=2, padding="same", name=f"{name}_convT")(x)
    x = layers.BatchNormalization(momentum=0.8, name=f"{name}_bn")(x)
    return layers.LeakyReLU(negative_slope=0.2, name=f"{name}_lrelu")(x)


def down_block(x, filters, name):
    """Conv2D(k4, s2) -> LeakyReLU(0.2): halves H and W."""
    x = layers.Conv2D(filters, 4, strides=2, padding="same", name=f"{name}_conv")(x)
    return layers.LeakyReLU(negative_slope=0.2, name=f"{name}_lrelu")(x)


# --- networks -------------------------------------------------------------------------------------
def build_generator(
    latent_dim=LATENT_DIM,
    n_classes=None,
    img_size=28,
    channels=1,
    base_filters=BASE_FILTERS,
    embedding_dim=EMBEDDING_DIM,
    name="generator",
):
    """[z (+ label embedding)] -> Dense -> (s/4)^2 x 4f [+ label map] -> up 2f -> up f ->
    Conv(k7, tanh). Inputs ``[z, label]`` (int, shape (1,)) when ``n_classes``, else z."""
    if img_size % 4 or img_size < 4:
        raise ConfigError(f"--img-size must be a multiple of 4, got {img_size}")
    s = img_size // 4
    z = keras.Input(shape=(latent_dim,), name=f"{name}_z")
    x, inputs = z, z
    if n_classes:
        label = keras.Input(shape=(1,), dtype="int32", name=f"{name}_label")
        inputs = [z, label]
        e = label_embedding(label, n_classes, embedding_dim, f"{name}_label")
        x = layers.Concatenate(name=f"{name}_z_label")([z, layers.Flatten(name=f"{name}_e")(e)])
    x = layers.Dense(s * s * base_filters * 4, name=f"{name}_project")(x)
    x = layers.LeakyReLU(negative_slope=0.2, name=f"{name}_project_lrelu")(x)
    x = layers.Reshape((s, s, base_filters * 4), name=f"{name}_reshape")(x)
    if n_classes:
        x = layers.Concatenate(name=f"{name}_condition")([x, label_map(e, s, f"{name}_label")])
    x = up_block(x, base_filters * 2, f"{name}_up1")
    x = up_block(x, base_filters, f"{name}_up2")
    out = layers.Conv2D(
        channels, 7, padding="same", activation="tanh", dtype="float32", name=f"{name}_out"
    )
    return keras.Model(inputs, out(x), name=name)


def build_discriminator(
    n_classes=None,
    img_size=28,
    channels=1,
    base_filters=BASE_FILTERS,
    embedding_dim=EMBEDDING_DIM,
    name="discriminator",
):
    """image [+ label map] -> down f -> down 2f -> Dropout(0.4) -> logit [+ projection
    <embed(y), h>] -> sigmoid. Inputs ``[image, label]`` when ``n_classes``."""
    img = keras.Input(shape=(img_size, img_size, channels), name=f"{name}_image")
    x, inputs = img, img
    if n_classes:
        label = keras.Input(shape=(1,), dtype="int32", name=f"{name}_label")
        inputs = [img, label]
        e = label_embedding(label, n_classes, embedding_dim, f"{name}_label")
        x = layers.Concatenate(name=f"{name}_condition")(
            [img, label_map(e, img_size, f"{name}_label")]
        )
    x = down_block(x, base_filters, f"{name}_down1")
    x = down_block(x, base_filters * 2, f"{name}_down2")
    h = layers.Flatten(name=f"{name}_flatten")(x)
    h = layers.Dropout(0.4, name=f"{name}_dropout")(h)
    logit = layers.Dense(1, name=f"{name}_logit")(h)
    if n_classes:
        w = label_embedding(label, n_classes, h.shape[-1], f"{name}_projection")
        w = layers.Flatten(name=f"{name}_projection_flat")(w)
        proj = layers.Dot(axes=1, name=f"{name}_projection")([w, h])
        logit = layers.Add(name=f"{name}_logit_projection")([logit, proj])
    validity = layers.Activation("sigmoid", dtype="float32", name=f"{name}_validity")(logit)
    return keras.Model(inputs, validity, name=name)


def build_combined(generator, discriminator, latent_dim, conditional):
    """D(G(z|y)|y), trained with D frozen and target 1: G's non-saturating loss (paper Eq. 2)."""
    z = keras.Input(shape=(latent_dim,), name="z")
    if not conditional:
        return keras.Model(z, discriminator(generator(z)), name="combined")
    label = keras.Input(shape=(1,), dtype="int32", name="label")
    return keras.Model([z, label], discriminator([generator([z, label]), label]), name="combined")


# --- the trainer ----------------------------------------------------------------------------------
class CGAN(GANTrainer):
    """A DCGAN on ``images``, class-conditional when ``n_classes`` is given; see the module.

    Args:
        images: float images ``(n, s, s, c)`` in [-1, 1], ``s`` a multiple of 4.
        labels: class indices ``0 .. n_classes-1``, one per image (conditional only).
        n_classes: number of classes; ``None`` trains an unconditional GAN on all of ``images``.
        class_names: names of the classes, the rows of the sample grid.
        latent_dim, base_filters, embedding_dim: model sizes.
        learning_rate, beta_1: Adam settings of both compiled models.
        balanced_batches: draw real batches class-balanced instead of uniformly from the set.
        output_dir: where images, models, logs and checkpoints go.
        seed: seeds weights, batches and noise.
        **runtime: see :meth:`keras_gans.training.GANTrainer.setup_runtime`.
    """

    name = "cgan"
    default_epochs = EPOCHS
    default_batch_size = BATCH_SIZE
    default_sample_interval = SAMPLE_INTERVAL
    loss_groups = {
        "discriminator": ["D_loss", "D_acc"],
        "generator": ["G_loss"],
        "FID": ["fid"],
        "mode coverage": ["mode_share", "kl_uniform", "label_match"],
    }

    def __init__(
        self,
        images,
        labels=None,
        n_classes=None,
        class_names=None,
        latent_dim=LATENT_DIM,
        base_filters=BASE_FILTERS,
        embedding_dim=EMBEDDING_DIM,
        learning_rate=LEARNING_RATE,
        beta_1=BETA_1,
        balanced_batches=False,
        output_dir=None,
        seed=None,
        **runtime,
    ):
        self.images = image_array(images)
        self.n_classes = int(n_classes) if n_classes else None
        self.labels = None
        if self.n_classes:
            if labels is None or len(labels) != len(self.images):
                raise ConfigError("a conditional GAN (n_classes) needs one label per image")
            self.labels = np.asarray(labels, np.int32).reshape(-1, 1)
            if self.labels.min() < 0 or self.labels.max() >= self.n_classes:
                raise ConfigError(f"labels must be class indices in [0, {self.n_classes})")
        elif balanced_batches:
            raise ConfigError("--balanced-batches needs a class-conditional GAN")
        if class_names is not None and self.n_classes and len(class_names) != self.n_classes:
            raise ConfigError(f"{len(class_names)} class names for {self.n_classes} classes")
        self.class_names = [str(c) for c in class_names] if class_names is not None else None
        self.latent_dim, self.base_filters = int(latent_dim), int(base_filters)
        self.embedding_dim = int(embedding_dim)
        self.learning_rate, self.beta_1 = learning_rate, beta_1
        self.balanced_batches = bool(balanced_batches)
        self.name = "cgan" if self.n_classes else "gan"
        if self.balanced_batches:
            self._groups = [np.flatnonzero(self.labels[:, 0] == c) for c in np.unique(self.labels)]
        self.setup_runtime(output_dir or os.path.join("output", "cgan"), seed=seed, **runtime)
        self.build_models()
        self._forward = sampling.sample_function(self.generator)

    @property
    def conditional(self):
        return bool(self.n_classes)

    def build(self):
        n, (size, channels) = self.n_classes, (self.images.shape[1], self.images.shape[3])
        dims = (self.base_filters, self.embedding_dim)
        self.discriminator = build_discriminator(n, size, channels, *dims)
        self.generator = build_generator(self.latent_dim, n, size, channels, *dims)
        opt = lambda: self.make_optimizer(self.learning_rate, beta_1=self.beta_1)
        bce = "binary_crossentropy"
        self.compile(self.discriminator, loss=bce, optimizer=opt(), metrics=["accuracy"])
        self.combined = build_combined(self.generator, self.discriminator, self.latent_dim, n)
        self.compile(self.combined, frozen=(self.discriminator,), loss=bce, optimizer=opt())
        return {"generator": self.generator, "discriminator": self.discriminator}

    def config(self):
        names = ("n_classes", "latent_dim", "base_filters", "embedding_dim")
        return {"img_shape": self.images.shape[1:], **{k: getattr(self, k) for k in names}}

    def summary_info(self):
        info = {"conditional": self.conditional, "classes": self.class_names}
        return {**info, "images": len(self.images), "balanced_batches": self.balanced_batches}

    # --- the report's step ----------------------------------------------------------------------
    def _inputs(self, x, labels):
        return [x, labels] if self.conditional else x

    def generate(self, noise, labels=None):
        """G(z | y) as a NumPy array (inference mode, one traced forward)."""
        inputs = self._inputs(tf.constant(noise), None if labels is None else tf.constant(labels))
        return np.asarray(self._forward(inputs))

    def d_step(self, imgs, labels, noise):
        """D on a real batch, then on G's fakes for the same labels; returns its log values."""
        valid, fake = np.ones((len(imgs), 1), np.float32), np.zeros((len(imgs), 1), np.float32)
        gen_imgs = self.generate(noise, labels)
        # D maximises log D(x|y) + log(1 - D(G(z|y)|y)), paper Eq. 2; real, fake in separate calls
        d_real = self.update(self.discriminator, self._inputs(imgs, labels), valid)
        d_fake = self.update(self.discriminator, self._inputs(gen_imgs, labels), fake)
        loss, acc = (0.5 * (float(d_real[k]) + float(d_fake[k])) for k in ("loss", "accuracy"))
        return {"D_loss": loss, "D_acc": acc}

    def g_step(self, noise, labels):
        """G through the frozen D, targets "valid": the non-saturating -log D(G(z|y)|y)."""
        valid = np.ones((len(noise), 1), np.float32)
        logs = self.update(self.combined, self._inputs(noise, labels), valid)
        return {"G_loss": float(logs["loss"])}

    # --- the declaration for GANTrainer.run -----------------------------------------------------
    def steps_per_epoch(self, batch_size):
        return max(1, len(self.images) // batch_size)

    def draw(self, rng, batch_size):
        """Indices of one real batch: uniform with replacement (Keras-GAN), or class-balanced."""
        if not self.balanced_batches:
            return rng.integers(0, len(self.images), batch_size)
        groups = rng.integers(0, len(self._groups), batch_size)
        return np.array([self._groups[g][rng.integers(len(self._groups[g]))] for g in groups])

    def batches(self, batch_size, epoch, skip):
        for i in range(skip, self.steps_per_epoch(batch_size)):
            idx = self.draw(self.rng(epoch, i), batch_size)
            yield self.images[idx], (self.labels[idx] if self.conditional else None)

    def train_step(self, batch):
        """The report's order: D real, D fake, then the combined model; noise keyed by the step."""
        imgs, labels = batch
        noise = self.rng(_NOISE_KEY, self.step).standard_normal((len(imgs), self.latent_dim))
        noise = noise.astype(np.float32)
        return {**self.d_step(imgs, labels, noise), **self.g_step(noise, labels)}

    def sample_grid(self, cols=8):
        """Fixed noise: one row per class (conditional), or 4 rows."""
        rows = self.n_classes or 4
        noise = self.rng(_SAMPLE_KEY).standard_normal((rows * cols, self.latent_dim))
        labels = np.repeat(np.arange(rows, dtype=np.int32), cols)[:, None]
        images = self.generate(noise.astype(np.float32), labels if self.conditional else None)
        names = self.class_names if self.conditional else None
        return {"images": images, "rows": rows, "cols": cols, "row_labels": names}

    def evaluate(self):
        """FID and KID of fakes (labels drawn as in the data) vs the data (``eval_extractor``);
        their mode coverage (``coverage_classifier``, :mod:`keras_gans.mode_coverage`)."""
        if not (self.eval_extractor or self.coverage_classifier):
            return {}
        n = min(len(self.images), 1000)
        rng = self.rng(_EVAL_KEY)
        noise = rng.standard_normal((n, self.latent_dim)).astype(np.float32)
        labels = self.labels[rng.integers(0, len(self.images), n)] if self.conditional else None
        fakes = self.generate(noise, labels)
        scores = self.fid_kid(self.images, fakes)
        scores = {k: v for k, v in scores.items() if k in ("fid", "kid")}
        return {**scores, **self.mode_coverage(fakes, labels)}


# --- command line ---------------------------------------------------------------------------------
def digit_list(text):
    """``--digits``: comma-separated digits, e.g. ``1,2,3``."""
    try:
        return [int(d) for d in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected digits such as 1,2,3, got {text!r}") from None


def load_data(
    dataset, data_dir=None, img_size=None, digits=None, strict=False, report=None, **isic
):
    """``(images, labels, class names)`` of ``--dataset``: MNIST ``digits`` (default all ten;
    labels index ``digits``) or ISIC (the built-in sample without ``data_dir``; ``isic``:
    ``classes``, default melanoma / nevus, and ``dedup`` of :func:`data_loaders.isic.load_isic`)."""
    img_size = img_size or IMG_SIZES[dataset]
    if dataset == "isic":
        classes = isic.pop("classes", None) or ISIC_CLASSES
        data = load_isic(data_dir, img_size, classes, strict=strict, report=report, **isic)
        return data.images, data.labels, list(data.class_names)
    if dataset != "mnist":
        raise ConfigError(f"--dataset must be 'mnist' or 'isic', got {dataset!r}")
    x, y = load_mnist(data_dir, "train", size=img_size, strict=strict, report=report)
    digits = sorted(set(y.tolist())) if digits is None else [int(d) for d in digits]
    missing = sorted(set(digits) - set(y.tolist()))
    if missing or len(set(digits)) != len(digits):
        raise ConfigError(f"--digits {digits}: repeated, or no images of {missing}")
    keep = np.isin(y, digits)
    index = {d: i for i, d in enumerate(digits)}
    return x[keep], np.array([index[d] for d in y[keep]], np.int64), [str(d) for d in digits]


def _train_args(parser):
    add = parser.add_argument
    add("--dataset", default="mnist", choices=tuple(IMG_SIZES), help="digits or skin lesions")
    add(
        "--data-dir",
        default=None,
        help="mnist: IDX folder, mnist.npz, PNG digit folders or 'keras' (none: scikit-learn's "
        "digits, offline); isic: an ISIC folder (none: the built-in sample)",
    )
    add("--digits", type=digit_list, default=None, help="mnist: digits to learn, e.g. 1,2,3")
    cli.add_isic_args(parser)
    add("--img-size", type=cli.positive_int, default=None, help="a multiple of 4 (default 28/32)")
    add("--unconditional", action="store_true", help="a plain DCGAN: no label")
    add("--balanced-batches", action="store_true", help="class-balanced real batches")
    add("--latent-dim", type=cli.positive_int, default=LATENT_DIM, help="size of z")
    add("--base-filters", type=cli.positive_int, default=BASE_FILTERS, help="filters of G/D")
    add("--embedding-dim", type=cli.positive_int, default=EMBEDDING_DIM, help="label embedding")
    add("--learning-rate", type=cli.positive_float, default=LEARNING_RATE, help="Adam, G and D")
    add(
        "--coverage-classifier",
        default=None,
        help="mnist, with --eval-every: the digit classifier (.h5 / .keras) that scores mode "
        "coverage (none: one trained on --data-dir's train split, cached)",
    )
    cli.add_training_args(parser, CGAN)


def _train(args):
    report = SkipReport()
    isic = {"classes": args.classes, "dedup": args.dedup} if args.dataset == "isic" else {}
    images, labels, names = load_data(
        args.dataset, args.data_dir, args.img_size, args.digits, args.strict, report, **isic
    )
    runtime = cli.runtime_kwargs(args)
    runtime["output_dir"] = args.output_dir or os.path.join("output", "cgan", args.dataset)
    options = ("latent_dim", "base_filters", "embedding_dim", "learning_rate", "balanced_batches")
    runtime.update({name: getattr(args, name) for name in options})
    if args.coverage_classifier and not (args.dataset == "mnist" and args.eval_every):
        raise ConfigError(
            "--coverage-classifier scores digits: give --dataset mnist --eval-every N"
        )
    if args.dataset == "mnist" and args.eval_every:
        from keras_gans import mode_coverage  # the measurement, only when asked for

        runtime["coverage_classes"] = [int(d) for d in names]  # the labels index these digits
        runtime["coverage_classifier"] = args.coverage_classifier or functools.partial(
            mode_coverage.digit_classifier, args.data_dir
        )
    if args.unconditional:
        gan = CGAN(images, **runtime)
    else:
        gan = CGAN(images, labels, len(names), names, **runtime)
    gan.skipped_files.extend(report.skipped)
    return cli.train(gan, args)


COMMANDS = [
    cli.Command("train", "Train the cGAN on MNIST digits or ISIC lesions.", _train_args, _train),
    sampling.GENERATE,
]


def main(argv=None):
    return cli.main("python -m keras_gans.cgan", __doc__.partition("\n")[0], COMMANDS, argv)


if __name__ == "__main__":
    main()
