"""Subprocess entry for tests/test_distribute.py (TensorFlow's devices must be set before first use).

``python tests/distributed_run.py mirrored DATA OUT``: two logical CPUs; trains a tiny CycleGAN with
the default strategy and with MirroredStrategy on the same global batches and initial weights, and
writes the largest loss and weight differences to ``OUT/result.json``.
``python tests/distributed_run.py worker DATA OUT``: one MultiWorkerMirroredStrategy worker (from
``TF_CONFIG``); writes its final weights to ``OUT/worker<index>.npz``. With ``FAIL_WORKER=<index>``
that worker dies before training, to test that the launcher stops its peers.
"""

import json
import os
import sys

import numpy as np
import tensorflow as tf

STEPS = 3


def tiny(data, out, strategy, **kw):
    from keras_gans.cyclegan import CycleGAN

    return CycleGAN(
        data_dir=data,
        img_rows=32,
        img_cols=32,
        gf=4,
        df=4,
        output_dir=out,
        seed=0,
        strategy=strategy,
        checkpoint_every=0,
        **kw,
    )


def batches(gan, n=STEPS, batch_size=2):
    ds = gan.data_loader.train.dataset(batch_size, seed=0, epoch=0)
    return list(ds.take(n).as_numpy_iterator())


def weights(gan):
    return [w.numpy() for m in (gan.g_AB, gan.g_BA, gan.d_A, gan.d_B) for w in m.weights]


def mirrored(data, out):
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    runs = {}
    for name in ("default", "mirrored"):
        gan = tiny(data, os.path.join(out, name), name)
        if name == "mirrored":
            for src, dst in zip(runs["default"]["init"], weights_models(gan)):
                dst.assign(src)
        init = [np.array(w.numpy()) for w in weights_models(gan)]
        logs = [gan.train_step((a, b)) for a, b in batches(gan)]
        runs[name] = {
            "init": init,
            "logs": logs,
            "weights": weights(gan),
            "replicas": gan.strategy.num_replicas_in_sync,
        }
    d, m = runs["default"], runs["mirrored"]
    result = {
        "replicas": [d["replicas"], m["replicas"]],
        "loss_diff": max(abs(x[k] - y[k]) for x, y in zip(d["logs"], m["logs"]) for k in x),
        "weight_diff": max(float(np.abs(a - b).max()) for a, b in zip(d["weights"], m["weights"])),
        "moved": max(float(np.abs(a - b).max()) for a, b in zip(d["init"], d["weights"])),
    }
    with open(os.path.join(out, "result.json"), "w") as f:
        json.dump(result, f)


def weights_models(gan):
    return [w for m in (gan.g_AB, gan.g_BA, gan.d_A, gan.d_B) for w in m.weights]


def worker(data, out):
    index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
    if os.environ.get("FAIL_WORKER") == str(index):
        sys.exit(3)
    gan = tiny(data, os.path.join(out, "run"), "multiworker")
    gan.train(epochs=1, batch_size=2, sample_interval=1000, max_steps=STEPS)
    np.savez(os.path.join(out, f"worker{index}.npz"), *weights(gan))
    print(f"worker {index}: {gan.step} steps, chief={gan.is_chief}", flush=True)


if __name__ == "__main__":
    {"mirrored": mirrored, "worker": worker}[sys.argv[1]](sys.argv[2], sys.argv[3])
