"""The train-on-batch plumbing every keras_gans trainer shares.

A trainer subclasses :class:`GANTrainer`, builds its models inside ``self.strategy.scope()``, lists what
must be checkpointed in :meth:`checkpoint_objects`, and runs its report's ``train_on_batch`` loop with
:meth:`progress`, :meth:`log_step` and :meth:`maybe_checkpoint`. What it gets from here:

* a ``tf.distribute`` strategy, chief-only writing, mixed precision and XLA switches;
* :meth:`set_trainable`, the Keras 3 way to freeze a discriminator for a combined model (Keras 3 reads
  ``trainable`` when a model's train function is first traced, so the flag is set before every call);
* ``losses.csv`` and ``losses.png``, a ``tqdm`` progress bar, a ``summary.json`` for the run;
* checkpoints of all models, optimizer states and counters every N steps (``tf.train.CheckpointManager``:
  the ``checkpoint`` index file is replaced atomically after the data is written, so a crash mid-write
  leaves the previous checkpoint as the latest), kept K deep, and resumption from the exact step;
* a stop on NaN / Inf losses that keeps the last good checkpoint, or a roll-back with a lower learning rate.

Randomness is keyed by ``(seed, epoch)`` for the data order and ``(seed, step)`` for noise, so a resumed
run draws exactly what the uninterrupted run would have drawn without saving any generator state.
"""

import csv
import json
import logging
import math
import os
import shutil
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from keras_gans import distribute, plotting

log = logging.getLogger(__name__)


class DivergenceError(RuntimeError):
    """A loss became NaN or Inf."""


def add_common_args(parser, epochs=None, batch_size=1, sample_interval=50):
    """The options every trainer's CLI shares (documented with their defaults)."""
    parser.add_argument("--output-dir", default=None, help="where images, models and logs go")
    parser.add_argument("--epochs", type=int, default=epochs, help=f"epochs (default: {epochs})")
    parser.add_argument("--max-steps", type=int, default=None, help="stop after this many steps")
    parser.add_argument(
        "--batch-size", type=int, default=batch_size, help=f"global batch (default: {batch_size})"
    )
    parser.add_argument(
        "--sample-interval",
        type=int,
        default=sample_interval,
        help=f"steps between sample grids (default: {sample_interval})",
    )
    parser.add_argument("--seed", type=int, default=None, help="seed for weights, data and noise")
    parser.add_argument(
        "--strategy",
        default="auto",
        choices=distribute.STRATEGIES,
        help="tf.distribute strategy (default: auto = mirrored on >1 GPU, else default)",
    )
    parser.add_argument(
        "--mixed-precision",
        default=None,
        choices=distribute.PRECISIONS,
        help="compute in float16 (GPU) or bfloat16; variables and outputs stay float32",
    )
    parser.add_argument("--jit", action="store_true", help="compile the train steps with XLA")
    parser.add_argument(
        "--accumulate",
        type=int,
        default=1,
        help="split each global batch into N micro-batches and accumulate gradients",
    )
    parser.add_argument("--checkpoint-every", type=int, default=500, help="steps (0 = never)")
    parser.add_argument("--keep-checkpoints", type=int, default=3, help="checkpoints kept")
    parser.add_argument(
        "--no-resume",
        dest="resume",
        action="store_false",
        help="start afresh even if OUTPUT/checkpoints holds a checkpoint",
    )
    parser.add_argument(
        "--on-nan",
        default="stop",
        choices=("stop", "rollback"),
        help="on a NaN/Inf loss: stop (keep the last good checkpoint) or roll back and halve the LR",
    )
    parser.add_argument("--strict", action="store_true", help="fail on an unreadable image")
    parser.add_argument("--deterministic", action="store_true", help="deterministic TF ops")
    parser.add_argument(
        "--eval-every", type=int, default=0, help="steps between quality evaluations (0 = never)"
    )
    parser.add_argument(
        "--eval-extractor",
        default=None,
        help="features for FID/KID: 'inception' (ImageNet weights, see README) or MODEL.h5:LAYER",
    )
    return parser


def runtime_kwargs(args):
    """The :class:`GANTrainer` keyword arguments from parsed :func:`add_common_args` options."""
    return {
        "output_dir": args.output_dir,
        "seed": args.seed,
        "strategy": args.strategy,
        "mixed_precision": args.mixed_precision,
        "jit": args.jit,
        "accumulate": args.accumulate,
        "checkpoint_every": args.checkpoint_every,
        "keep_checkpoints": args.keep_checkpoints,
        "resume": args.resume,
        "on_nan": args.on_nan,
        "strict": args.strict,
        "deterministic": args.deterministic,
        "eval_every": args.eval_every,
        "eval_extractor": args.eval_extractor,
    }


class LossLog:
    """``losses.csv``: one row per step; columns grow as new values (e.g. FID) appear."""

    def __init__(self, path):
        self.path = path
        self.columns = []
        if os.path.exists(path):
            with open(path, newline="") as f:
                self.columns = next(csv.reader(f), [])

    def truncate_after(self, step):
        """Drop rows past ``step`` (written after the checkpoint a run resumes from)."""
        if not os.path.exists(self.path):
            return
        with open(self.path, newline="") as f:
            rows = [r for r in csv.DictReader(f) if int(float(r["step"])) <= step]
        self._rewrite(rows)

    def _rewrite(self, rows):
        tmp = f"{self.path}.tmp"
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, self.columns, restval="")
            writer.writeheader()
            writer.writerows(rows)
        os.replace(tmp, self.path)

    def append(self, row):
        new = [k for k in row if k not in self.columns]
        if new:
            rows = []
            if os.path.exists(self.path):
                with open(self.path, newline="") as f:
                    rows = list(csv.DictReader(f))
            self.columns += new
            self._rewrite(rows)
        elif not os.path.exists(self.path):
            self._rewrite([])
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, self.columns, restval="").writerow(
                {k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()}
            )


class GANTrainer:
    """Base class of the keras_gans trainers; see the module docstring."""

    loss_groups = None  # {panel title: [csv columns]} for losses.png

    def setup_runtime(
        self,
        output_dir,
        strategy="auto",
        seed=None,
        mixed_precision=None,
        jit=False,
        accumulate=1,
        checkpoint_every=500,
        keep_checkpoints=3,
        resume=True,
        on_nan="stop",
        strict=False,
        deterministic=False,
        eval_every=0,
        eval_extractor=None,
    ):
        """Set the run-wide state; call first in a subclass ``__init__``, before building models."""
        if accumulate < 1:
            raise ValueError(f"accumulate must be >= 1, got {accumulate}")
        if on_nan not in ("stop", "rollback"):
            raise ValueError(f"on_nan must be 'stop' or 'rollback', got {on_nan!r}")
        self.seed = seed
        if seed is not None:
            keras.utils.set_random_seed(seed)
        if deterministic:
            tf.config.experimental.enable_op_determinism()
        self.precision = distribute.set_precision(mixed_precision)
        self.strategy = distribute.get_strategy(strategy)
        self.is_chief = distribute.is_chief(self.strategy)
        self.jit_compile = distribute.jit_setting(jit)
        self.accumulate = int(accumulate)
        self.checkpoint_every = checkpoint_every
        self.keep_checkpoints = keep_checkpoints
        self.resume = resume
        self.on_nan = on_nan
        self.strict = strict
        self.eval_every = eval_every
        self.eval_extractor = eval_extractor
        self._evaluator = None
        self.output_dir = os.path.abspath(output_dir)
        self.images_dir = os.path.join(self.output_dir, "images")
        self.models_dir = os.path.join(self.output_dir, "models")
        self.checkpoint_dir = os.path.join(self.output_dir, "checkpoints")
        if self.is_chief:
            for d in (self.images_dir, self.models_dir):
                os.makedirs(d, exist_ok=True)
        self.loss_log = LossLog(os.path.join(self.output_dir, "losses.csv"))
        self.step = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        self.skipped_files = []
        self._manager = None
        self._started = time.time()

    # --- randomness -----------------------------------------------------------------------------
    def rng(self, *key):
        """A NumPy generator keyed by ``(seed, *key)``; the same key always gives the same draws."""
        base = self.seed if self.seed is not None else 0x5EED
        return np.random.default_rng([base, *[int(k) for k in key]])

    # --- Keras 3 freezing -----------------------------------------------------------------------
    @staticmethod
    def set_trainable(model, flag):
        """Freeze or unfreeze ``model`` (and its layers) before a ``train_on_batch`` call."""
        if model.trainable != flag:
            model.trainable = flag

    def train_on_batch(self, model, x, y):
        """``train_on_batch`` with the global batch split over replicas; returns a logs dict."""
        return distribute.train_on_batch(model, x, y, self.strategy)

    def update(self, model, x, y):
        """One optimizer update of ``model``: a ``train_on_batch``, or, with ``accumulate`` = N,
        N of them on equal slices of the batch (the optimizer applies their averaged gradient once).

        ``x`` and ``y`` may be arrays or lists of arrays (multi-input / multi-output models).
        """
        if self.accumulate == 1:
            return self.train_on_batch(model, x, y)
        n = self.accumulate

        def piece(v, i):
            if isinstance(v, (list, tuple)):
                return [np.array_split(np.asarray(t), n)[i] for t in v]
            return np.array_split(np.asarray(v), n)[i]

        logs = [self.train_on_batch(model, piece(x, i), piece(y, i)) for i in range(n)]
        return {k: float(np.mean([entry[k] for entry in logs])) for k in logs[0]}

    def make_optimizer(self, learning_rate, **kwargs):
        """A fresh optimizer (never shared between compiled models; Keras 3 refuses that)."""
        if self.accumulate > 1:
            kwargs["gradient_accumulation_steps"] = self.accumulate
        return keras.optimizers.Adam(learning_rate, **kwargs)

    # --- checkpoints ----------------------------------------------------------------------------
    def checkpoint_objects(self):
        """``{name: model or optimizer}`` to checkpoint; subclasses override."""
        raise NotImplementedError

    def _checkpoint(self):
        if self._manager is None:
            self._counters = tf.Variable([0, 0, 0], dtype=tf.int64, trainable=False)
            ckpt = tf.train.Checkpoint(counters=self._counters, **self.checkpoint_objects())
            directory = self.checkpoint_dir
            if not self.is_chief:  # MultiWorkerMirroredStrategy: every worker saves, one keeps it
                directory = tempfile.mkdtemp(prefix="keras_gans_worker_ckpt_")
            self._manager = tf.train.CheckpointManager(
                ckpt, directory, max_to_keep=max(1, self.keep_checkpoints)
            )
        return self._manager

    def save_checkpoint(self):
        manager = self._checkpoint()
        self._counters.assign([self.step, self.epoch, self.batch_in_epoch])
        path = manager.save(checkpoint_number=self.step)
        if self.is_chief:
            state = {"step": self.step, "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch}
            _atomic_json(os.path.join(self.checkpoint_dir, "state.json"), state)
        return path

    def maybe_checkpoint(self):
        if self.checkpoint_every and self.step % self.checkpoint_every == 0:
            self.save_checkpoint()

    def build_optimizers(self):
        """Create optimizer slots before a restore, so every value is read (not deferred) at once."""

    def restore_checkpoint(self):
        """Restore the newest readable checkpoint (if ``resume``); True if one was restored.

        An unreadable newest checkpoint (say, truncated by a full disk) is reported and the next
        older one is used, so one damaged file does not cost the run.
        """
        manager = self._checkpoint()
        # Every worker reads the chief's checkpoints (a shared folder in a multi-machine run).
        state = tf.train.get_checkpoint_state(self.checkpoint_dir)
        paths = list(state.all_model_checkpoint_paths) if state else []
        if not (self.resume and paths):
            return False
        self.build_optimizers()
        errors = []
        for path in reversed(paths):
            try:
                manager.checkpoint.restore(path).assert_existing_objects_matched()
            except Exception as err:  # whatever makes it unreadable, an older one may be fine
                log.warning("checkpoint %s cannot be read (%s); trying an older one", path, err)
                errors.append(f"{path}: {type(err).__name__}")
                continue
            self.step, self.epoch, self.batch_in_epoch = (int(v) for v in self._counters.numpy())
            self.loss_log.truncate_after(self.step)
            log.info("resumed from %s at step %d (epoch %d)", path, self.step, self.epoch)
            return True
        raise RuntimeError(
            f"no checkpoint in {self.checkpoint_dir} can be read ({'; '.join(errors)}); "
            "delete the folder or start afresh with --no-resume"
        )

    # --- quality evaluation (--eval-every) -------------------------------------------------------
    def evaluate(self):
        """Quality metrics of the current models, as ``{name: float}``; subclasses override."""
        return {}

    def maybe_evaluate(self):
        """:meth:`evaluate` every ``eval_every`` steps on the chief; its values join losses.csv."""
        if not (self.eval_every and self.is_chief and self.step % self.eval_every == 0):
            return {}
        return {k: float(v) for k, v in self.evaluate().items() if v is not None}

    def fid_kid(self, real_images, fake_images):
        """FID and KID of ``fake_images`` against ``real_images`` (features computed once)."""
        if not self.eval_extractor:
            return {}
        from keras_gans.metrics import GenerativeEvaluator

        if self._evaluator is None:
            self._evaluator = GenerativeEvaluator(real_images, extractor=self.eval_extractor)
        return self._evaluator(fake_images)

    # --- logging --------------------------------------------------------------------------------
    def progress(self, total, initial=0, desc="train"):
        return tqdm(total=total, initial=initial, desc=desc, disable=not self.is_chief, leave=True)

    def log_step(self, values, bar=None):
        """Check ``values`` are finite, write them to ``losses.csv`` and the progress bar."""
        bad = {k: v for k, v in values.items() if not math.isfinite(float(v))}
        if bad:
            self._diverged(bad)
            return False
        if self.is_chief:
            self.loss_log.append({"step": self.step, "epoch": self.epoch, **values})
        if bar is not None:
            bar.set_postfix({k: f"{float(v):.3g}" for k, v in values.items()}, refresh=False)
        return True

    def _diverged(self, bad):
        latest = tf.train.latest_checkpoint(self.checkpoint_dir)
        what = ", ".join(f"{k}={v}" for k, v in bad.items())
        if self.on_nan == "rollback" and latest:
            self.restore_checkpoint()
            for opt in self.optimizers():
                opt.learning_rate.assign(opt.learning_rate * 0.5)
            log.warning(
                "%s at step %d: rolled back to %s, learning rates halved", what, self.step, latest
            )
            return
        kept = (
            f"the last good checkpoint is {latest}" if latest else "no checkpoint had been written"
        )
        raise DivergenceError(
            f"training diverged at step {self.step}: {what}. Stopped; {kept}. Lower the learning "
            "rate, or pass --on-nan rollback to roll back automatically."
        )

    def optimizers(self):
        return [
            o
            for o in self.checkpoint_objects().values()
            if isinstance(o, keras.optimizers.Optimizer)
        ]

    def plot_losses(self):
        if self.is_chief:
            plotting.plot_losses(
                self.loss_log.path,
                os.path.join(self.output_dir, "losses.png"),
                groups=self.loss_groups,
            )

    def write_summary(self, **extra):
        if not self.is_chief:
            return None
        summary = {
            "steps": self.step,
            "epochs": self.epoch,
            "seconds": round(time.time() - self._started, 1),
            "strategy": type(self.strategy).__name__,
            "replicas": self.strategy.num_replicas_in_sync,
            "precision": self.precision,
            "skipped_files": len(self.skipped_files),
            "skipped": list(self.skipped_files),
            **extra,
        }
        _atomic_json(os.path.join(self.output_dir, "summary.json"), summary)
        return summary


def _atomic_json(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=2, default=float)
    os.replace(tmp, path)


def clean_dir(path):
    """Remove ``path`` if it exists (used by ``--no-resume`` callers that want a fresh folder)."""
    shutil.rmtree(path, ignore_errors=True)
