"""The training core every keras_gans trainer shares: one loop, :meth:`GANTrainer.run`.

A trainer declares what is specific to its paper and leaves the run to this module:

* :meth:`GANTrainer.build` (called inside the strategy's scope) builds the networks, compiles the
  models it trains with :meth:`GANTrainer.compile` (which records the models each one freezes) and
  returns ``{name: model}``, the models saved for reuse and checkpointed;
* :meth:`GANTrainer.steps_per_epoch` and :meth:`GANTrainer.batches` give the batches of an epoch,
  seeded by ``(seed, epoch)`` and skipping the ones already trained on resume;
* :meth:`GANTrainer.train_step` runs the report's ``train_on_batch`` calls through
  :meth:`GANTrainer.update` and returns ``{name: float}``;
* :meth:`GANTrainer.sample_grid` returns the sample images, which the core names and saves.

From that the core gives every trainer the same behaviour: optimizer slots built inside the
strategy's scope, checkpoints of every model, optimizer and counter (``tf.train.CheckpointManager``
replaces its index file only after the data is written), resume from the exact step, a refusal of a
checkpoint written with other hyper-parameters, a stop (or a roll-back) on NaN / Inf losses,
``losses.csv`` / ``losses.png``, grids ``images/<step>.png``, models ``models/<name>.{h5,keras}``
written with every checkpoint and at the end, ``summary.json``, one run per output folder and a
checkpoint on SIGTERM / SIGINT (:mod:`keras_gans.run_guard`).

Keras 3 reads ``trainable`` when a model's train function is first traced, so :meth:`update` sets the
flags before every call: the models a compiled model freezes are frozen, the model itself unfrozen.

Randomness is keyed by ``(seed, epoch)`` for the data order and ``(seed, step)`` for noise, and the
Keras seed-generator states (Dropout masks) are checkpointed, so a resumed run draws exactly what the
uninterrupted run would have drawn.
"""

import logging
import math
import os
import shutil
import time

import keras
import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from keras_gans import distribute, initialization, plotting, reports, run_guard
from keras_gans.checkpoints import Checkpointing
from keras_gans.errors import ConfigError, DivergenceError
from keras_gans.reports import LossLog
from keras_gans.run_evaluation import RunEvaluation
from keras_gans.saving import save_model

log = logging.getLogger(__name__)

__all__ = ["GANTrainer", "LossLog", "DivergenceError"]


class GANTrainer(Checkpointing, RunEvaluation):
    """Base class of the keras_gans trainers; see the module docstring.

    Subclasses set the class attributes below, call :meth:`setup_runtime` and then
    :meth:`build_models` in ``__init__``, and implement the declaration methods.
    """

    name = "gan"  # progress bar label and default output folder
    loss_groups = None  # {panel title: [csv columns]} for losses.png
    default_epochs = 1
    default_batch_size = 1
    default_sample_interval = 50

    # --- set-up -----------------------------------------------------------------------------------
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
        init_from=None,
        run_eagerly=None,
        coverage_classifier=None,
        coverage_classes=None,
    ):
        """Set the run-wide state; call first in a subclass ``__init__``, before building models."""
        if accumulate < 1:
            raise ConfigError(f"--accumulate must be >= 1, got {accumulate}")
        if on_nan not in ("stop", "rollback"):
            raise ConfigError(f"--on-nan must be 'stop' or 'rollback', got {on_nan!r}")
        for option, value in (
            ("--checkpoint-every", checkpoint_every),
            ("--eval-every", eval_every),
        ):
            if value is not None and value < 0:
                raise ConfigError(f"{option} must be >= 0, got {value}")
        self.seed = seed
        if seed is not None:
            keras.utils.set_random_seed(seed)
        if deterministic:
            tf.config.experimental.enable_op_determinism()
        self.precision = distribute.set_precision(mixed_precision)
        self.strategy = distribute.get_strategy(strategy)
        self.is_chief = distribute.is_chief(self.strategy)
        self.jit_compile = distribute.jit_setting(jit)
        if run_eagerly is None:  # the test suite sets it: a trace costs more than a few tiny steps
            run_eagerly = os.environ.get("KERAS_GANS_RUN_EAGERLY", "") not in ("", "0")
        self.run_eagerly = bool(run_eagerly)
        self.accumulate = int(accumulate)
        self.checkpoint_every = checkpoint_every or 0
        self.keep_checkpoints = keep_checkpoints
        self.resume = resume
        self.on_nan = on_nan
        self.strict = strict
        self.eval_every = eval_every or 0
        self.eval_extractor = eval_extractor
        self._evaluator, self._eval_keys = None, set()
        self.coverage_classifier, self.coverage_classes = coverage_classifier, coverage_classes
        if isinstance(coverage_classifier, (str, os.PathLike)):  # a bad file fails before building
            from keras_gans.mode_coverage import digit_classifier

            self.coverage_classifier = digit_classifier(path=coverage_classifier)
        elif callable(coverage_classifier) and not isinstance(coverage_classifier, keras.Model):
            self.coverage_classifier = coverage_classifier()  # trained (or read from its cache)
        self.output_dir = os.path.abspath(output_dir)
        if self.is_chief:  # another live run there: stop before anything is built
            run_guard.refuse_if_locked(self.output_dir)
        self.images_dir = os.path.join(self.output_dir, "images")
        self.models_dir = os.path.join(self.output_dir, "models")
        self.checkpoint_dir = os.path.join(self.output_dir, "checkpoints")
        self.loss_log = LossLog(os.path.join(self.output_dir, "losses.csv"))
        self.step = self.epoch = self.batch_in_epoch = 0
        self.skipped_files = []
        self.models, self.compiled = {}, {}
        self._manager = None
        self._saved_checkpoint = None  # the newest checkpoint this run wrote or restored
        self._sampled_at = self._models_saved_at = None
        self._started = time.time()
        self.init_from, self.init_sources, self._init_summary = init_from, {}, {}

    def build_models(self):
        """Run :meth:`build` and create every optimizer's slots, both inside the strategy's scope
        (slots made later, e.g. by a restore, would be outside it and fail under MirroredStrategy),
        then copy in the weights of the ``init_from`` files (:mod:`keras_gans.initialization`)."""
        with self.strategy.scope():
            self.models = dict(self.build())
            self.build_optimizers()
        if self.init_from:
            self.init_sources = initialization.initialize(self.models, self.init_from)

    def compile(self, model, frozen=(), **kwargs):
        """``model.compile(**kwargs)`` (with the run's XLA setting); ``frozen``: the models it holds
        that stay fixed in its update (a discriminator inside a combined model)."""
        for m in frozen:
            self.set_trainable(m, False)
        eager = self.run_eagerly
        model.compile(jit_compile=self.jit_compile and not eager, run_eagerly=eager, **kwargs)
        self.compiled[model.name] = (model, tuple(frozen))
        return model

    def make_optimizer(self, learning_rate, **kwargs):
        """A fresh Adam (never shared between compiled models; Keras 3 refuses that)."""
        if self.accumulate > 1:
            kwargs["gradient_accumulation_steps"] = self.accumulate
        return keras.optimizers.Adam(learning_rate, **kwargs)

    # --- the declaration (subclasses) ---------------------------------------------------------------
    def build(self):
        """Build and compile the models; return ``{name: model}`` (saved and checkpointed)."""
        raise NotImplementedError

    def steps_per_epoch(self, batch_size):
        """Batches in one epoch of ``batch_size``."""
        raise NotImplementedError

    def batches(self, batch_size, epoch, skip):
        """The batches of ``epoch`` (seeded by ``(seed, epoch)``), the first ``skip`` left out."""
        raise NotImplementedError

    def train_step(self, batch):
        """One training step on ``batch``; returns ``{name: float}`` for the log."""
        raise NotImplementedError

    def sample_grid(self):
        """Sample images: ``{"images", "rows", "cols"[, "titles", "row_labels"]}``."""
        raise NotImplementedError

    def config(self):
        """The hyper-parameters that fix the models' shapes; a checkpoint must match them."""
        return {}

    def summary_info(self):
        """Extra entries for ``summary.json``."""
        return {}

    def evaluate(self):
        """Quality metrics of the current models, as ``{name: float}`` (``--eval-every``)."""
        return {}

    def save_extras(self):
        """Files beside the saved models (e.g. BigGAN's ``classes.json``)."""

    def checkpoint_extras(self):
        """Extra ``{name: tf.Variable}`` to checkpoint (a stage, a fade-in alpha)."""
        return {}

    # --- randomness ---------------------------------------------------------------------------------
    def rng(self, *key):
        """A NumPy generator keyed by ``(seed, *key)``; the same key always gives the same draws."""
        base = self.seed if self.seed is not None else 0x5EED
        return np.random.default_rng([base, *[int(k) for k in key]])

    # --- updates ------------------------------------------------------------------------------------
    @staticmethod
    def set_trainable(model, flag):
        """Freeze or unfreeze ``model`` (and its layers) before a ``train_on_batch`` call."""
        if model.trainable != flag:
            model.trainable = flag

    def _prepare(self, model):
        frozen = self.compiled.get(model.name, (model, ()))[1]
        for m in frozen:
            self.set_trainable(m, False)
        if not frozen:
            self.set_trainable(model, True)
            # A model frozen for another update may sit inside this one (an SGAN's D in its
            # D update): its own flag, not the outer model's, decides whether it trains.
            for _, held in self.compiled.values():
                for m in held:
                    if m in model.layers:
                        self.set_trainable(m, True)

    def train_on_batch(self, model, x, y):
        """``train_on_batch`` with the global batch split over replicas; returns a logs dict."""
        return distribute.train_on_batch(model, x, y, self.strategy)

    def update(self, model, x, y):
        """One optimizer update of the compiled ``model`` (its frozen models frozen, itself not):
        a ``train_on_batch``, or with ``accumulate`` = N, N of them on equal slices of the batch
        (the optimizer applies their averaged gradient once). ``x``, ``y``: arrays or lists."""
        self._prepare(model)
        if self.accumulate == 1:
            return self.train_on_batch(model, x, y)
        n = self.accumulate

        def piece(v, i):
            if isinstance(v, (list, tuple)):
                return [np.array_split(np.asarray(t), n)[i] for t in v]
            return np.array_split(np.asarray(v), n)[i]

        logs = [self.train_on_batch(model, piece(x, i), piece(y, i)) for i in range(n)]
        return {k: float(np.mean([entry[k] for entry in logs])) for k in logs[0]}

    def build_optimizers(self):
        """Create every optimizer's slots for the variables its model trains."""
        for model, _ in self.compiled.values():
            self._prepare(model)
            model.optimizer.build(model.trainable_variables)

    def optimizers(self):
        return [model.optimizer for model, _ in self.compiled.values()]

    # --- the loop -----------------------------------------------------------------------------------
    def train(self, epochs=None, batch_size=None, sample_interval=None, max_steps=None):
        """The documented Keras-GAN-style name of :meth:`run`."""
        return self.run(epochs, batch_size, sample_interval, max_steps)

    def run(self, epochs=None, batch_size=None, sample_interval=None, max_steps=None):
        """Train for ``epochs`` (``None``: the trainer's default, or as many as ``max_steps`` needs),
        at most ``max_steps`` steps in all, resuming from the newest checkpoint; returns the summary.

        Every ``sample_interval`` steps a grid; every ``checkpoint_every`` steps a checkpoint and the
        models; at the end all of these once more (unless just written), the loss plot and summary.
        The output folder is locked meanwhile; SIGTERM / SIGINT stop it after the current step with
        a checkpoint (:mod:`keras_gans.run_guard`).
        """
        batch_size = batch_size or self.default_batch_size
        sample_interval = (
            self.default_sample_interval if sample_interval is None else sample_interval
        )
        for option, value in (("--batch-size", batch_size), ("--epochs", epochs)):
            if value is not None and value < 1:
                raise ConfigError(f"{option} must be >= 1, got {value}")
        if max_steps is not None and max_steps < 0:
            raise ConfigError(f"--max-steps must be >= 0, got {max_steps}")
        total = self.total_steps(epochs, batch_size, max_steps)
        n_batches = self.steps_per_epoch(batch_size)
        with run_guard.RunGuard(self) as guard:  # the folder's lock; SIGTERM / SIGINT handlers
            return self._run_steps(guard, total, batch_size, sample_interval, n_batches)

    def total_steps(self, epochs=None, batch_size=None, max_steps=None):
        """The number of steps :meth:`run` trains for with these arguments."""
        n_batches = self.steps_per_epoch(batch_size or self.default_batch_size)
        if n_batches < 1:
            raise ConfigError(f"--batch-size {batch_size} is larger than the training data")
        if epochs is None:
            epochs = math.ceil(max_steps / n_batches) if max_steps else self.default_epochs
        return epochs * n_batches if max_steps is None else min(max_steps, epochs * n_batches)

    def _run_steps(self, guard, total, batch_size, sample_interval, n_batches):
        resumed = self.resume and self.restore_checkpoint()  # a checkpoint wins over init_from
        if not self.resume and not self.step:  # not again when run() continues after a stop
            self.loss_log.truncate_after(0)
        self._init_summary = initialization.settle(self, resumed)
        self.batch_size = batch_size
        bar = tqdm(
            total=total, initial=min(self.step, total), desc=self.name, disable=not self.is_chief
        )
        try:
            while self.step < total:
                seen = restarted = False
                for batch in self.batches(batch_size, self.epoch, self.batch_in_epoch):
                    seen = True
                    logs = self.train_step(batch)
                    self.step += 1
                    self.batch_in_epoch += 1
                    logs.update(self.maybe_evaluate())
                    if not self.log_step(logs, bar):  # rolled back to the last checkpoint
                        bar.n, restarted = self.step, True
                        break
                    bar.update(1)
                    if sample_interval and self.step % sample_interval == 0:
                        self.sample_images()
                    if self.checkpoint_every and self.step % self.checkpoint_every == 0:
                        self.save_checkpoint()
                    guard.stop_if_asked()
                    if self.step >= total:
                        break
                else:  # the epoch ran out (unreadable files may make it shorter than n_batches)
                    if not seen and self.batch_in_epoch == 0:
                        raise ConfigError(f"epoch {self.epoch} yielded no batch of {batch_size}")
                    self.epoch, self.batch_in_epoch = self.epoch + 1, 0
                    continue
                if not restarted and self.batch_in_epoch >= n_batches:
                    self.epoch, self.batch_in_epoch = self.epoch + 1, 0
        finally:
            bar.close()
        return self.finish()

    def finish(self):
        """Write what a run leaves at its end (each only if not written at this step already)."""
        if self.checkpoint_every and self._saved_step() != self.step:
            self.save_checkpoint()
        if self._models_saved_at != self.step:
            self.save_models()
        if self._sampled_at != self.step:
            self.sample_images()
        self.plot_losses()
        return self.write_summary()

    # --- outputs ------------------------------------------------------------------------------------
    def sample_images(self):
        """Save :meth:`sample_grid` as ``images/<step>.png`` (six digits); returns the path."""
        self._sampled_at = self.step
        if not self.is_chief:
            return None
        grid = dict(self.sample_grid())
        path = os.path.join(self.images_dir, f"{self.step:06d}.png")
        return plotting.save_image_grid(
            grid.pop("images"), path, grid.pop("rows"), grid.pop("cols"), **grid
        )

    def save_models(self):
        """``models/<name>.h5`` and ``.keras`` for every declared model, trainable, for reuse."""
        self._models_saved_at = self.step
        if not self.is_chief:
            return
        for name, model in self.models.items():
            was = model.trainable
            self.set_trainable(model, True)
            try:
                save_model(model, os.path.join(self.models_dir, name))
            finally:
                self.set_trainable(model, was)
        self.save_extras()

    def plot_losses(self):
        if self.is_chief and os.path.exists(self.loss_log.path):
            rename = lambda columns: [self._fid_key() if c == "fid" else c for c in columns]
            groups = {title: rename(cols) for title, cols in (self.loss_groups or {}).items()}
            path = os.path.join(self.output_dir, "losses.png")
            plotting.plot_losses(self.loss_log.path, path, groups=groups or None)

    def seconds(self):
        """Wall time spent training this run, over every process that resumed it."""
        return round(time.time() - self._started, 1)

    def write_summary(self, **extra):
        """``summary.json`` (on the chief); every worker gets the same dict back."""
        summary = {
            "steps": self.step,
            "epochs": self.epoch,
            "batch_size": getattr(self, "batch_size", None),
            "seconds": self.seconds(),
            "strategy": type(self.strategy).__name__,
            "replicas": self.strategy.num_replicas_in_sync,
            "precision": self.precision,
            "config": self.config(),
            "models": sorted(self.models),
            "skipped_files": len(self.skipped_files),
            "skipped": list(self.skipped_files),
            **self._init_summary,
            **self.summary_info(),
            **extra,
        }
        if self._eval_keys:  # evaluated on the chief only
            summary["evaluation"] = self.evaluations()  # first and last --eval-every values
        if self.is_chief:
            reports.write_json(os.path.join(self.output_dir, "summary.json"), summary)
        return summary


def clean_dir(path):
    """Remove ``path`` if it exists (notebooks that want a fresh run in the same folder)."""
    shutil.rmtree(path, ignore_errors=True)
