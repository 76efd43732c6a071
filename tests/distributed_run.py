"""Subprocess entry for tests/test_distribute.py (TensorFlow's devices must be set before first use).

``python tests/distributed_run.py worker DATA OUT``: one MultiWorkerMirroredStrategy worker (from
``TF_CONFIG``); writes its final weights to ``OUT/worker<index>.npz``. With ``FAIL_WORKER=<index>``
that worker dies before training, to test that the launcher stops its peers.
"""

import json
import os
import sys

import numpy as np

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


def weights(gan):
    return [w.numpy() for m in (gan.g_AB, gan.g_BA, gan.d_A, gan.d_B) for w in m.weights]


def worker(data, out):
    index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
    if os.environ.get("FAIL_WORKER") == str(index):
        sys.exit(3)
    gan = tiny(data, os.path.join(out, "run"), "multiworker")
    gan.train(epochs=1, batch_size=2, sample_interval=1000, max_steps=STEPS)
    np.savez(os.path.join(out, f"worker{index}.npz"), *weights(gan))
    print(f"worker {index}: {gan.step} steps, chief={gan.is_chief}", flush=True)


if __name__ == "__main__":
    {"worker": worker}[sys.argv[1]](sys.argv[2], sys.argv[3])
