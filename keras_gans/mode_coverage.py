"""Mode coverage of a digit generator, scored by a trained digit classifier.

The protocol of the unrolled GAN (Metz et al., "Unrolled Generative Adversarial Networks", ICLR 2017,
Sec. 3.3) and VEEGAN (Srivastava et al., NIPS 2017, Sec. 5.2) on (stacked) MNIST: a pre-trained
classifier labels every generated image; a mode is a class that receives at least one sample, and
the digit histogram ``p_gen`` is compared with the uniform one by ``KL(p_gen || uniform)``
(0 for a perfectly balanced generator, ``log K`` = 2.30 for one that draws a single digit of ten).
Those papers drew 26,000 samples over 1,000 stacked modes; here 1,000 samples over ten digits.

* :func:`mode_coverage` scores images: ``modes_covered``, ``mode_share`` (modes / K) and
  ``kl_uniform``; with ``classes`` (the digits a GAN was trained on, e.g. 1, 2, 3) the other digits
  are no modes and their share is ``off_mode_share``; with ``labels`` (a conditional generator's
  requested classes) also ``label_match``, the share of images read as the requested digit.
* :func:`digit_classifier` is the scorer: a small CNN trained on the MNIST train split of
  :func:`data_loaders.mnist.load_mnist` and cached under ``$KERAS_GANS_HOME/models`` (a file given
  as ``path`` or ``--coverage-classifier`` is used instead); its accuracy on the test split is kept
  beside it (``.json``), since a classifier that answers one digit would report a collapse that is
  not there.
* The trainers on MNIST (``keras_gans.cgan --dataset mnist``; ``gan`` / ``dcgan`` given MNIST arrays
  through the Python API) log these values with ``--eval-every`` (:meth:`keras_gans.training.
  GANTrainer.mode_coverage`); ``python -m keras_gans.mode_coverage score --model G.h5`` scores any
  saved generator, ``classifier`` trains and caches the scorer.

The classifier never touches the global random state (seeded initialisers and Dropout, NumPy-shuffled
batches), so building it inside a training run leaves that run's draws as they were.
"""

import hashlib
import logging
import os

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from data_loaders.download import cache_root
from data_loaders.mnist import load_mnist
from keras_gans import cli, reports, sampling
from keras_gans.errors import ConfigError
from keras_gans.saving import load_model, save_model

log = logging.getLogger(__name__)

IMG_SIZE = 28
N_CLASSES = 10
EPOCHS = 5
BATCH_SIZE = 64
LEARNING_RATE = 2e-3
N_SAMPLES = 1000  # images scored per evaluation
MIN_ACCURACY = 0.9  # below this on its test split the cached classifier is reported as unreliable


# --- the scorer -----------------------------------------------------------------------------------
def build_classifier(n_classes=N_CLASSES, img_size=IMG_SIZE, filters=16, seed=0, name="digits"):
    """Conv(f, s2) -> Conv(2f, s2) -> Dropout(0.25) -> Dense(n_classes, softmax); seeded."""
    init = lambda i: keras.initializers.GlorotUniform(seed=seed + i)
    img = keras.Input((img_size, img_size, 1), name=f"{name}_image")
    x = img
    for i, f in enumerate((filters, 2 * filters), start=1):
        x = layers.Conv2D(f, 3, strides=2, padding="same", activation="relu",
                          kernel_initializer=init(i), name=f"{name}_conv{i}")(x)  # fmt: skip
    x = layers.Flatten(name=f"{name}_flatten")(x)
    x = layers.Dropout(0.25, seed=seed, name=f"{name}_dropout")(x)
    probs = layers.Dense(n_classes, activation="softmax", kernel_initializer=init(3),
                         dtype="float32", name=f"{name}_probs")(x)  # fmt: skip
    return keras.Model(img, probs, name=name)


def train_classifier(x, y, n_classes=N_CLASSES, epochs=EPOCHS, seed=0, filters=16):
    """:func:`build_classifier` fitted to ``(x, y)`` (x in [-1, 1]); batches shuffled by NumPy."""
    model = build_classifier(n_classes, x.shape[1], filters, seed)
    model.compile(keras.optimizers.Adam(LEARNING_RATE), "sparse_categorical_crossentropy")
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        order = rng.permutation(len(x))
        model.fit(x[order], y[order], batch_size=BATCH_SIZE, epochs=1, shuffle=False, verbose=0)
    return model


def predict_digits(classifier, images, batch_size=256):
    """The arg-max class of every image; RGB becomes grey and the size the classifier's."""
    images = np.asarray(images, np.float32)
    if images.ndim != 4:
        raise ConfigError(f"images must be (n, h, w, c), got shape {images.shape}")
    if images.shape[-1] == 3:
        images = images.mean(axis=-1, keepdims=True)
    size = tuple(classifier.inputs[0].shape[1:3])
    if images.shape[1:3] != size:
        images = tf.image.resize(images, size).numpy()
    out = [
        np.asarray(classifier(images[i : i + batch_size], training=False))
        for i in range(0, len(images), batch_size)
    ]
    return np.argmax(np.concatenate(out), axis=1) if out else np.zeros(0, np.int64)


def _cache_name(source):
    if source is None:
        return "digits_sklearn"
    if source == "keras":
        return "digits_keras_mnist"
    path = os.path.abspath(os.fspath(source))
    tag = hashlib.sha1(path.encode()).hexdigest()[:8]
    return f"digits_{os.path.basename(path.rstrip(os.sep)) or 'root'}_{tag}"


def cache_path(source=None):
    """Where the classifier trained on ``source`` is cached: ``$KERAS_GANS_HOME/models/*.h5``."""
    return os.path.join(cache_root(), "models", _cache_name(source) + ".h5")


def fit_digit_classifier(source, path, epochs=EPOCHS):
    """Train the classifier on ``load_mnist(source, "train")``, save it to ``path`` (``.h5`` or
    ``.keras``) and its accuracy on the test split to ``<path>.json``; returns the model."""
    stem, ext = os.path.splitext(path)
    if ext not in (".h5", ".keras"):
        raise ConfigError(f"{path}: a classifier file must end in .h5 or .keras")
    x, y = load_mnist(source, "train")
    log.info("training the digit classifier for mode coverage on %d images", len(x))
    model = train_classifier(x, y, epochs=epochs)
    x_test, y_test = load_mnist(source, "test")
    accuracy = float(np.mean(predict_digits(model, x_test) == y_test))
    if accuracy < MIN_ACCURACY:
        log.warning("the coverage classifier reads only %.1f%% of the test digits", 100 * accuracy)
    save_model(model, stem, formats=(ext[1:],))
    info = {"source": None if source is None else os.fspath(source), "train_images": len(x),
            "test_images": len(x_test), "test_accuracy": accuracy, "epochs": epochs}  # fmt: skip
    reports.write_json(stem + ".json", info)
    return model


def check_classifier(model, name):
    """Refuse a model that does not map grey images ``(h, w, 1)`` to class scores."""
    shapes = [tuple(t.shape[1:]) for t in model.inputs], tuple(model.outputs[0].shape[1:])
    if (
        len(shapes[0]) != 1
        or len(shapes[0][0]) != 3
        or shapes[0][0][-1] != 1
        or len(shapes[1]) != 1
    ):
        raise ConfigError(
            f"{name} is not a digit classifier: it maps {shapes[0]} to {shapes[1]}, not grey "
            "images (h, w, 1) to class scores"
        )
    return model


def digit_classifier(source=None, path=None):
    """The coverage scorer: the file ``path`` if given (a missing one is an error), else the one
    cached for ``source`` (:func:`cache_path`), trained on first use."""
    if path is not None:
        return check_classifier(load_model(path), os.fspath(path))
    cached = cache_path(source)
    return load_model(cached) if os.path.exists(cached) else fit_digit_classifier(source, cached)


def classifier_info(path):
    """The ``.json`` written beside a classifier by :func:`digit_classifier` (``{}`` if none)."""
    info = os.path.splitext(path)[0] + ".json"
    return reports.read_json(info) if os.path.exists(info) else {}


# --- the measure ----------------------------------------------------------------------------------
def kl_from_uniform(counts):
    """``KL(p || uniform)`` of the histogram ``counts`` (``0 log 0 = 0``); ``nan`` if empty."""
    counts = np.asarray(counts, np.float64)
    if counts.sum() == 0:
        return float("nan")
    p = counts / counts.sum()
    nz = p > 0
    return float(np.sum(p[nz] * np.log(p[nz] * len(p))))


def mode_coverage(images, classifier, classes=None, labels=None):
    """Score ``images`` (in [-1, 1]) by ``classifier``'s digits; see the module docstring.

    Returns ``{"modes_covered", "mode_share", "kl_uniform"}`` (+ ``off_mode_share`` when
    ``classes`` leaves digits out, ``label_match`` when ``labels`` are given: indices into
    ``classes``, or digits when ``classes`` is ``None``). ``kl_uniform`` is ``None`` when no image
    is read as one of ``classes`` (undefined; a trainer then leaves it out of the log, where a NaN
    would stop the run as a diverged loss).
    """
    pred = predict_digits(classifier, images)
    n_out = classifier.outputs[0].shape[-1]
    modes = np.arange(n_out) if classes is None else np.asarray(classes, np.int64)
    if not len(modes) or modes.min() < 0 or modes.max() >= n_out:
        raise ConfigError(f"coverage classes must be digits in [0, {n_out}), got {classes}")
    counts = np.bincount(pred, minlength=n_out)[modes]
    covered = int(np.sum(counts > 0))
    values = {
        "modes_covered": covered,
        "mode_share": covered / len(modes),
        "kl_uniform": kl_from_uniform(counts) if counts.sum() else None,
    }
    if len(modes) < n_out:
        values["off_mode_share"] = float(1 - counts.sum() / max(len(pred), 1))
    if labels is not None:
        wanted = modes[np.asarray(labels, np.int64).reshape(-1)]
        values["label_match"] = float(np.mean(pred == wanted))
    return values


def histogram(images, classifier):
    """How many of ``images`` the classifier reads as each digit."""
    n_out = classifier.outputs[0].shape[-1]
    return np.bincount(predict_digits(classifier, images), minlength=n_out).tolist()


# --- command line ---------------------------------------------------------------------------------
def _classifier_args(parser):
    add = parser.add_argument
    add("--data-dir", default=None, help="MNIST source (none: scikit-learn's digits, offline)")
    add("--output", default=None, help="classifier file (.h5 / .keras); default: the cache")
    add("--epochs", type=cli.positive_int, default=EPOCHS, help="training epochs")


def _classifier(args):
    path = args.output or cache_path(args.data_dir)
    model = fit_digit_classifier(args.data_dir, path, args.epochs)
    accuracy = classifier_info(path)["test_accuracy"]
    print(f"wrote {path}: {model.count_params()} parameters, test-split accuracy {accuracy:.3f}")
    return model


def _score_args(parser):
    add = parser.add_argument
    add("--model", required=True, help="generator file (.h5 / .keras)")
    add("--classifier", default=None, help="digit classifier file; default: trained and cached")
    add("--data-dir", default=None, help="MNIST source of the default classifier")
    add("--n", type=cli.positive_int, default=N_SAMPLES, help="images scored")
    add("--classes", default=None, help="digits the generator models, e.g. 1,2,3 (default: all)")
    add("--seed", type=cli.seed, default=0, help="noise seed")


def _score(args):
    generator = load_model(args.model)
    sampling.check_generator(generator, args.model)
    classifier = digit_classifier(args.data_dir, args.classifier)
    classes = None if args.classes is None else [int(c) for c in args.classes.split(",")]
    labels = None
    if sampling.is_conditional(generator):  # labels index `classes`, drawn uniformly
        k = len(classes) if classes else classifier.outputs[0].shape[-1]
        labels = np.random.default_rng([args.seed, 1]).integers(0, k, args.n)
        images = np.concatenate([
            sampling.generate_images(generator, int(np.sum(labels == c)), args.seed, label=c)
            for c in range(k)
        ])  # fmt: skip
        labels = np.sort(labels)
    else:
        images = sampling.generate_images(generator, args.n, args.seed)
    values = mode_coverage(images, classifier, classes, labels)
    values["histogram"] = histogram(images, classifier)
    for key, value in values.items():
        print(f"{key}: {value:.4g}" if isinstance(value, float) else f"{key}: {value}")
    return values


COMMANDS = [
    cli.Command("score", "Mode coverage of a saved digit generator.", _score_args, _score),
    cli.Command(
        "classifier", "Train and cache the digit classifier.", _classifier_args, _classifier
    ),
]


def main(argv=None):
    return cli.main(
        "python -m keras_gans.mode_coverage", __doc__.partition("\n")[0], COMMANDS, argv
    )


if __name__ == "__main__":
    main()
