"""Do GAN-made images help the report's melanoma / nevus CNN? The lesion evaluation harness.

The skin-lesion report (SNU GAN project, s-seo/SNU-GAN-project ``engine/CNN``) judged its DCGAN and
BigGAN by one question: does a small CNN that tells melanoma from nevus get better when GAN images
join the real training images? This harness answers it for two arms, ``real`` and
``real+synthetic``, trained (:mod:`keras_gans.classifier`, the report's CNN) from the same seeds
and scored on the same held-out test set, repeated over seeds, with a mean and 95% t-interval per
metric and the paired per-seed difference between the arms (the report gives one run per arm,
which cannot tell a gain from noise).

As in the report: a balanced 500 + 500 test set. As in its repository's code (the report does not
say): the test set chosen first, then a stratified 20% validation split of the rest. Changed, and
why:

* the test set is chosen by whole groups of images that share a lesion id or identical pixels, so
  no lesion and no duplicate image sits on both sides (ISIC holds both); the ROC AUC comes from
  probabilities (the notebook used hard labels); splits live in
  :mod:`keras_gans.experiments.lesion_splits`;
* class weights default to the real training split's balanced weights, the same for both arms of
  a seed (``--class-weight 1:14`` for the report's ratio, see
  :func:`keras_gans.classifier.class_weights`);
* one seed drives the validation split, the initial weights, the augmentation and the synthetic
  draw; both arms share it, so the per-seed difference is a paired comparison, and running one arm
  does not change the other: the same seed and data give the same metrics;
* a run that predicts one class for more than 90% of the balanced test set is flagged as
  degenerate (on the terminal, in ``report.md`` and ``report.json``), and every threshold metric
  is also given at the threshold with the highest Youden's J on the validation split;
* BatchNorm statistics are recomputed on the training images when an epoch is too short for the
  moving averages (``--bn-stats auto``, the same for both arms; see
  :func:`keras_gans.classifier.resolve_bn_stats`).

A GAN that saw the test images would leak them into ``real+synthetic``; ``split`` writes the images
outside the test set for GAN training::

    python -m keras_gans.experiments.lesion_harness split --data-dir ISIC --img-size 64 --output pool
    python -m keras_gans.dcgan --data-dir pool --class melanoma --img-size 64 --output-dir g_mel
    python -m keras_gans.dcgan --data-dir pool --class nevus --img-size 64 --output-dir g_nev
    python -m keras_gans.experiments.lesion_harness run --data-dir ISIC --img-size 64 \\
        --synthetic melanoma=g_mel/models/generator.h5,nevus=g_nev/models/generator.h5

``run`` (the default command) writes ``report.json``, ``report.md``, ``roc.png``,
``confusion_<arm>.png``, ``predictions.npz`` and ``models/<arm>_seed<seed>.h5`` (see
:mod:`keras_gans.experiments.lesion_report`).
"""

import dataclasses
import logging
import os

import keras
import numpy as np
import tensorflow as tf
from sklearn.metrics import roc_curve
from tqdm import tqdm

from data_loaders.images import to_uint8
from keras_gans import cli
from keras_gans.classifier import (
    BATCH_SIZE,
    BN_MOMENTUM,
    BN_STATS,
    BN_STATS_CHOICES,
    EPOCHS,
    IMG_SIZE,
    LEARNING_RATE,
    LR_MONITOR,
    class_weights,
    predict_proba,
    resolve_bn_stats,
    train_classifier,
)
from keras_gans.errors import ConfigError
from keras_gans.experiments import lesion_pipeline
from keras_gans.experiments.lesion_report import (
    assemble_report,
    markdown_report,
    score_run,
    slug,
    warning_lines,
    write_outputs,
    write_predictions,
)
from keras_gans.experiments.lesion_splits import (
    SPLIT_SEED,
    TEST_PER_CLASS,
    VAL_FRACTION,
    export_training_pool,
    leakage_groups,
    split_indices,
)
from keras_gans.experiments.lesion_synthetic import SYNTHETIC_HELP, SyntheticSource, parse_counts
from keras_gans.saving import save_model

log = logging.getLogger(__name__)

SEEDS = (0, 1, 2)
POSITIVE = "melanoma"
ARMS = ("real", "real+synthetic")


@dataclasses.dataclass
class HarnessConfig:
    """The settings of :func:`run_experiment` (the report's values by default).

    ``n_synthetic``: synthetic images per class for ``real+synthetic``: ``None`` (as many as the
    class has real training images), ``N``, ``"melanoma=500,nevus=0"`` or ``{class: n}``.
    ``output_dir``: where models, predictions and the report go (``None``: nothing is written).
    """

    seeds: tuple = SEEDS
    epochs: int = EPOCHS
    batch_size: int = BATCH_SIZE
    class_weight: str = "auto"
    test_per_class: int = TEST_PER_CLASS
    val_fraction: float = VAL_FRACTION
    split_seed: int = SPLIT_SEED
    n_synthetic: object = None
    augment: bool = True
    positive: str = POSITIVE
    learning_rate: float = LEARNING_RATE
    bn_momentum: float = BN_MOMENTUM
    bn_stats: str = BN_STATS
    deterministic: bool = False
    output_dir: str | None = None

    def __post_init__(self):
        self.seeds = tuple(int(s) for s in self.seeds)
        if not self.seeds:
            raise ConfigError("--seeds: give at least one seed")
        for name in ("epochs", "batch_size", "test_per_class"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 1")
        if not 0.0 < self.val_fraction < 1.0:
            raise ConfigError(f"--val-fraction must be in (0, 1), got {self.val_fraction}")
        resolve_bn_stats(self.bn_stats, 1)  # a bad choice fails before any image is read


# --- the experiment -------------------------------------------------------------------------------
def run_experiment(data, config=None, synthetic=None):
    """Train and score every arm for every seed; returns the report dictionary.

    ``data``: an :class:`data_loaders.isic.IsicData` (or anything with ``images`` in [0, 1],
    ``labels``, ``ids``, ``lesion_ids``, ``class_names``). ``config``: a :class:`HarnessConfig`
    (default: the report's settings). ``synthetic``: a :class:`SyntheticSource` (or ``None``: the
    ``real`` arm only). Models (``.h5``), test predictions and the report files go to
    ``config.output_dir`` when it is set.
    """
    cfg = config or HarnessConfig()
    if cfg.deterministic:
        tf.config.experimental.enable_op_determinism()
    names = tuple(data.class_names)
    k = len(names)
    if cfg.positive not in names:
        log.warning("positive class %r is not among %s; using %r", cfg.positive, names, names[0])
    pos = names.index(cfg.positive) if cfg.positive in names else 0
    n_synthetic = parse_counts(cfg.n_synthetic, names)
    images = to_uint8(data.images, (0.0, 1.0))
    labels = np.asarray(data.labels, np.int64)
    groups = leakage_groups(images, data.lesion_ids)
    arms = list(ARMS if synthetic is not None else ARMS[:1])
    runs = {arm: [] for arm in arms}
    predictions = {}
    bar = tqdm(total=len(cfg.seeds) * len(arms), desc="seeds x arms", unit="run")
    for seed in cfg.seeds:
        split = split_indices(
            labels, groups, cfg.test_per_class, cfg.val_fraction, cfg.split_seed, seed
        )
        tr, va, te = split["train"], split["val"], split["test"]
        real_counts = np.bincount(labels[tr], minlength=k)
        # Both arms of a seed share the class weights and the BatchNorm treatment, taken from the
        # real training split, so neither confounds the paired difference.
        weights = class_weights(labels[tr], k, cfg.class_weight, class_names=names)
        bn_stats = resolve_bn_stats(cfg.bn_stats, len(tr), cfg.batch_size, cfg.bn_momentum)
        for arm in arms:
            x_train, y_train = images[tr], labels[tr]
            n_added = {}
            if arm != "real":
                wanted = n_synthetic or {c: int(real_counts[i]) for i, c in enumerate(names)}
                x_syn, y_syn = synthetic.sample(wanted, images.shape[1], seed)
                x_train = np.concatenate([x_train, x_syn])
                y_train = np.concatenate([y_train, y_syn])
                n_added = {c: int(np.sum(y_syn == i)) for i, c in enumerate(names)}
            bar.set_postfix(seed=seed, arm=arm)
            model, history = train_classifier(
                (x_train, y_train),
                (images[va], labels[va]),
                k,
                weights,
                seed,
                cfg.epochs,
                cfg.batch_size,
                cfg.augment,
                cfg.learning_rate,
                cfg.bn_momentum,
                bn_stats=bn_stats,
            )
            probs = predict_proba(model, images[te], cfg.batch_size)
            val_probs = predict_proba(model, images[va], cfg.batch_size)
            fpr, tpr, _ = roc_curve(labels[te] == pos, probs[:, pos])
            record = {
                "seed": int(seed),
                **score_run(labels[te], probs, labels[va], val_probs, pos, k),
                "train_counts": {c: int(np.sum(y_train == i)) for i, c in enumerate(names)},
                "synthetic_counts": n_added,
                "val_counts": {c: int(np.sum(labels[va] == i)) for i, c in enumerate(names)},
                "class_weight": {names[c]: w for c, w in weights.items()} if weights else None,
                "bn_stats": bn_stats,
                "epochs_run": len(history["loss"]),
                "best_epoch": int(np.argmin(history["val_loss"])) + 1,
                "roc": (fpr, tpr),
            }
            if cfg.output_dir:
                stem = os.path.join(cfg.output_dir, "models", f"{slug(arm)}_seed{seed}")
                path = save_model(model, stem, formats=("h5",))[0]
                record["model"] = os.path.relpath(path, cfg.output_dir)
            predictions[f"{slug(arm)}_seed{seed}"] = probs
            runs[arm].append(record)
            for line in warning_lines({"data": {"class_names": names}, "runs": {arm: [record]}}):
                log.warning(line)
            keras.backend.clear_session()
            bar.update(1)
    bar.close()
    settings = {
        "img_size": int(images.shape[1]),
        "seeds": list(cfg.seeds),
        "epochs": cfg.epochs,
        "batch_size": cfg.batch_size,
        "learning_rate": cfg.learning_rate,
        "bn_momentum": cfg.bn_momentum,
        "bn_stats": cfg.bn_stats,
        "class_weight": cfg.class_weight,
        "test_per_class": cfg.test_per_class,
        "val_fraction": cfg.val_fraction,
        "split_seed": cfg.split_seed,
        "augment": cfg.augment,
        "synthetic": None if synthetic is None else synthetic.spec,
        "n_synthetic": n_synthetic,
        "lr_monitor": LR_MONITOR,
    }
    report = assemble_report(settings, data, runs, names[pos], te)
    if cfg.output_dir:
        test_ids = np.array([str(data.ids[i]) for i in te])
        path = os.path.join(cfg.output_dir, "predictions.npz")
        write_predictions(path, test_ids=test_ids, y_true=labels[te], **predictions)
        write_outputs(report, runs, cfg.output_dir)
    return report


# --- command line ---------------------------------------------------------------------------------
def _data_args(parser):
    add = parser.add_argument
    add("--data-dir", default=None, help="ISIC folder (none: the built-in sample)")
    add("--img-size", type=cli.positive_int, default=IMG_SIZE, help="image side in pixels")
    add("--test-per-class", type=cli.positive_int, default=TEST_PER_CLASS, help="test images/class")
    add("--split-seed", type=cli.seed, default=SPLIT_SEED, help="picks the test set")
    add("--classes", default="melanoma,nevus", help="comma-separated, in label order")
    add("--strict", action="store_true", help="stop at an unreadable image")


def _classes(args):
    return tuple(c.strip() for c in args.classes.split(",") if c.strip())


def load_data(args):
    """The ISIC images of the command line, scaled to [0, 1] like the report's ``rescale=1/255``."""
    from data_loaders.isic import CLASSES, load_isic

    classes = _classes(args)
    unknown = [c for c in classes if c not in (*CLASSES, "other")]
    if unknown or not classes:
        raise ConfigError(f"--classes {args.classes!r}: choose from {', '.join(CLASSES)}, other")
    return load_isic(args.data_dir, args.img_size, classes, (0.0, 1.0), args.strict)


def _split_args(parser):
    _data_args(parser)
    parser.add_argument("--output", required=True, help="folder for <class>/<id>.png")


def _split(args):
    data = load_data(args)
    counts = export_training_pool(data, args.output, args.test_per_class, args.split_seed)
    print(f"wrote {counts} to {args.output} (test ids in test_ids.txt)")
    return counts


def run_arguments(parser, synthetic=True):
    """The options of ``run`` (``synthetic=False``: without ``--synthetic``, for ``pipeline``)."""
    _data_args(parser)
    add = parser.add_argument
    if synthetic:
        add("--synthetic", default=None, help=f"GAN images for real+synthetic: {SYNTHETIC_HELP}")
    add(
        "--n-synthetic",
        default=None,
        help="synthetic images per class: N or 'melanoma=500,nevus=0' (none given: as many as the "
        "class has real training images)",
    )
    add("--truncation", type=cli.positive_float, default=None, help="BigGAN truncation")
    add("--seeds", type=cli.seeds, default=",".join(map(str, SEEDS)), help="comma-separated")
    add("--epochs", type=cli.positive_int, default=EPOCHS, help="most epochs (early stopping)")
    add("--batch-size", type=cli.positive_int, default=BATCH_SIZE, help="batch size")
    add(
        "--class-weight",
        default="auto",
        help="'auto' (balanced, from the training split), 'none', 'MAJ:MIN' such as the "
        "report's '1:14', or 'melanoma=14,nevus=1'",
    )
    add("--val-fraction", type=float, default=VAL_FRACTION, help="validation share of the rest")
    add("--positive", default=POSITIVE, help="class whose recall is sensitivity")
    add(
        "--bn-momentum",
        type=cli.fraction,
        default=BN_MOMENTUM,
        help="BatchNorm momentum during training",
    )
    add(
        "--bn-stats",
        choices=BN_STATS_CHOICES,
        default=BN_STATS,
        help="BatchNorm statistics at validation and test: 'recompute' them on the training "
        "images, keep the 'moving' averages (the report), or 'auto': recompute when an epoch has "
        "fewer steps than the moving averages span",
    )
    add("--deterministic", action="store_true", help="deterministic TF ops (for GPUs)")
    add("--no-augment", action="store_true", help="train without augmentation")
    add("--output-dir", default=None, help="none: output/classifier/<data folder name>")


def data_name(args):
    return os.path.basename(os.path.normpath(args.data_dir)) if args.data_dir else "sample"


def config_from_args(args):
    """The :class:`HarnessConfig` of the command line; refuses a bad class weight at once."""
    classes = _classes(args)
    config = HarnessConfig(
        seeds=args.seeds,
        epochs=args.epochs,
        batch_size=args.batch_size,
        class_weight=args.class_weight,
        test_per_class=args.test_per_class,
        val_fraction=args.val_fraction,
        split_seed=args.split_seed,
        n_synthetic=parse_counts(args.n_synthetic, classes),
        augment=not args.no_augment,
        positive=args.positive,
        bn_momentum=args.bn_momentum,
        bn_stats=args.bn_stats,
        deterministic=args.deterministic,
        output_dir=args.output_dir or os.path.join("output", "classifier", data_name(args)),
    )
    class_weights([0, 1], len(classes), config.class_weight, class_names=classes)  # fail early
    return config


def _run(args):
    classes = _classes(args)
    config = config_from_args(args)
    synthetic = None  # checked before the images are read
    if args.synthetic:
        synthetic = SyntheticSource(args.synthetic, classes, args.truncation, args.strict)
    data = load_data(args)
    report = run_experiment(data, config, synthetic)
    print(markdown_report(report))
    print(f"outputs in {os.path.abspath(config.output_dir)}")
    return report


COMMANDS = [
    cli.Command(
        "run",
        "Train the report's melanoma / nevus CNN on real and on real + GAN images over seeds; "
        "report test metrics with t-intervals over seeds and paired differences.",
        run_arguments,
        _run,
    ),
    cli.Command(
        "split",
        "Write the images outside the held-out test set as OUTPUT/<class>/, for GAN training.",
        _split_args,
        _split,
    ),
    lesion_pipeline.COMMAND,
]


DESCRIPTION = __doc__.partition("\n")[0]


def main(argv=None):
    prog = "python -m keras_gans.experiments.lesion_harness"
    return cli.main(prog, DESCRIPTION, COMMANDS, argv)


if __name__ == "__main__":
    main()
