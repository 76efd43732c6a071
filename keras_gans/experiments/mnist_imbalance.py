"""MNIST class imbalance: does oversampling a rare digit with GAN images help a small classifier?

The report trained a small CNN on MNIST digits 1, 2 and 3 with 1, 300 and 300 training images,
made fake images with a GAN, added them and retrained the same network: on 10 test images per digit
it went from 23 to 26 of 30 correct (the "1": 4 -> 7 of 10). Which GAN, trained on which images, it
does not say. This study reproduces that and asks the question properly.

* **GANs** (:mod:`keras_gans.cgan`): a class-conditional DCGAN trained on the whole imbalanced set
  (the default), or an unconditional one on the rare digit alone (our reading of the report).
* **Classifier.** The report's SmallCNN: Conv(16)-ReLU-MaxPool, Conv(32)-ReLU-MaxPool, Dense 64,
  Dropout 0.3, softmax over the chosen digits (Adam 1e-3; the report did not say how it trained).
* **Arms.** For every seed each arm uses the same imbalanced draw and the same initial classifier
  weights: ``baseline`` (the imbalanced real set), ``gan`` (plus GAN images of each rare digit up
  to ``target_count``) and ``classic`` (plus augmented duplicates of the rare images; both in
  :mod:`keras_gans.experiments.oversampling`). All are scored on the whole test split of the chosen
  digits (the report's 10 images per digit are kept as ``first10_correct``), as means with 95%
  t-intervals over seeds and paired per-seed differences between arms (``keras_gans.evaluation``).

One :class:`ImbalanceConfig` holds the setting; :func:`run_experiment` writes ``report.json``,
``runs.csv``, ``report.md`` and ``metrics.png`` (:mod:`keras_gans.experiments.imbalance_report`). The report's own numbers appear only in
``report.json["reported_in_paper"]``, quoted, apart from everything this study measures.
"""

import dataclasses
import logging
import os

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from data_loaders.mnist import imbalanced_subset, load_mnist
from keras_gans import cli, distribute, evaluation, plotting, sampling
from keras_gans.cgan import BASE_FILTERS, EMBEDDING_DIM, LATENT_DIM, digit_list
from keras_gans.errors import ConfigError
from keras_gans.experiments.imbalance_report import build_report, format_summary, write_outputs
from keras_gans.experiments.oversampling import gan_images, oversample_classic, shortfall

log = logging.getLogger(__name__)

# The report's setting.
DIGITS = (1, 2, 3)
COUNTS = {1: 1, 2: 300, 3: 300}
# The GANs: 1,000 steps of batch 32 keep a CPU run short (Keras-GAN's cgan ran 20,000 of an MLP).
GAN_STEPS = 1000
GAN_BATCH_SIZE = 32
SAMPLE_INTERVAL = 200
# The classifier and the study.
CLASSIFIER_LR = 1e-3
CLASSIFIER_EPOCHS = 10
CLASSIFIER_BATCH_SIZE = 32
SEEDS = (0, 1, 2, 3, 4)
ARMS = ("baseline", "gan", "classic")
GAN_KINDS = ("conditional", "unconditional")


@dataclasses.dataclass
class ImbalanceConfig:
    """The study's setting. ``epochs`` / ``batch_size`` are the classifier's; ``gan_steps`` /
    ``gan_batch_size`` / ``sample_interval`` the GANs'; ``gan_options`` go to
    :class:`keras_gans.cgan.CGAN` (sizes, ``balanced_batches``) and ``runtime`` to every GAN's
    run (``strategy``, ``checkpoint_every``, ``resume``, ...). ``counts=None`` is the report's."""

    digits: tuple = DIGITS
    counts: dict | None = None
    target_count: int | None = None
    arms: tuple = ARMS
    gan: str = "conditional"
    gan_steps: int = GAN_STEPS
    gan_batch_size: int = GAN_BATCH_SIZE
    sample_interval: int = SAMPLE_INTERVAL
    gan_options: dict = dataclasses.field(default_factory=dict)
    seeds: tuple = SEEDS
    epochs: int = CLASSIFIER_EPOCHS
    batch_size: int = CLASSIFIER_BATCH_SIZE
    output_dir: str = os.path.join("output", "mnist_imbalance")
    runtime: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        self.digits = tuple(int(d) for d in self.digits)
        if not self.digits or len(set(self.digits)) != len(self.digits):
            raise ConfigError(f"--digits must name distinct digits, got {list(self.digits)}")
        counts = COUNTS if self.counts is None else self.counts
        self.counts = {int(d): int(n) for d, n in counts.items()}
        if set(self.counts) != set(self.digits) or min(self.counts.values()) < 0:
            raise ConfigError(f"--counts {self.counts}: one count >= 0 per digit of {self.digits}")
        self.arms, self.seeds = tuple(self.arms), tuple(int(s) for s in self.seeds)
        if "baseline" not in self.arms or not set(self.arms) <= set(ARMS):
            raise ConfigError(f"--arms must include baseline and come from {ARMS}: {self.arms}")
        if self.gan not in GAN_KINDS:
            raise ConfigError(f"--gan must be one of {GAN_KINDS}, got {self.gan!r}")
        if self.gan == "unconditional" and self.gan_options.get("balanced_batches"):
            raise ConfigError("--balanced-batches needs --gan conditional")
        if not self.seeds:
            raise ConfigError("--seeds must name at least one seed")
        for option in ("gan_steps", "gan_batch_size", "epochs", "batch_size", "target_count"):
            value = getattr(self, option)
            if value is not None and value < 1:
                raise ConfigError(f"--{option.replace('_', '-')} must be >= 1, got {value}")

    def setting(self):
        """The JSON-ready setting for the report (no run options, no output folder)."""
        skip = ("output_dir", "runtime", "counts")
        rename = {
            "epochs": "classifier_epochs",
            "batch_size": "classifier_batch_size",
            "sample_interval": "gan_sample_interval",
        }
        fields = [f.name for f in dataclasses.fields(self) if f.name not in skip]
        values = {rename.get(k, k): getattr(self, k) for k in fields}
        return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}


# --- the classifier -------------------------------------------------------------------------------
def build_classifier(n_classes, img_size=28, channels=1, name="classifier"):
    """The report's SmallCNN: 2 x (Conv3-ReLU-MaxPool2; 16, 32 filters), Dense 64, Dropout 0.3."""
    img = keras.Input(shape=(img_size, img_size, channels), name=f"{name}_image")
    x = img
    for i, filters in enumerate((16, 32), 1):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"{name}_conv{i}")(x)
        x = layers.MaxPooling2D(2, name=f"{name}_pool{i}")(x)
    x = layers.Flatten(name=f"{name}_flatten")(x)
    x = layers.Dense(64, activation="relu", name=f"{name}_dense")(x)
    x = layers.Dropout(0.3, name=f"{name}_dropout")(x)
    probs = layers.Dense(n_classes, activation="softmax", dtype="float32", name=f"{name}_probs")(x)
    return keras.Model(img, probs, name=name)


def train_classifier(
    x, y, n_classes, seed, epochs=CLASSIFIER_EPOCHS, batch_size=CLASSIFIER_BATCH_SIZE, strategy=None
):
    """The report's classifier trained on ``(x, y)``; same ``seed`` = same initial weights."""
    strategy = strategy or tf.distribute.get_strategy()
    keras.utils.set_random_seed(seed)
    with strategy.scope():
        model = build_classifier(n_classes, x.shape[1], x.shape[3])
        model.compile(
            optimizer=keras.optimizers.Adam(CLASSIFIER_LR),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
    data = (
        tf.data.Dataset.from_tensor_slices((x, y))
        .shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
        .batch(batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )
    model.fit(data, epochs=epochs, verbose=0, shuffle=False)  # tf.data shuffles, seeded
    return model


def predict_classes(model, x, batch_size=512):
    """Arg-max class of every image (direct calls: no per-model ``predict`` function to trace)."""
    chunks = [model(x[i : i + batch_size], training=False) for i in range(0, len(x), batch_size)]
    return np.argmax(np.concatenate([np.asarray(c) for c in chunks]), axis=1)


def classification_metrics(y_true, y_pred, class_names, first_n=10):
    """Accuracy, balanced accuracy, macro F1 and per-class recall / precision / F1, and the
    confusion matrix. ``first10_correct`` counts the correct predictions among the first
    ``first_n`` test images of each class (``first10_correct_<name>`` per class), the report's way
    of scoring: 10 test images per digit (which ones, it does not say; ours are the first ten)."""
    k = len(class_names)
    cm = np.zeros((k, k), np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    tp = np.diag(cm).astype(np.float64)
    recall = tp / np.maximum(cm.sum(1), 1)
    precision = tp / np.maximum(cm.sum(0), 1)
    denom = np.maximum(recall + precision, 1e-12)
    f1 = np.where(recall + precision > 0, 2 * recall * precision / denom, 0.0)
    first = np.concatenate([np.flatnonzero(y_true == c)[:first_n] for c in range(k)])
    metrics = {
        "accuracy": float(np.mean(y_true == y_pred)),
        "balanced_accuracy": float(recall.mean()),
        "macro_f1": float(f1.mean()),
        f"first{first_n}_correct": int(np.sum(y_true[first] == y_pred[first])),
    }
    for c, name in enumerate(class_names):
        head = np.flatnonzero(y_true == c)[:first_n]  # the report's 10 images of this digit
        metrics[f"first{first_n}_correct_{name}"] = int(np.sum(y_pred[head] == c))
        metrics[f"recall_{name}"] = float(recall[c])
        metrics[f"precision_{name}"] = float(precision[c])
        metrics[f"f1_{name}"] = float(f1[c])
    return metrics, cm.tolist()


# --- the study ------------------------------------------------------------------------------------
def run_experiment(config, train, test, source=None):
    """Baseline vs GAN vs classic oversampling over ``config.seeds``; writes and returns the report.

    ``train`` / ``test`` are ``(x, y)`` with digit labels; ``config.counts`` maps digit -> training
    images (capped, with a warning, at what ``train`` holds); ``source`` names the data. Writes
    ``report.json`` (setting, every run, means with 95% intervals, paired differences), ``runs.csv``,
    ``report.md``, ``metrics.png``, grids of the added images in ``images/`` and each GAN's own
    outputs in ``gan/seed_<s>/``.
    """
    c, out = config, config.output_dir
    runtime = dict(c.runtime)
    strategy = distribute.get_strategy(runtime.pop("strategy", "auto"))
    distribute.set_precision(runtime.get("mixed_precision"))
    names = [str(d) for d in c.digits]
    index = {d: i for i, d in enumerate(c.digits)}
    keep = np.isin(test[1], c.digits)
    x_test, y_test = test[0][keep], np.array([index[d] for d in test[1][keep]], np.int64)
    runs, confusion = {arm: [] for arm in c.arms}, {arm: [] for arm in c.arms}
    checks = {arm: [] for arm in c.arms}
    gan_args = {
        "conditional": c.gan == "conditional",
        "steps": c.gan_steps,
        "batch_size": c.gan_batch_size,
        "sample_interval": c.sample_interval,
        **c.gan_options,
        **runtime,
        "strategy": strategy,
    }
    for seed in c.seeds:
        x, y = imbalanced_subset(*train, c.counts, seed=seed, strict=False)
        y = np.array([index[d] for d in y], np.int64)
        used = dict(zip(names, np.bincount(y, minlength=len(names)).tolist()))
        target = c.target_count or max(used.values())
        missing = shortfall(y, len(names), target)
        if not missing:
            log.warning("no digit has fewer than %d images: the arms will all match", target)
        sets = {"baseline": (x, y)}
        if "classic" in c.arms:
            sets["classic"] = oversample_classic(x, y, missing, seed)
        if "gan" in c.arms:
            gan_dir = os.path.join(out, "gan", f"seed_{seed}")
            made = gan_images(x, y, missing, names, seed, gan_dir, **gan_args)
            extra_y = [np.full(len(made[k]), k, np.int64) for k in made]
            sets["gan"] = (np.concatenate([x, *made.values()]), np.concatenate([y, *extra_y]))
        for arm in c.arms:
            x_arm, y_arm = sets[arm]
            if len(x_arm) > len(x):
                grid = os.path.join(out, "images", f"{arm}_seed{seed}.png")
                plotting.save_image_grid(x_arm[len(x) :][:32], grid, 4, 8)
            model = train_classifier(
                x_arm, y_arm, len(names), seed, c.epochs, c.batch_size, strategy
            )
            y_pred = predict_classes(model, x_test)
            metrics, cm = classification_metrics(y_test, y_pred, names)
            runs[arm].append({"seed": seed, "train_size": len(y_arm), **metrics})
            confusion[arm].append(cm)
            check = evaluation.prediction_check(y_test, y_pred, len(names))
            checks[arm].append({"seed": seed, **check})
            if check["degenerate"]:
                log.warning(
                    "seed %d %s: %.0f%% of the (class-balanced) test set is predicted digit %s: a "
                    "degenerate classifier",
                    seed,
                    arm,
                    100 * check["share"],
                    names[check["class"]],
                )
            log.info("seed %d %s: %s", seed, arm, {k: round(v, 4) for k, v in metrics.items()})
    setting = {
        "source": source or "scikit-learn digits (8x8 upscaled to 28x28)",
        **c.setting(),
        "counts_requested": {str(d): c.counts[d] for d in c.digits},
        "counts_used": used,
        "target_count": target,
        "test_images": {n: int(np.sum(y_test == i)) for i, n in enumerate(names)},
        "confidence": evaluation.CONFIDENCE,
    }
    report = build_report(setting, runs, confusion, checks)
    write_outputs(report, out)
    return report


# --- command line ---------------------------------------------------------------------------------
def parse_counts(text, digits):
    """``"1,300,300"`` (one per digit) or ``"1:1,2:300,3:300"`` -> ``{digit: count}``."""
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    try:
        if all(":" in p for p in parts):
            counts = {int(a): int(b) for a, b in (p.split(":") for p in parts)}
        elif len(parts) == len(digits):
            counts = {d: int(p) for d, p in zip(digits, parts)}
        else:
            raise ValueError
    except ValueError:
        raise ConfigError(
            f"--counts {text!r}: give one count per digit or digit:count pairs"
        ) from None
    if set(counts) != set(digits):
        raise ConfigError(f"--counts {text!r} names digits {sorted(counts)}, --digits {digits}")
    return counts


def _run_args(parser):
    add = parser.add_argument
    add(
        "--data-dir",
        default=None,
        help="IDX folder, mnist.npz, PNG digit folders or 'keras' (none: scikit-learn's digits)",
    )
    add("--output-dir", default=os.path.join("output", "mnist_imbalance"), help="report folder")
    add("--digits", type=digit_list, default="1,2,3", help="digits to classify")
    add("--counts", default="1,300,300", help="train images per digit, or digit:count pairs")
    add(
        "--target-count",
        type=cli.positive_int,
        default=None,
        help="fill rare digits up to (none: the largest)",
    )
    add("--arms", default=",".join(ARMS), help="arms to run (baseline is always one)")
    add("--seeds", type=cli.seeds, default="0,1,2,3,4", help="seeds (a list), e.g. 0,1,2")
    add("--epochs", type=cli.positive_int, default=CLASSIFIER_EPOCHS, help="classifier epochs")
    add(
        "--batch-size",
        type=cli.positive_int,
        default=CLASSIFIER_BATCH_SIZE,
        help="classifier batch",
    )
    add("--gan", default="conditional", choices=GAN_KINDS, help="or one GAN per rare digit")
    add("--gan-steps", type=cli.positive_int, default=GAN_STEPS, help="steps of each GAN")
    add("--gan-batch-size", type=cli.positive_int, default=GAN_BATCH_SIZE, help="GAN batch")
    add(
        "--sample-interval",
        type=cli.non_negative_int,
        default=SAMPLE_INTERVAL,
        help="GAN steps between sample grids (0 = only at the end)",
    )
    add("--latent-dim", type=cli.positive_int, default=LATENT_DIM, help="size of z")
    add("--base-filters", type=cli.positive_int, default=BASE_FILTERS, help="GAN filters")
    add("--embedding-dim", type=cli.positive_int, default=EMBEDDING_DIM, help="label embedding")
    add("--balanced-batches", action="store_true", help="class-balanced real batches (cGAN)")
    add("--strategy", default="auto", choices=distribute.STRATEGIES, help="tf.distribute strategy")
    add("--mixed-precision", default=None, choices=distribute.PRECISIONS, help="compute dtype")
    add("--jit", action="store_true", help="compile the GAN train steps with XLA")
    add("--checkpoint-every", type=cli.non_negative_int, default=500, help="GAN steps (0 = never)")
    add("--no-resume", dest="resume", action="store_false", help="retrain GANs from scratch")
    add("--on-nan", default="stop", choices=("stop", "rollback"), help="on a NaN/Inf GAN loss")
    add("--strict", action="store_true", help="fail on an unreadable image")
    add("--deterministic", action="store_true", help="deterministic TF ops")


def _run(args):
    names = ("strategy", "mixed_precision", "jit", "resume", "checkpoint_every", "on_nan", "strict")
    runtime = {k: getattr(args, k) for k in (*names, "deterministic")}
    sizes = {k: getattr(args, k) for k in ("latent_dim", "base_filters", "embedding_dim")}
    config = ImbalanceConfig(
        digits=args.digits,
        counts=parse_counts(args.counts, args.digits),
        target_count=args.target_count,
        arms=[a.strip() for a in args.arms.split(",") if a.strip()],
        gan=args.gan,
        gan_steps=args.gan_steps,
        gan_batch_size=args.gan_batch_size,
        sample_interval=args.sample_interval,
        gan_options={**sizes, "balanced_batches": args.balanced_batches},
        seeds=args.seeds,
        epochs=args.epochs,
        batch_size=args.batch_size,
        output_dir=args.output_dir,
        runtime=runtime,
    )
    train = load_mnist(args.data_dir, "train", strict=args.strict)
    test = load_mnist(args.data_dir, "test", strict=args.strict)
    report = run_experiment(config, train, test, source=args.data_dir)
    print(format_summary(report))
    print(f"report: {os.path.join(config.output_dir, 'report.json')}")
    return report


COMMANDS = [
    cli.Command(
        "run",
        "Imbalanced digits: real only vs + GAN images vs + augmented copies.",
        _run_args,
        _run,
    ),
    sampling.GENERATE,
]


def main(argv=None):
    prog = "python -m keras_gans.experiments.mnist_imbalance"
    return cli.main(prog, __doc__.partition("\n")[0], COMMANDS, argv)


if __name__ == "__main__":
    main()
