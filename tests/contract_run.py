"""Subprocess entry for tests/test_trainers.py: TensorFlow's devices must be set before first use.

``python tests/contract_run.py mirrored OUT NAME [NAME ...]``: on two logical CPUs, trains each named
trainer of tests/trainers.py for one step under MirroredStrategy with a checkpoint, builds it again
on the same folder and trains on to step 2; writes what happened to ``OUT/mirrored.json``.
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
    for name in names:
        folder = os.path.join(out, name)
        kw = dict(seed=0, strategy=strategy, checkpoint_every=1)
        first = TRAINERS[name](folder, **kw)
        first.run(max_steps=1, batch_size=2, sample_interval=0)
        before = [np.array(w.numpy()) for m in first.models.values() for w in m.weights]
        again = TRAINERS[name](folder, **kw)
        summary = again.run(max_steps=2, batch_size=2, sample_interval=0)
        after = [w.numpy() for m in again.models.values() for w in m.weights]
        result[name] = {
            "replicas": again.strategy.num_replicas_in_sync,
            "steps": summary["steps"],
            "finite": bool(all(np.isfinite(w).all() for w in after)),
            "moved": float(max(np.abs(a - b).max() for a, b in zip(before, after))),
        }
    with open(os.path.join(out, "mirrored.json"), "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    {"mirrored": mirrored}[sys.argv[1]](sys.argv[2], sys.argv[3:])
