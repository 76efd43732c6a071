"""Semi-supervised GAN (SGAN) on MNIST: D is a K-class classifier that also tells real from fake.

Odena, "Semi-Supervised Learning with Generative Adversarial Networks", arXiv:1606.01583 (2016): D
has K + 1 outputs, the K classes and "fake". Salimans et al., "Improved Techniques for Training
GANs", arXiv:1606.03498 (2016), Sec. 5: fix the fake logit at 0, so D's K logits l(x) are a plain
classifier and D(x) = Z(x) / (Z(x) + 1) with Z(x) = sum_k exp(l_k(x)), i.e. D(x) = sigmoid(lse(l(x)))
(lse: log-sum-exp; :mod:`keras_gans.losses`). D minimises

    L_sup   = -E_(x,y)~labelled log softmax(l(x))_y,
    L_unsup = -E_x~unlabelled log D(x) - E_z log(1 - D(G(z)))

(halves weighted 0.5, as Salimans' code); G matches the mean of D's last hidden layer f on real data,
||E f(x) - E f(G(z))||^2 (feature matching, Sec. 3.1, default) or minimises -log D(G(z)).

The networks and settings are Salimans' MNIST ones (``train_mnist_feature_matching.py``): G is
z -> 500 -> 500 (softplus, BatchNorm) -> the image (tanh here, for [-1, 1]); D is Gaussian noise
(std 0.3 of [0, 1] pixels, so 0.6 here) -> ReLU layers 1000-500-250-250-250, each followed by
Gaussian noise of std 0.5 -> K logits; Adam(3e-3, beta_1 0.5, the code's epsilon), batch 100
labelled + 100 unlabelled + 100 fakes, the labelled set repeated to fill every epoch, a second
unlabelled batch for the G step.

D's layers are weight-normalised (:class:`keras_gans.layers.WeightNormDense`), their directions
drawn from N(0, 0.1) (the code's ``theta``), with the data-dependent init on 500 unlabelled images,
as in that code. That code also keeps a moving average of D's parameters (``disc_avg_updates``,
rate 1e-4) and tests the average (``disc_avg_givens``); here ``d_average`` is that average
(:mod:`keras_gans.averaging`) and classifies in :meth:`SGAN.score`.

Deviations: G's output layer is a plain Dense, z ~ N(0, 1) instead of U(0, 1) (as every keras_gans
generator), the unlabelled set is every training image not in the labelled subset (the paper uses
all) and an epoch is one pass over it; the average starts at D's initial weights with a warm-up
decay, where the code's starts at zero, which a run of a few thousand steps would not outgrow. D's
fakes come from G in training mode (BatchNorm on batch statistics, as in the G step and the paper).
"""

import argparse
import importlib
import os

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from data_loaders.images import image_array
from data_loaders.mnist import load_mnist
from keras_gans import cli, evaluation, sampling
from keras_gans.averaging import WeightAverage, warmup_decay
from keras_gans.errors import ConfigError
from keras_gans.layers import WeightNormDense
from keras_gans.losses import feature_matching_loss, real_fake_loss
from keras_gans.training import GANTrainer

# Salimans et al.'s MNIST setting.
LATENT_DIM = 100
G_UNITS = (500, 500)
D_UNITS = (1000, 500, 250, 250, 250)
INPUT_NOISE = 0.6  # std 0.3 on [0, 1] pixels = 0.6 on [-1, 1]
HIDDEN_NOISE = 0.5
# The code's theta ~ N(0, 0.1). Under weight norm the directions' scale is Adam's step size: each
# step turns v by about lr / std, so N(0, 0.05) doubles it (full MNIST, seed 0, 6,000 steps: 95.5%
# against 89.9% at its peak, after which the smaller init declined).
D_KERNEL_STD = 0.1
LEARNING_RATE = 3e-3
BETA_1 = 0.5
# The code's Adam divides by sqrt(v + 1e-8) where Keras divides by sqrt(v) + epsilon: the same
# where v is large, a floor of 1e-4 where a gradient has died out (e.g. L_sup once the labels fit).
ADAM_EPSILON = 1e-4
BATCH_SIZE = 100
LABELS_PER_CLASS = 10
AVERAGE_DECAY = 0.9999  # the code's a += 1e-4 * (p - a); 0: classify with D itself
EPOCHS = 30  # 2,070 steps on the 6,900 unlabelled digits of mnist_dev; Salimans ran 300 epochs
SAMPLE_INTERVAL = 500
INIT_BATCH = 500  # unlabelled images of D's data-dependent init
G_LOSSES = ("feature-matching", "non-saturating")
# rng keys: the labelled subset, the step noise, the fixed sample-grid noise, D's init images
_STUDY = "keras_gans.experiments.sgan_study"  # python -m keras_gans.sgan compare
_LABEL_KEY, _NOISE_KEY, _SAMPLE_KEY, _INIT_KEY = 2**31 - 1, 2**31 - 2, 2**31 - 3, 2**31 - 4


# --- networks -------------------------------------------------------------------------------------
def parse_units(text):
    """``--d-units`` / ``--g-units``: comma-separated layer widths, e.g. ``1000,500,250``."""
    units = tuple(int(u) if u.strip().isdigit() else 0 for u in text.split(","))
    if min(units) < 1:
        raise argparse.ArgumentTypeError(f"expected widths such as 500,250, got {text!r}")
    return units


def build_generator(
    latent_dim=LATENT_DIM, units=G_UNITS, img_size=28, channels=1, name="generator"
):
    """z -> [Dense(u) -> softplus -> BatchNorm] per width -> Dense(s*s*c, tanh) -> the image."""
    z = keras.Input(shape=(latent_dim,), name=f"{name}_z")
    x = z
    for i, u in enumerate(units, 1):
        x = layers.Dense(u, activation="softplus", name=f"{name}_dense{i}")(x)
        x = layers.BatchNormalization(name=f"{name}_bn{i}")(x)
    x = layers.Dense(img_size * img_size * channels, activation="tanh", name=f"{name}_out")(x)
    img = layers.Reshape((img_size, img_size, channels), dtype="float32", name=f"{name}_image")(x)
    return keras.Model(z, img, name=name)


def _d_init():
    """A fresh initializer per layer (a shared unseeded one may repeat its draws)."""
    return keras.initializers.RandomNormal(0.0, D_KERNEL_STD)


def build_discriminator(
    n_classes=10,
    units=D_UNITS,
    img_size=28,
    channels=1,
    input_noise=INPUT_NOISE,
    hidden_noise=HIDDEN_NOISE,
    name="discriminator",
):
    """image -> GaussianNoise -> [Dense(u, ReLU) -> GaussianNoise] per width -> K logits.

    The last hidden layer is f of feature matching (:func:`feature_model`). There is no fake
    output: D(x) is :func:`keras_gans.losses.real_probability` of the logits.
    """
    if n_classes < 2:
        raise ConfigError(f"a classifier needs at least 2 classes, got {n_classes}")
    img = keras.Input(shape=(img_size, img_size, channels), name=f"{name}_image")
    x = layers.Flatten(name=f"{name}_flatten")(img)
    x = layers.GaussianNoise(input_noise, name=f"{name}_input_noise")(x)
    for i, u in enumerate(units, 1):
        x = WeightNormDense(u, "relu", kernel_initializer=_d_init(), name=f"{name}_dense{i}")(x)
        x = layers.GaussianNoise(hidden_noise, name=f"{name}_noise{i}")(x)
    logits = WeightNormDense(
        n_classes, kernel_initializer=_d_init(), dtype="float32", name=f"{name}_logits"
    )(x)
    return keras.Model(img, logits, name=name)


def feature_model(discriminator):
    """D's last hidden layer f(x) as a model sharing D's layers (feature matching's statistics)."""
    hidden = [layer for layer in discriminator.layers if isinstance(layer, WeightNormDense)][-2]
    return keras.Model(discriminator.inputs, hidden.output, name="features")


def data_init(discriminator, images):
    """Salimans' data-dependent init of D: its weight-normed layers, first to last, get the g and b
    that give ``images`` unit-variance, zero-mean pre-activations (noise off)."""
    for layer in [la for la in discriminator.layers if isinstance(la, WeightNormDense)]:
        inputs = keras.Model(discriminator.inputs[0], layer.input)(images, training=False)
        layer.data_init(inputs)


def average_model(discriminator, shape):
    """A frozen copy of ``discriminator`` (built by ``build_discriminator(*shape)``), its weights
    equal, to hold their moving average (``d_average``)."""
    average = build_discriminator(*shape, name="d_average")
    average.set_weights(discriminator.get_weights())
    average.trainable = False  # changed only by the average
    return average


def label_subset(labels, per_class, rng):
    """Indices of ``per_class`` examples of every class in ``labels``, drawn by ``rng``, sorted."""
    labels = np.asarray(labels).ravel()
    chosen = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        if len(idx) < per_class:
            raise ConfigError(f"--labels-per-class {per_class}: class {c} has {len(idx)} images")
        chosen.append(rng.choice(idx, per_class, replace=False))
    return np.sort(np.concatenate(chosen))


def predict_logits(model, images, batch_size=500):
    """The logits of ``images`` (inference mode: no noise), one traced forward per batch."""
    forward = sampling.sample_function(model)
    chunks = [
        forward(tf.constant(images[i : i + batch_size])) for i in range(0, len(images), batch_size)
    ]
    return np.concatenate([np.asarray(c) for c in chunks])


def classifier_metrics(model, images, labels):
    """``{"accuracy", "prediction_check"}`` of argmax logits on a labelled test set."""
    pred = predict_logits(model, np.asarray(images, np.float32)).argmax(axis=1)
    labels, k = np.asarray(labels).ravel(), model.outputs[0].shape[-1]
    check = evaluation.prediction_check(labels, pred, k)
    return {"accuracy": float(np.mean(pred == labels)), "prediction_check": check}


# --- the trainer ----------------------------------------------------------------------------------
class SGAN(GANTrainer):
    """Semi-supervised GAN on ``images`` of which ``labels_per_class`` per class keep their label.

    Args:
        images: float images ``(n, s, s, c)`` in [-1, 1]; labels: their classes ``0 .. K-1``.
        labels_per_class: labelled images per class, drawn by ``rng(seed)``; the rest are unlabelled.
        test: optional ``(images, labels)``, scored by :meth:`evaluate` and in ``summary.json``.
        g_loss: ``"feature-matching"`` (Salimans, default) or ``"non-saturating"``.
        latent_dim, g_units, d_units, input_noise, hidden_noise: model sizes.
        learning_rate, beta_1: Adam settings of both compiled models.
        average_decay: decay of ``d_average``, the moving average of D that classifies.
        output_dir, seed, **runtime: see :meth:`keras_gans.training.GANTrainer.setup_runtime`.
    """

    name = "sgan"
    default_epochs = EPOCHS
    default_batch_size = BATCH_SIZE
    default_sample_interval = SAMPLE_INTERVAL
    loss_groups = {"discriminator": ["D_sup", "D_unsup"], "generator": ["G_loss"]}
    loss_groups["accuracy"] = ["D_acc_labelled", "test_accuracy"]

    def __init__(
        self,
        images,
        labels,
        labels_per_class=LABELS_PER_CLASS,
        test=None,
        g_loss="feature-matching",
        latent_dim=LATENT_DIM,
        g_units=G_UNITS,
        d_units=D_UNITS,
        input_noise=INPUT_NOISE,
        hidden_noise=HIDDEN_NOISE,
        learning_rate=LEARNING_RATE,
        beta_1=BETA_1,
        average_decay=AVERAGE_DECAY,
        output_dir=None,
        seed=None,
        **runtime,
    ):
        self.images = image_array(images)
        labels = np.asarray(labels).ravel()
        if len(labels) != len(self.images) or labels.min() < 0:
            raise ConfigError("SGAN needs one class index >= 0 per image")
        if g_loss not in G_LOSSES:
            raise ConfigError(f"--g-loss must be one of {', '.join(G_LOSSES)}, got {g_loss!r}")
        if labels_per_class < 1:
            raise ConfigError(f"--labels-per-class must be >= 1, got {labels_per_class}")
        self.n_classes = int(labels.max()) + 1
        self.labels_per_class, self.g_loss = int(labels_per_class), g_loss
        self.latent_dim, self.g_units = int(latent_dim), tuple(g_units)
        self.d_units = tuple(d_units)
        self.input_noise, self.hidden_noise = float(input_noise), float(hidden_noise)
        self.learning_rate, self.beta_1 = learning_rate, beta_1
        if not 0.0 <= average_decay < 1.0:
            raise ConfigError(f"--average-decay must be in [0, 1), got {average_decay}")
        self.average_decay = float(average_decay)
        self.test = None if test is None else (np.asarray(test[0], np.float32), np.asarray(test[1]))
        self.setup_runtime(output_dir or os.path.join("output", "sgan"), seed=seed, **runtime)
        self.labelled = label_subset(labels, self.labels_per_class, self.rng(_LABEL_KEY))
        self.unlabelled = np.setdiff1d(np.arange(len(labels)), self.labelled)
        self.labels = labels.astype(np.int32)
        self.build_models()
        self.average = WeightAverage([self.d_average], [self.discriminator], self.run_eagerly)
        train_mode = lambda m: tf.function(lambda x: m(x, training=True), reduce_retracing=True)
        self._fake, self._real_features = train_mode(self.generator), train_mode(self.features)

    def build(self):
        size, channels = self.images.shape[1], self.images.shape[3]
        shape = (self.n_classes, self.d_units, size, channels, self.input_noise, self.hidden_noise)
        # D first: the supervised-only arm of the study builds the same D from the same seed.
        self.discriminator = build_discriminator(*shape)
        init = self.rng(_INIT_KEY).choice(self.unlabelled, min(INIT_BATCH, len(self.unlabelled)))
        data_init(self.discriminator, self.images[np.sort(init)])
        self.d_average = average_model(self.discriminator, shape)
        self.generator = build_generator(self.latent_dim, self.g_units, size, channels)
        self.features = feature_model(self.discriminator)
        adam = {"beta_1": self.beta_1, "epsilon": ADAM_EPSILON}
        opt = lambda: self.make_optimizer(self.learning_rate, **adam)
        # D's update: labelled, unlabelled and fake batches through the one D (L_sup + L_unsup).
        parts = {"sup": "labelled", "real": "real", "fake": "fake"}
        ins = [keras.Input((size, size, channels), name=f"{n}_images") for n in parts.values()]
        outs = [layers.Identity(name=n)(self.discriminator(x)) for n, x in zip(parts, ins)]
        self.d_train = keras.Model(ins, outs, name="d_train")
        ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        self.compile(
            self.d_train,
            loss=[ce, real_fake_loss, real_fake_loss],
            loss_weights=[1.0, 0.5, 0.5],
            optimizer=opt(),
            metrics=[["sparse_categorical_accuracy"], [], []],
        )
        # G's update through the frozen D: its features (feature matching) or D(G(z)).
        z = keras.Input(shape=(self.latent_dim,), name="z")
        if self.g_loss == "feature-matching":
            self.combined = keras.Model(z, self.features(self.generator(z)), name="combined")
            loss = feature_matching_loss
        else:
            self.combined = keras.Model(z, self.discriminator(self.generator(z)), name="combined")
            loss = real_fake_loss
        self.compile(self.combined, frozen=(self.discriminator,), loss=loss, optimizer=opt())
        models = {"generator": self.generator, "discriminator": self.discriminator}
        return {**models, "d_average": self.d_average}

    def config(self):
        names = ("n_classes", "latent_dim", "g_units", "d_units", "g_loss", "labels_per_class")
        names += ("average_decay",)
        return {"img_shape": self.images.shape[1:], **{k: getattr(self, k) for k in names}}

    # --- the declaration for GANTrainer.run -----------------------------------------------------
    def noise(self, n, *key):
        return self.rng(*key).standard_normal((n, self.latent_dim)).astype(np.float32)

    def steps_per_epoch(self, batch_size):
        return len(self.unlabelled) // batch_size

    def batches(self, batch_size, epoch, skip):
        """Salimans' epoch: the unlabelled set in a seeded order (twice: D's and G's batches) and
        the labelled subset repeated, reshuffled each time, to give one labelled batch per step."""
        rng, n = self.rng(epoch), self.steps_per_epoch(batch_size)
        unl, unl2 = (self.unlabelled[rng.permutation(len(self.unlabelled))] for _ in range(2))
        repeats = -(-n * batch_size // len(self.labelled))
        lab = np.concatenate(
            [self.labelled[rng.permutation(len(self.labelled))] for _ in range(repeats)]
        )
        for i in range(skip, n):
            s = slice(i * batch_size, (i + 1) * batch_size)
            x_lab, y_lab = self.images[lab[s]], self.labels[lab[s]]
            yield x_lab, y_lab, self.images[unl[s]], self.images[unl2[s]]

    def train_step(self, batch):
        """D on labelled + unlabelled + fake batches (changes D only: the fakes are made first),
        then G through the frozen D on a second unlabelled batch (changes G only)."""
        x_lab, y_lab, x_unl, x_unl2 = batch
        n = len(x_unl)
        z_d, z_g = np.split(self.noise(2 * n, _NOISE_KEY, self.step), 2)
        fakes = np.asarray(self._fake(tf.constant(z_d)))
        ones, zeros = np.ones((n, 1), np.float32), np.zeros((n, 1), np.float32)
        d = self.update(self.d_train, [x_lab, x_unl, fakes], [y_lab, ones, zeros])
        self.average.update(warmup_decay(self.average_decay, self.step))
        # G: mean features of a second real batch (feature matching), or "real" (-log D(G(z))).
        fm = self.g_loss == "feature-matching"
        target = np.asarray(self._real_features(tf.constant(x_unl2))) if fm else ones
        g = self.update(self.combined, z_g, target)
        logs = {"D_sup": d["sup_loss"], "D_unsup": 0.5 * (d["real_loss"] + d["fake_loss"])}
        logs.update(D_acc_labelled=d["sup_sparse_categorical_accuracy"], G_loss=g["loss"])
        return {k: float(v) for k, v in logs.items()}

    def sample_grid(self, rows=10, cols=10):
        """G's images from fixed noise (inference mode), comparable from step to step."""
        z = self.noise(rows * cols, _SAMPLE_KEY)
        images = np.asarray(sampling.sample_function(self.generator)(tf.constant(z)))
        return {"images": images, "rows": rows, "cols": cols}

    # --- classification -------------------------------------------------------------------------
    def classify(self, images):
        """Class indices of ``images`` (argmax of averaged D's K logits, inference mode)."""
        return predict_logits(self.d_average, np.asarray(images, np.float32)).argmax(axis=1)

    def score(self, images=None, labels=None):
        """Accuracy and :func:`keras_gans.evaluation.prediction_check` of ``d_average`` (default: the
        test set)."""
        if images is None and self.test is None:
            return {}
        images, labels = (images, labels) if images is not None else self.test
        return classifier_metrics(self.d_average, images, labels)

    def evaluate(self):
        metrics = self.score()
        values = {"test_accuracy": metrics["accuracy"]} if metrics else {}
        if self.coverage_classifier is not None:  # digits G draws: keras_gans.mode_coverage
            z = tf.constant(self.noise(1000, _SAMPLE_KEY, 1))
            values.update(self.mode_coverage(sampling.sample_function(self.generator)(z).numpy()))
        return values

    def summary_info(self):
        info = {"labelled": len(self.labelled), "unlabelled": len(self.unlabelled)}
        info["labelled_indices"] = self.labelled.tolist()
        metrics = self.score()
        if metrics:
            info.update(test_images=len(self.test[1]), test_accuracy=metrics["accuracy"])
            info["prediction_check"] = metrics["prediction_check"]
        return info


# --- command line ---------------------------------------------------------------------------------
def load_data(data_dir=None, img_size=28):
    """MNIST ``(train, test)`` pairs in [-1, 1] (none: scikit-learn's digits, offline)."""
    return load_mnist(data_dir, "train", size=img_size), load_mnist(data_dir, "test", size=img_size)


def model_args(parser):
    """The options that set the SGAN (shared by ``train`` and ``compare``)."""
    add = parser.add_argument
    help_data = "MNIST IDX folder, mnist.npz, digit folders or 'keras' (none: sklearn's digits)"
    add("--data-dir", default=None, help=help_data + "; t10k files alone are split 7,000 / 3,000")
    add("--img-size", type=cli.positive_int, default=28, help="images are resized to this")
    add("--labels-per-class", type=cli.positive_int, default=LABELS_PER_CLASS, help="labelled")
    add("--g-loss", default=G_LOSSES[0], choices=G_LOSSES, help="G's objective")
    add("--latent-dim", type=cli.positive_int, default=LATENT_DIM, help="size of z")
    add("--g-units", type=parse_units, default=G_UNITS, help="G's hidden widths")
    add("--d-units", type=parse_units, default=D_UNITS, help="D's hidden widths")
    add("--learning-rate", type=cli.positive_float, default=LEARNING_RATE, help="Adam, G and D")
    add("--average-decay", type=cli.fraction, default=AVERAGE_DECAY, help="D's moving average")


def model_kwargs(args):
    names = ("labels_per_class", "g_loss", "latent_dim", "g_units", "d_units", "learning_rate")
    names += ("average_decay",)
    return {name: getattr(args, name) for name in names}


def _train_args(parser):
    model_args(parser)
    cli.add_training_args(parser, SGAN)


def _train(args):
    (x, y), test = load_data(args.data_dir, args.img_size)
    runtime = cli.runtime_kwargs(args)
    runtime["output_dir"] = args.output_dir or os.path.join("output", "sgan")
    if args.eval_every:  # mode coverage, by a digit classifier trained on --data-dir (cached)
        from keras_gans.mode_coverage import digit_classifier

        runtime["coverage_classifier"] = lambda: digit_classifier(args.data_dir)
    gan = SGAN(x, y, test=test, **model_kwargs(args), **runtime)
    cli.train(gan, args)
    if gan.is_chief:
        accuracy = gan.score()["accuracy"]
        print(f"test accuracy {accuracy:.4f} on {len(test[1])} images ({len(gan.labelled)} labels)")
    return gan


def _study(name):
    """The seeds study's function ``name``, imported when called (the study builds on this module)."""
    return lambda args: getattr(importlib.import_module(_STUDY), name)(args)


_COMPARE = "SGAN vs the same D trained on the labels only, over seeds (report.json, report.md)."
COMMANDS = [
    cli.Command("train", "Train the SGAN on MNIST; prints the test accuracy.", _train_args, _train),
    cli.Command("compare", _COMPARE, _study("add_arguments"), _study("run_from_args")),
]


def main(argv=None):
    return cli.main("python -m keras_gans.sgan", __doc__.partition("\n")[0], COMMANDS, argv)


if __name__ == "__main__":
    main()
