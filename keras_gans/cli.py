"""The one command-line runner behind every ``python -m keras_gans.<report>``.

Each entry point lists its :class:`Command` objects and calls :func:`main`. The runner gives them:

* ``argparse`` subcommands with their defaults shown; the first command is the default, so
  ``python -m keras_gans.cyclegan --max-steps 3`` means ``... cyclegan train --max-steps 3``;
* the shared options (:func:`add_training_args`, :func:`seeds`), which mean the same everywhere;
* logging, and one shared tail for training (:func:`train`);
* known failures (:class:`keras_gans.errors.KerasGansError`: a bad model file, a missing or empty
  data folder, missing Inception weights offline, a checkpoint that does not fit, divergence, a bad
  option) as one line ``error: ...`` and exit code 2, without a traceback unless ``--debug``.
"""

import argparse
import dataclasses
import logging
import sys
from collections.abc import Callable

from keras_gans import distribute
from keras_gans.errors import KerasGansError


@dataclasses.dataclass
class Command:
    """A subcommand: its name, one line of help, its options and what it runs."""

    name: str
    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], object]


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults shown; descriptions kept as written."""


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


def seeds(text):
    """``--seeds``: a comma-separated list of seeds, e.g. ``0,1,2`` (``2`` is the one seed 2)."""
    try:
        values = [int(s) for s in text.replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seeds such as 0,1,2, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one seed")
    return values


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
    add("--seed", type=int, default=None, help="seed for weights, data and noise")
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


def main(prog, description, commands, argv=None):
    """Parse ``argv`` (default ``sys.argv[1:]``) and run the chosen command; returns its result."""
    parser = argparse.ArgumentParser(prog=prog, description=description, formatter_class=_Formatter)
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
        return args._run(args)
    except KerasGansError as err:
        if args.debug:
            raise
        message = " ".join(str(err).split())
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(2) from None
