"""Subprocess entry for tests/test_trainers.py: TensorFlow's devices must be set before first use.

``python tests/contract_run.py mirrored OUT NAME [NAME ...]``: on two logical CPUs, under
MirroredStrategy, builds each named trainer of tests/trainers.py and checkpoints it as at step 1,
builds it again on the same folder, resumes and trains step 2 (the in-process contract,
tests/test_trainers.py, shows resumed training equals uninterrupted training). The tiny CycleGAN
(instance norm, so the per-replica batch split changes no statistic) resumes the same way and then
trains 3 steps exactly as the default strategy does from the same weights on the same batches. Writes what happened to ``OUT/mirrored.json``.
"""

import json
import os
import sys

import numpy as np
import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.trainers import TRAINERS  # noqa: E402


def mirrored(out, names):
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    strategy = tf.distribute.MirroredStrategy()  # one per process, as in a real run
    result = {}
    for name in (n for n in names if n != "cyclegan"):  # the CycleGAN: equals_default
        folder = os.path.join(out, name)
        kw = dict(seed=0, strategy=strategy, checkpoint_every=1, run_eagerly=False)
        first = TRAINERS[name](folder, **kw)
        # A checkpoint as if at step 1 (its optimizer slots made in the scope at build time);
        # the new object restores it inside the scope and trains on: the path that once crashed.
        first.step = 1
        first.save_checkpoint()
        before = [np.array(w.numpy()) for m in first.models.values() for w in m.weights]
        again = TRAINERS[name](folder, **kw)
        summary = again.run(max_steps=2, batch_size=2, sample_interval=0)
        after = [w.numpy() for m in again.models.values() for w in m.weights]
        with open(os.path.join(folder, "losses.csv")) as f:
            logged = [int(line.split(",")[0]) for line in f.read().splitlines()[1:]]
        result[name] = {
            "replicas": again.strategy.num_replicas_in_sync,
            "steps": summary["steps"],
            "logged_steps": logged,
            "finite": bool(all(np.isfinite(w).all() for w in after)),
            "moved": float(max(np.abs(a - b).max() for a, b in zip(before, after))),
        }
    result["equals_default"] = equals_default(out, strategy)
    with open(os.path.join(out, "mirrored.json"), "w") as f:
        json.dump(result, f)


def _variables(gan):
    return [w for m in gan.models.values() for w in m.weights]


def equals_default(out, strategy, steps=3):
    """The CycleGAN's part of the contract, and more: a default-strategy run of ``steps`` steps vs
    a MirroredStrategy object that restores a checkpoint of the same initial weights (written by
    another object, as at step 1) and trains on the same batches."""
    # The default-strategy side runs eagerly: no trace of its updates to pay for, and the traced
    # MirroredStrategy side must still agree with it.
    default = TRAINERS["cyclegan"](os.path.join(out, "equal_default"), seed=0, run_eagerly=True)
    init = [np.array(w.numpy()) for w in _variables(default)]
    batches = list(default.batches(2, 0, 0))[:steps]
    d_logs = [default.train_step(b) for b in batches]
    folder = os.path.join(out, "cyclegan")
    kw = dict(strategy=strategy, run_eagerly=False)
    first = TRAINERS["cyclegan"](folder, seed=0, **kw)
    for src, dst in zip(init, _variables(first)):
        dst.assign(src)
    first.step = 1
    first.save_checkpoint()
    again = TRAINERS["cyclegan"](folder, seed=1, **kw)  # other initial weights until the restore
    restored = again.restore_checkpoint() and again.step
    m_logs = [again.train_step(b) for b in batches]
    d_final, m_final = [w.numpy() for w in _variables(default)], _variables(again)
    return {
        "replicas": [default.strategy.num_replicas_in_sync, again.strategy.num_replicas_in_sync],
        "restored_step": int(restored),
        "steps": len(m_logs),
        "loss_diff": max(abs(x[k] - y[k]) for x, y in zip(d_logs, m_logs) for k in x),
        "weight_diff": max(float(np.abs(a - b.numpy()).max()) for a, b in zip(d_final, m_final)),
        "moved": max(float(np.abs(a - b).max()) for a, b in zip(init, d_final)),
    }


if __name__ == "__main__":
    {"mirrored": mirrored}[sys.argv[1]](sys.argv[2], sys.argv[3:])
