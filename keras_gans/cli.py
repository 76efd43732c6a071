"""The one command-line runner behind every ``python -m keras_gans.<report>``.

Each entry point lists its :class:`Command` objects and calls :func:`main`. The runner gives them:

* ``argparse`` subcommands with their defaults shown; the first command is the default, so
  ``python -m keras_gans.cyclegan --max-steps 3`` means ``... cyclegan train --max-steps 3``;
* the shared options (:func:`add_training_args`, :func:`seeds`), which mean the same everywhere;
* logging, and one shared tail for training (:func:`train`);
* known failures (:class:`keras_gans.errors.KerasGansError`: a bad model file, a missing or empty
  data folder, missing Inception weights offline, a checkpoint that does not fit, divergence, a bad
  option, a full disk, an output folder in use) as one line ``error: ...`` and exit code 2, without
  a traceback unless ``--debug``; a bad option too, as one line (:class:`Parser`);
* a run stopped by SIGTERM / SIGINT after its checkpoint (:class:`keras_gans.errors.
  TrainingInterrupted`): one line ``stopped: ...`` and exit code 143 / 130 (128 + the signal).
"""

import argparse
import dataclasses
import logging
import os
import sys
from collections.abc import Callable

from keras_gans import distribute
from keras_gans.errors import (
    ConfigError,
    DiskFullError,
    KerasGansError,
    TrainingInterrupted,
    is_disk_full,
)


@dataclasses.dataclass
class Command:
    """A subcommand: its name, one line of help, its options and what it runs."""

    name: str
    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], object]


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults shown; descriptions kept as written."""


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line naming the argument, exit code 2 (argparse's
    own prints the whole usage first, which buries the line that matters)."""

    def error(self, message):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def _number(kind, allow_zero=False):
    """An argparse type: ``kind`` that must be > 0 (or >= 0 with ``allow_zero``)."""

    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            article = "an" if kind is int else "a"
            raise argparse.ArgumentTypeError(
                f"expected {article} {kind.__name__}, got {text!r}"
            ) from None
        if value < 0 or (value == 0 and not allow_zero):
            raise argparse.ArgumentTypeError(f"must be {'>=' if allow_zero else '>'} 0, got {text}")
        return value

    parse.__name__ = f"{'non-negative' if allow_zero else 'positive'} {kind.__name__}"
    return parse


positive_int = _number(int)
positive_float = _number(float)
non_negative_int = _number(int, allow_zero=True)
non_negative_float = _number(float, allow_zero=True)
seed = non_negative_int  # NumPy and Keras refuse negative seeds


def fraction(text):
    """An argparse type: a float in [0, 1) (Adam's beta_1, an EMA decay, a BatchNorm momentum)."""
    value = _number(float, allow_zero=True)(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def sha256(text):
    """``--sha256``: a file's expected SHA-256, 64 hexadecimal digits."""
    if len(text) != 64 or any(c not in "0123456789abcdefABCDEF" for c in text):
        raise argparse.ArgumentTypeError(f"expected 64 hexadecimal digits, got {text!r}")
    return text.lower()


def seeds(text):
    """``--seeds``: a comma-separated list of seeds, e.g. ``0,1,2`` (``2`` is the one seed 2)."""
    try:
        values = [int(s) for s in text.replace(",", " ").split()]
    except ValueError:
        values = [-1]
    if any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected seeds such as 0,1,2, got {text!r}")
    if not values:
        raise argparse.ArgumentTypeError("expected at least one seed")
    return values


def add_isic_args(parser):
    """``--classes`` and ``--dedup`` of the ISIC GANs (:func:`data_loaders.isic.load_isic`)."""
    from data_loaders.isic import DEDUP
    from data_loaders.isic_metadata import parse_classes

    add = parser.add_argument
    add(
        "--classes",
        type=parse_classes,
        default="melanoma,nevus",
        help="ISIC diagnoses to learn: all (the report's) or names such as melanoma,nevus",
    )
    add("--dedup", default="lesion", choices=DEDUP, help="ISIC duplicates to drop (lesion: ids)")


def add_training_args(parser, trainer_cls, epochs=None):
    """The options every trainer shares, with ``trainer_cls``'s defaults."""
    add = parser.add_argument
    add("--output-dir", default=None, help="where images, models and logs go")
    add(
        "--epochs",
        type=positive_int,
        default=epochs,
        help=f"epochs (none given: {trainer_cls.default_epochs}, or as many as --max-steps needs)",
    )
    add("--max-steps", type=non_negative_int, default=None, help="stop after this many steps")
    add(
        "--batch-size",
        type=positive_int,
        default=trainer_cls.default_batch_size,
        help="global batch",
    )
    add(
        "--sample-interval",
        type=non_negative_int,
        default=trainer_cls.default_sample_interval,
        help="steps between sample grids (0 = only at the end)",
    )
    add("--seed", type=seed, default=None, help="seed for weights, data and noise")
    add(
        "--strategy",
        default="auto",
        choices=distribute.STRATEGIES,
        help="tf.distribute strategy (auto = mirrored on >1 GPU, else default)",
    )
    add(
        "--mixed-precision",
        default=None,
        choices=distribute.PRECISIONS,
        help="compute in float16 (GPU) or bfloat16; variables and outputs stay float32",
    )
    add("--jit", action="store_true", help="compile the train steps with XLA")
    add(
        "--run-eagerly",
        action="store_true",
        default=None,
        help="run the train steps without tf.function: for a debugger, or a few steps of a tiny "
        "model (tracing costs more); env KERAS_GANS_RUN_EAGERLY=1 does the same",
    )
    add(
        "--accumulate",
        type=positive_int,
        default=1,
        help="split each global batch into N micro-batches and accumulate gradients",
    )
    add("--checkpoint-every", type=non_negative_int, default=500, help="steps (0 = never)")
    add("--keep-checkpoints", type=positive_int, default=3, help="checkpoints kept")
    add(
        "--no-resume",
        dest="resume",
        action="store_false",
        help="start afresh even if OUTPUT/checkpoints holds a checkpoint",
    )
    add(
        "--on-nan",
        default="stop",
        choices=("stop", "rollback"),
        help="on a NaN/Inf loss: stop (keep the last good checkpoint) or roll back and halve the LR",
    )
    add("--strict", action="store_true", help="fail on an unreadable image")
    add("--deterministic", action="store_true", help="deterministic TF ops")
    add(
        "--eval-every",
        type=non_negative_int,
        default=0,
        help="steps between quality evaluations (0 = never)",
    )
    add(
        "--eval-extractor",
        default=None,
        help="features for FID/KID: 'inception' (ImageNet weights, see README) or MODEL.h5:LAYER",
    )
    add(
        "--init-from",
        default=None,
        metavar="DIR_OR_FILES",
        help="start from saved models: a folder with NAME.h5|.keras (or a run folder) for every "
        "model, or NAME=FILE[,NAME=FILE] for some; optimizers and step start fresh; a checkpoint "
        "in --output-dir is resumed instead (unless --no-resume)",
    )
    return parser


def runtime_kwargs(args):
    """The :class:`keras_gans.training.GANTrainer` run options from :func:`add_training_args`."""
    names = (
        "output_dir",
        "seed",
        "strategy",
        "mixed_precision",
        "jit",
        "accumulate",
        "checkpoint_every",
        "keep_checkpoints",
        "resume",
        "on_nan",
        "strict",
        "deterministic",
        "eval_every",
        "eval_extractor",
        "init_from",
        "run_eagerly",
    )
    return {name: getattr(args, name) for name in names}


def train(trainer, args):
    """The shared tail: run the trainer with the command line's loop options, say where it wrote."""
    summary = trainer.run(args.epochs, args.batch_size, args.sample_interval, args.max_steps)
    if trainer.is_chief:
        print(
            f"done: {summary['steps']} steps in {summary['seconds']} s; outputs in {trainer.output_dir}"
        )
    return trainer


def _check_early(args):
    """What is cheap to check is checked before any data is read or model built."""
    distribute.check_strategy(getattr(args, "strategy", None))
    data_dir = getattr(args, "data_dir", None)
    if data_dir and data_dir != "keras" and not os.path.exists(data_dir):  # 'keras': MNIST's
        raise ConfigError(f"--data-dir {data_dir}: no such folder or file")


def main(prog, description, commands, argv=None):
    """Parse ``argv`` (default ``sys.argv[1:]``) and run the chosen command; returns its result."""
    parser = Parser(prog=prog, description=description, formatter_class=_Formatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    names = [c.name for c in commands]
    for command in commands:
        p = sub.add_parser(
            command.name,
            help=command.help,
            description=command.help,
            formatter_class=_Formatter,
        )
        command.arguments(p)
        listing = f"Commands of {prog}: {', '.join(names)} (default: {names[0]})."
        p.epilog = "\n".join(filter(None, [p.epilog, listing]))
        p.add_argument("--debug", action="store_true", help="show the traceback of a known error")
        p.add_argument("--verbose", action="store_true", help="show TensorFlow's own log lines")
        p.set_defaults(_run=command.run)
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in names:
        argv.insert(0, names[0])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if not args.verbose:
        logging.getLogger("absl").setLevel(logging.WARNING)
    try:
        _check_early(args)
        return args._run(args)
    except TrainingInterrupted as err:
        print(f"stopped: {err}", file=sys.stderr)
        raise SystemExit(err.exit_code) from None
    except (KerasGansError, OSError) as err:
        known = isinstance(err, KerasGansError)
        if args.debug or not (known or is_disk_full(err)):
            raise
        if not known:  # a full disk outside a checkpoint: a log row, a grid, a report
            err = DiskFullError(f"no space left on the device ({err}); free some space")
        message = " ".join(str(err).split())
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(2) from None
