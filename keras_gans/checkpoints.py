"""Checkpoints of a trainer: every model, optimizer, seed state and counter, resumable exactly.

:class:`Checkpointing` is a mixin of :class:`keras_gans.training.GANTrainer`. ``tf.train.CheckpointManager``
replaces its index file only after the data is written, so a crash mid-write leaves the previous
checkpoint as the latest; an unreadable newest checkpoint falls back to an older one; a folder
written with other hyper-parameters (``config()``) is refused with the differences named (one of
other models without its ``state.json``, as one that does not fit); a full disk is one
:class:`~keras_gans.errors.DiskFullError` naming the latest readable checkpoint; a NaN or Inf loss
stops the run naming the step (or rolls back to the last checkpoint this run wrote).
"""

import logging
import math
import os
import shutil
import tempfile
import time

import tensorflow as tf

from keras_gans import reports
from keras_gans.errors import CheckpointError, DiskFullError, DivergenceError, is_disk_full

log = logging.getLogger(__name__)

# What a damaged or missing checkpoint file raises: TF's own errors, a short read (IndexError).
_READ_ERRORS = (tf.errors.OpError, OSError, IndexError)
# What a readable checkpoint of other models raises: a shape (ValueError), an unmatched object.
_MISMATCH_ERRORS = (ValueError, AssertionError)


class Checkpointing:
    """Checkpoint, restore and NaN-guard methods of a trainer (see the module docstring)."""

    def checkpoint_objects(self):
        """``{name: trackable}``: the declared models and the optimizer of every compiled model."""
        objects = dict(self.models)
        objects.update({f"opt_{name}": m.optimizer for name, (m, _) in self.compiled.items()})
        # Seed-generator states (Dropout masks and the like): tf.train.Checkpoint does not follow
        # them from the models, and a resumed run must draw what the uninterrupted one would.
        weights = {id(w) for m in self.models.values() for w in m.weights}
        states = [v for m in self.models.values() for v in m.variables if id(v) not in weights]
        if states:
            objects["rng_states"] = states
        objects.update(self.checkpoint_extras())
        return objects

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

    def _saved_step(self):
        return None if self._saved_checkpoint is None else self._saved_checkpoint[1]

    def save_checkpoint(self):
        """A checkpoint of every model, optimizer and counter, then the models for reuse.

        A full disk raises :class:`DiskFullError` naming the checkpoint that is the latest readable
        one (``tf.train.CheckpointManager`` records a checkpoint only once its files are written;
        the models are written after it, each atomically).
        """
        try:
            return self._save_checkpoint()
        except (OSError, tf.errors.OpError) as err:
            if not is_disk_full(err):
                raise
            # TensorFlow writes a checkpoint's data under "<prefix>_temp" first: give the space back.
            shutil.rmtree(os.path.join(self.checkpoint_dir, f"ckpt-{self.step}_temp"), True)
            latest = self._saved_checkpoint
            kept = (
                f"the latest readable checkpoint is {latest[0]} (step {latest[1]})"
                if latest
                else "no checkpoint was written yet"
            )
            raise DiskFullError(
                f"no space left on the device writing the checkpoint and models of step "
                f"{self.step} in {self.output_dir}; {kept}. Free some space and run the same "
                "command again to resume"
            ) from err

    def _save_checkpoint(self):
        manager = self._checkpoint()
        self._counters.assign([self.step, self.epoch, self.batch_in_epoch])
        path = manager.save(checkpoint_number=self.step)
        self._saved_checkpoint = (path, self.step)
        if self.is_chief:
            state = {
                "step": self.step,
                "epoch": self.epoch,
                "batch_in_epoch": self.batch_in_epoch,
                "seconds": self.seconds(),
                "config": self.config(),
            }
            reports.write_json(os.path.join(self.checkpoint_dir, "state.json"), state)
        self.save_models()
        return path

    def _check_config(self):
        """Refuse a checkpoint folder written with other hyper-parameters, naming them."""
        path = os.path.join(self.checkpoint_dir, "state.json")
        if not os.path.exists(path):
            return
        saved = reports.read_json(path).get("config") or {}
        ours = reports.jsonable(self.config())
        differ = {k: (saved.get(k), ours.get(k)) for k in set(saved) | set(ours)}
        differ = {k: v for k, v in differ.items() if v[0] != v[1]}
        if differ:
            what = ", ".join(
                f"{k}: {a!r} there, {b!r} here" for k, (a, b) in sorted(differ.items())
            )
            raise CheckpointError(
                f"the checkpoint in {self.checkpoint_dir} was written with other hyper-parameters "
                f"({what}); use another --output-dir, the same options, or --no-resume"
            )

    def _carry_seconds(self):
        """Count the training time the restored checkpoint's run had spent (``state.json`` holds the
        newest checkpoint's; an older one restored instead adds nothing)."""
        path = os.path.join(self.checkpoint_dir, "state.json")
        state = reports.read_json(path) if os.path.isfile(path) else {}
        if state.get("step") == self.step:
            self._started = time.time() - float(state.get("seconds", 0.0))

    def restore_checkpoint(self, path=None):
        """Restore ``path`` or the newest readable checkpoint; True if one was restored.

        An unreadable newest checkpoint (say, truncated by a full disk) is reported and the next
        older one is used, so one damaged file does not cost the run.
        """
        manager = self._checkpoint()
        if path is None:
            # Every worker reads the chief's checkpoints (a shared folder in a multi-machine run).
            state = tf.train.get_checkpoint_state(self.checkpoint_dir)
            paths = list(state.all_model_checkpoint_paths) if state else []
            if not paths:
                return False
            self._check_config()
        else:
            paths = [path]
        errors = []
        for candidate in reversed(paths):
            try:
                manager.checkpoint.restore(candidate).assert_existing_objects_matched()
            except _MISMATCH_ERRORS as err:
                raise CheckpointError(
                    f"the checkpoint {candidate} does not fit the models built here ({err}); it was "
                    "written with other hyper-parameters or code: use another --output-dir, the "
                    "same options, or --no-resume"
                ) from err
            except _READ_ERRORS as err:
                log.warning(
                    "checkpoint %s cannot be read (%s); trying an older one", candidate, err
                )
                errors.append(f"{candidate}: {type(err).__name__}")
                continue
            self.step, self.epoch, self.batch_in_epoch = (int(v) for v in self._counters.numpy())
            self._saved_checkpoint = (candidate, self.step)
            self._carry_seconds()
            self.loss_log.truncate_after(self.step)
            log.info("resumed from %s at step %d (epoch %d)", candidate, self.step, self.epoch)
            return True
        raise CheckpointError(
            f"no checkpoint in {self.checkpoint_dir} can be read ({'; '.join(errors)}); "
            "move the folder away or start afresh with --no-resume"
        )

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
        what = ", ".join(f"{k}={v}" for k, v in bad.items())
        latest = self._saved_checkpoint[0] if self._saved_checkpoint else None
        if self.on_nan == "rollback" and latest:
            failed_at = self.step
            self.restore_checkpoint(latest)
            for opt in self.optimizers():
                opt.learning_rate.assign(opt.learning_rate * 0.5)
            log.warning(
                "%s at step %d: rolled back to %s, learning rates halved", what, failed_at, latest
            )
            return
        kept = f"the last good checkpoint is {latest}" if latest else "no checkpoint was written"
        raise DivergenceError(
            f"training diverged at step {self.step}: {what}. Stopped; {kept}. Lower the learning "
            "rate, or pass --on-nan rollback to roll back automatically."
        )
