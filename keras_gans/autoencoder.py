"""Convolutional and denoising autoencoders: reconstruction grids and one-class anomaly scores.

Masci, Meier, Ciresan and Schmidhuber, "Stacked Convolutional Auto-Encoders for Hierarchical
Feature Extraction", ICANN 2011: an encoder of convolutions and max-pooling, a decoder that
mirrors it, trained to reproduce its input. Vincent, Larochelle, Bengio and Manzagol, "Extracting
and Composing Robust Features with Denoising Autoencoders", ICML 2008: the same network fed a
corrupted input x~ and trained to return the clean x. Trained on normal images only, an
autoencoder reproduces what it has learned and fails on the rest, so its reconstruction error is
an anomaly score, the baseline AnoGAN (:mod:`keras_gans.anogan`) is compared with:

* reconstruction   x^ = decoder(encoder(x))                   (the clean x, also for a DAE)
* anomaly score    A(x) = mean (x - x^)^2, the training loss per image
* anomaly map      |x - x^|, as AnoGAN's |x - G(z)|

Choices the papers leave open (ours): 3x3 convolutions with ReLU and 2x2 max-pooling down to 4x4
(Masci's pooling; our filter counts, doubling per stage), a linear ``code_dim`` bottleneck, the
decoder's 2x upsampling + 3x3 convolution back to the image with a linear output (a tanh output,
natural for data in [-1, 1], saturated at -1 on MNIST's black background within the first steps
and never came back: measured, every reconstruction black), MSE, Adam(1e-3), batch 64. Vincent et
al. corrupt by masking; ``noise_std`` > 0 corrupts by additive N(0, noise_std^2) noise (their
Gaussian variant), clipped to [-1, 1] and drawn per step from ``(seed, step)``; 0 is the plain
convolutional autoencoder.

The one-class evaluation is AnoGAN's, on exactly its split (:mod:`keras_gans.experiments.
anogan_eval`: the normal class's training images, then a balanced held-out set halved into
validation (the threshold) and test (AUROC, precision, recall)), with the same ``--seed`` and data
options; :mod:`keras_gans.experiments.one_class` runs both over every digit.

CLI: ``python -m keras_gans.autoencoder train|score`` (``--help`` on each lists the options).
"""

import os

import keras
import numpy as np
from keras import layers
from sklearn import metrics as skm

from data_loaders.images import image_array
from keras_gans import cli, plotting, reports
from keras_gans.errors import ConfigError
from keras_gans.experiments.anogan_eval import (
    EVAL_PER_CLASS,
    THRESHOLD_RULES,
    class_index,
    evaluate,
    evaluation_splits,
    load_splits,
    save_maps,
)
from keras_gans.saving import ModelFileError, load_model
from keras_gans.training import GANTrainer

IMG_SIZE = 32  # AnoGAN's MNIST size, so both see the same images
FILTERS = 16  # first stage; doubled per stage (ours)
CODE_DIM = 32  # the bottleneck (ours)
LEARNING_RATE = 1e-3
BATCH_SIZE = 64
EPOCHS = 20
SAMPLE_INTERVAL = 200
NOISE_STD = 0.0  # 0: the convolutional autoencoder; > 0: denoising
GRID_COLS = 8
SCORE_BATCH = 256
TITLES = ["input x", "reconstruction x^", "anomaly map |x - x^|"]


# --- blocks -----------------------------------------------------------------------------------------
def _stages(img_size):
    """The number of 2x poolings between ``img_size`` and 4x4."""
    n = int(round(np.log2(img_size))) - 2 if img_size > 0 else 0
    if n < 1 or 4 * 2**n != img_size:
        raise ConfigError(f"--img-size must be a power of two >= 8 (16, 32, 64), got {img_size}")
    return n


def conv(x, filters, name, activation="relu"):
    """A 3x3 same-padded convolution."""
    return layers.Conv2D(filters, 3, padding="same", activation=activation, name=name)(x)


# --- networks ---------------------------------------------------------------------------------------
def build_encoder(
    img_size=IMG_SIZE, channels=1, filters=FILTERS, code_dim=CODE_DIM, name="encoder"
):
    """x -> [Conv 3x3 + ReLU -> MaxPool 2x2] per stage down to 4x4 -> Flatten -> Dense(code_dim).

    Layers: ``{name}_conv{i}``, ``{name}_pool{i}`` (i = 1..n), ``{name}_flatten``, ``{name}_code``.
    """
    n = _stages(img_size)
    img = keras.Input(shape=(img_size, img_size, channels), name=f"{name}_input")
    x = img
    for i in range(1, n + 1):
        x = conv(x, filters * 2 ** (i - 1), f"{name}_conv{i}")
        x = layers.MaxPooling2D(2, name=f"{name}_pool{i}")(x)
    x = layers.Flatten(name=f"{name}_flatten")(x)
    return keras.Model(img, layers.Dense(code_dim, name=f"{name}_code")(x), name=name)


def build_decoder(
    img_size=IMG_SIZE, channels=1, filters=FILTERS, code_dim=CODE_DIM, name="decoder"
):
    """code -> Dense to 4x4 + ReLU -> [UpSample 2x -> Conv 3x3 + ReLU] per stage -> Conv 3x3, linear.

    The encoder mirrored. Layers: ``{name}_project``, ``{name}_reshape``, ``{name}_up{i}``,
    ``{name}_conv{i}`` (i = 1..n), ``{name}_out``.
    """
    n = _stages(img_size)
    top = filters * 2 ** (n - 1)
    code = keras.Input(shape=(code_dim,), name=f"{name}_code")
    x = layers.Dense(16 * top, activation="relu", name=f"{name}_project")(code)
    x = layers.Reshape((4, 4, top), name=f"{name}_reshape")(x)
    for i in range(1, n + 1):
        x = layers.UpSampling2D(2, name=f"{name}_up{i}")(x)
        x = conv(x, top // 2 ** (i - 1), f"{name}_conv{i}")  # the encoder's filters at this size
    out = layers.Conv2D(channels, 3, padding="same", name=f"{name}_out")  # linear: see above
    return keras.Model(code, out(x), name=name)


# --- the trainer ------------------------------------------------------------------------------------
class Autoencoder(GANTrainer):
    """A (denoising) convolutional autoencoder trained by :meth:`GANTrainer.run`: one compiled model,
    ``autoencoder`` = decoder(encoder(x)), one MSE update per step.

    Args:
        images: ``(n, s, s, c)`` in [-1, 1], the (normal) training images; set the shapes.
        filters, code_dim: the networks' sizes (:func:`build_encoder`, :func:`build_decoder`).
        noise_std: std of the denoising corruption (0: none, a plain autoencoder).
        learning_rate: Adam's.
        output_dir, seed, **runtime: as for every trainer
            (:meth:`keras_gans.training.GANTrainer.setup_runtime`).

    Saves ``models/encoder`` and ``models/decoder`` (``.h5`` and ``.keras``).
    """

    name = "autoencoder"
    default_epochs = EPOCHS
    default_batch_size = BATCH_SIZE
    default_sample_interval = SAMPLE_INTERVAL
    loss_groups = {"reconstruction (MSE)": ["loss"]}

    def __init__(
        self,
        images,
        filters=FILTERS,
        code_dim=CODE_DIM,
        noise_std=NOISE_STD,
        learning_rate=LEARNING_RATE,
        output_dir=None,
        seed=None,
        **runtime,
    ):
        images = image_array(images)
        _stages(images.shape[1])
        if noise_std < 0 or filters < 1 or code_dim < 1:
            raise ConfigError("--noise-std must be >= 0, --filters and --code-dim >= 1")
        self.images = images
        self.img_size, self.channels = int(images.shape[1]), int(images.shape[3])
        self.filters, self.code_dim = int(filters), int(code_dim)
        self.noise_std, self.learning_rate = float(noise_std), float(learning_rate)
        self.setup_runtime(output_dir or os.path.join("output", self.name), seed=seed, **runtime)
        self.build_models()
        self.fixed = images[:GRID_COLS]  # the grid's originals, the same at every step

    def build(self):
        sizes = (self.img_size, self.channels, self.filters, self.code_dim)
        self.encoder, self.decoder = build_encoder(*sizes), build_decoder(*sizes)
        x = keras.Input(shape=(self.img_size, self.img_size, self.channels), name="x")
        self.autoencoder = keras.Model(x, self.decoder(self.encoder(x)), name="autoencoder")
        optimizer = self.make_optimizer(self.learning_rate)
        self.compile(self.autoencoder, loss="mean_squared_error", optimizer=optimizer)
        return {"encoder": self.encoder, "decoder": self.decoder}

    def config(self):
        names = ("img_size", "channels", "filters", "code_dim", "noise_std")
        return {"architecture": self.name, **{k: getattr(self, k) for k in names}}

    def corrupt(self, images, *key):
        """Vincent et al.'s x~: ``images`` + N(0, noise_std^2) from ``rng(*key)``, clipped."""
        if not self.noise_std:
            return images
        noise = self.rng(*key).normal(0.0, self.noise_std, images.shape).astype(np.float32)
        return np.clip(images + noise, -1.0, 1.0)

    # --- the declaration for GANTrainer.run ---------------------------------------------------------
    def steps_per_epoch(self, batch_size):
        return len(self.images) // batch_size

    def batches(self, batch_size, epoch, skip):
        """Shuffled batches; the order is a function of ``(seed, epoch)``."""
        order = self.rng(0, epoch).permutation(len(self.images))
        n = len(self.images) // batch_size
        for i in range(skip, n):
            yield self.images[order[i * batch_size : (i + 1) * batch_size]]

    def train_step(self, imgs):
        """One MSE update of the clean ``imgs`` from their corrupted copies (none: themselves)."""
        logs = self.update(self.autoencoder, self.corrupt(imgs, 1, self.step), imgs)
        return {"loss": float(logs["loss"])}

    def sample_grid(self):
        """Originals over (corrupted inputs over) reconstructions, fixed images and noise."""
        inputs = self.corrupt(self.fixed, 2)
        rows = [self.fixed] + ([inputs] if self.noise_std else [])
        rows.append(np.asarray(self.autoencoder(inputs, training=False)))
        labels = ["original", "corrupted", "reconstruction"] if self.noise_std else None
        labels = labels or ["original", "reconstruction"]
        grid = {"images": np.concatenate(rows), "rows": len(rows), "cols": len(self.fixed)}
        return {**grid, "row_labels": labels}

    def summary_info(self):
        return {"images": len(self.images)}


# --- scores -----------------------------------------------------------------------------------------
class ReconstructionScorer:
    """Reconstruction-error anomaly scores of an encoder / decoder pair; :meth:`score` returns what
    :meth:`keras_gans.anogan.AnoGAN.score` returns for the keys both have."""

    def __init__(self, encoder, decoder, batch_size=SCORE_BATCH):
        self.encoder, self.decoder, self.batch_size = encoder, decoder, int(batch_size)
        self.image_shape = tuple(int(d) for d in encoder.input_shape[1:])

    def score(self, images, seed=None, progress=False):
        """``anomaly_score`` (n,): mean squared error; ``reconstruction`` and ``anomaly_map``
        |x - x^| (n, h, w, c). ``seed`` and ``progress`` are unused (nothing is drawn)."""
        images = np.asarray(images, np.float32)
        if images.ndim != 4 or tuple(images.shape[1:]) != self.image_shape:
            shape = ", ".join(map(str, self.image_shape))
            raise ConfigError(f"images must be shaped (n, {shape}), got {images.shape}")
        parts = []
        for start in range(0, len(images), self.batch_size):
            code = self.encoder(images[start : start + self.batch_size], training=False)
            parts.append(np.asarray(self.decoder(code, training=False)))
        recon = np.concatenate(parts)
        error = images - recon
        return {
            "anomaly_score": np.mean(error**2, axis=(1, 2, 3)),
            "reconstruction": recon,
            "anomaly_map": np.abs(error),
        }


def evaluate_and_write(scorer, splits, classes, normal, output_dir, rule="f1", extra=None):
    """AnoGAN's evaluation of the reconstruction error: AUROC on validation and test, a threshold
    chosen on validation; writes ``scores.csv``, ``report.json``, ``roc.png`` and ``maps.png``."""
    scores = {s: scorer.score(x) for s, (x, _, _) in splits.items()}
    (_, val_labels, _), (x_test, test_labels, test_classes) = splits["validation"], splits["test"]
    val, test = scores["validation"]["anomaly_score"], scores["test"]["anomaly_score"]
    report = evaluate(val_labels, val, test_labels, test, rule)
    report.update(normal_class=classes[normal], score="mean squared reconstruction error")
    report["counts"] = {
        s: {"normal": int((v[1] == 0).sum()), "anomalous": int(v[1].sum())}
        for s, v in splits.items()
    }
    report.update(extra or {})
    rows = []
    for s, (_, labels, cls) in splits.items():
        for i, (label, c) in enumerate(zip(labels, cls)):
            value = float(scores[s]["anomaly_score"][i])
            call = ("normal", "anomalous")[int(value >= report["threshold"])]
            kind = ("normal", "anomalous")[int(label)]
            row = {"split": s, "index": i, "class": classes[int(c)], "label": kind}
            rows.append({**row, "anomaly_score": f"{value:.6g}", "predicted": call})
    reports.write_csv(os.path.join(output_dir, "scores.csv"), rows)
    curves = {}
    for name, labels, values in (("test", test_labels, test), ("validation", val_labels, val)):
        fpr, tpr, _ = skm.roc_curve(labels, values)
        curves[name] = (fpr, tpr, float(skm.roc_auc_score(labels, values)))
    title = f"Autoencoder, normal class {classes[normal]}"
    plotting.plot_roc(curves, os.path.join(output_dir, "roc.png"), title)
    shown = np.r_[np.flatnonzero(test_labels == 0)[:4], np.flatnonzero(test_labels == 1)[:4]]
    picked = {k: v[shown] for k, v in scores["test"].items()}
    labels = [f"{classes[int(test_classes[i])]} {test[i]:.3f}" for i in shown]
    save_maps(os.path.join(output_dir, "maps.png"), x_test[shown], picked, labels, titles=TITLES)
    reports.write_json(os.path.join(output_dir, "report.json"), report)
    return report


def load_pair(models_dir):
    """``(encoder, decoder)`` from a ``models/`` folder (``.keras`` preferred, else ``.h5``)."""
    pair = []
    for stem in ("encoder", "decoder"):
        paths = [os.path.join(models_dir, stem + ext) for ext in (".keras", ".h5")]
        found = [p for p in paths if os.path.isfile(p)]
        if not found:
            raise ModelFileError(
                f"no {stem}.keras or .h5 in {models_dir}: run `python -m keras_gans.autoencoder "
                "train` first, or pass --model a models folder"
            )
        pair.append(load_model(found[0]))
    return tuple(pair)


# --- command line -----------------------------------------------------------------------------------
def _split_args(parser):
    """AnoGAN's data and split options, with its defaults."""
    add = parser.add_argument
    add("--data-dir", default=None, help="MNIST source or class folders (none: offline digits)")
    add("--normal-class", default="1", help="the class the autoencoder learns (AnoGAN's default)")
    add("--eval-per-class", type=cli.positive_int, default=EVAL_PER_CLASS, help="held-out images")
    add("--threshold-rule", default="f1", choices=THRESHOLD_RULES, help="chosen on validation")


def _train_args(parser):
    _split_args(parser)
    add = parser.add_argument
    add("--img-size", type=cli.positive_int, default=IMG_SIZE, help="a power of two >= 8")
    add("--channels", type=int, default=1, choices=(1, 3), help="1: grey")
    add("--filters", type=cli.positive_int, default=FILTERS, help="first-stage filters")
    add("--code-dim", type=cli.positive_int, default=CODE_DIM, help="bottleneck size")
    add("--noise-std", type=cli.non_negative_float, default=NOISE_STD, help=">0: denoising")
    add("--learning-rate", type=cli.positive_float, default=LEARNING_RATE, help="Adam")
    add("--no-score", action="store_true", help="train only")
    cli.add_training_args(parser, Autoencoder)


def _score_args(parser):
    _split_args(parser)
    add = parser.add_argument
    add("--model", default=None, help="a models folder (none: OUTPUT_DIR/models)")
    add("--output-dir", default=None, help="the train run's folder; the report goes there")
    add("--seed", type=cli.seed, default=None, help="seeds the held-out draw (as train's --seed)")
    add("--strict", action="store_true", help="fail on an unreadable image")


def _run_dir(data_dir, class_name):
    name = os.path.basename(os.path.normpath(data_dir)) if data_dir else "digits"
    return os.path.join("output", "autoencoder", f"{name}_{class_name}")


def _print(report):
    t = report["test_at_threshold"]
    print(
        f"AUROC test {report['auroc_test']:.3f} (validation {report['auroc_validation']:.3f}); "
        f"precision {t['precision']:.3f}, recall {t['recall']:.3f} on test"
    )
    return report


def _train(args):
    """The autoencoder on the normal class's training images, then AnoGAN's evaluation."""
    (x, y), test, classes = load_splits(args.data_dir, args.img_size, args.channels, args.strict)
    normal = class_index(args.normal_class, classes)
    runtime = cli.runtime_kwargs(args)
    runtime["output_dir"] = args.output_dir or _run_dir(args.data_dir, classes[normal])
    sizes = {"filters": args.filters, "code_dim": args.code_dim, "noise_std": args.noise_std}
    ae = Autoencoder(x[y == normal], learning_rate=args.learning_rate, **sizes, **runtime)
    cli.train(ae, args)
    if args.no_score or not ae.is_chief:
        return ae
    splits = evaluation_splits(*test, normal, args.eval_per_class, args.seed)
    extra = {"source": args.data_dir or "scikit-learn digits", "seed": args.seed}
    extra["autoencoder"] = {**ae.config(), "training_images": len(ae.images)}
    scorer = ReconstructionScorer(ae.encoder, ae.decoder)
    out, rule = ae.output_dir, args.threshold_rule
    return _print(evaluate_and_write(scorer, splits, classes, normal, out, rule, extra))


def _score(args):
    """A saved encoder / decoder on AnoGAN's held-out split."""
    out = args.output_dir or _run_dir(args.data_dir, args.normal_class)
    model = args.model or os.path.join(out, "models")
    scorer = ReconstructionScorer(*load_pair(model))
    size, channels = scorer.image_shape[0], scorer.image_shape[-1]
    _, test, classes = load_splits(args.data_dir, size, channels, args.strict)
    normal = class_index(args.normal_class, classes)
    splits = evaluation_splits(*test, normal, args.eval_per_class, args.seed)
    extra = {"source": args.data_dir or "scikit-learn digits", "seed": args.seed, "model": model}
    rule = args.threshold_rule
    return _print(evaluate_and_write(scorer, splits, classes, normal, out, rule, extra))


COMMANDS = [
    cli.Command(
        "train",
        "Train an autoencoder on the normal class, then score AnoGAN's held-out set.",
        _train_args,
        _train,
    ),
    cli.Command(
        "score",
        "Score AnoGAN's held-out set with a saved encoder and decoder.",
        _score_args,
        _score,
    ),
]


def main(argv=None):
    """``python -m keras_gans.autoencoder train|score [options]``; returns the report."""
    return cli.main("python -m keras_gans.autoencoder", __doc__.partition("\n")[0], COMMANDS, argv)


if __name__ == "__main__":
    main()
