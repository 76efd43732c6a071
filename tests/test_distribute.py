"""tf.distribute: strategy choice, precision and XLA switches, a failing worker, and gradient
accumulation == the large batch (mirrored == default is in tests/test_trainers_distributed.py)."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from data_loaders.sample import make_fruit_sample
from keras_gans import distribute
from keras_gans.cyclegan import CycleGAN

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


@pytest.fixture(scope="module")
def fruit(tmp_path_factory):
    return make_fruit_sample(str(tmp_path_factory.mktemp("fruit")), n_train=8, n_test=2, size=32)


def test_get_strategy_by_name(monkeypatch, caplog):
    assert distribute.get_strategy("default") is tf.distribute.get_strategy()
    assert distribute.get_strategy("auto").num_replicas_in_sync == 1  # no GPU here
    mirrored = distribute.get_strategy("mirrored")
    assert isinstance(mirrored, tf.distribute.MirroredStrategy)
    assert distribute.get_strategy(mirrored) is mirrored
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="TF_CONFIG"):
        distribute.get_strategy("multiworker")
    with pytest.raises(ValueError, match="unknown strategy"):
        distribute.get_strategy("horovod")


def test_precision_and_jit_switches(fruit, tmp_path):
    with pytest.raises(ValueError, match="needs a GPU"):
        distribute.set_precision("mixed_float16")
    with pytest.raises(ValueError, match="mixed-precision"):
        distribute.set_precision("float8")
    gan = CycleGAN(
        data_dir=fruit,
        img_rows=32,
        img_cols=32,
        gf=4,
        df=4,
        output_dir=str(tmp_path),
        mixed_precision="mixed_bfloat16",
        jit=True,
        run_eagerly=False,  # XLA compiles traced functions only
        checkpoint_every=0,
    )
    assert gan.g_AB.get_layer("g_AB_d1_conv").compute_dtype == "bfloat16"
    assert gan.g_AB.output.dtype == "float32" and gan.d_A.output.dtype == "float32"
    assert gan.d_A.jit_compile and gan.combined.jit_compile
    # One update of D_A, compiled by XLA in bfloat16: the whole step would also compile D_B and the
    # combined model with both generators, tens of seconds more for the same two switches.
    a = np.random.default_rng(0).uniform(-1, 1, (1, 32, 32, 3)).astype(np.float32)
    patch = np.ones((1, *gan.d_A.output.shape[1:]), np.float32)
    before = [w.numpy() for w in gan.d_A.weights]
    logs = gan.update(gan.d_A, a, patch)
    assert all(np.isfinite(v) for v in logs.values())
    assert any(not np.array_equal(b, w.numpy()) for b, w in zip(before, gan.d_A.weights))
    keras.mixed_precision.set_global_policy("float32")


def test_a_compiled_model_is_traced_once():
    """Keras makes a compiled model's loss and metric variables in its first trace when no strategy
    scope is set, and tf.function then traces again; train_on_batch builds them first."""
    traces = []

    class Counted(keras.Model):
        def train_step(self, data):
            traces.append(self.name)  # Python runs here only while tracing
            return super().train_step(data)

    inputs = keras.Input((3,))
    model = Counted(inputs, keras.layers.Dense(1, activation="sigmoid")(inputs), name="counted")
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    assert not model.run_eagerly
    x, y = np.ones((4, 3), np.float32), np.ones((4, 1), np.float32)
    logs = [distribute.train_on_batch(model, x, y) for _ in range(3)]
    assert traces == ["counted"]
    assert logs[0]["loss"] > logs[-1]["loss"] and set(logs[0]) == {"loss", "accuracy"}


@pytest.mark.multiprocess
def test_a_failing_worker_stops_the_run(fruit, tmp_path):
    command = [
        sys.executable,
        os.path.join(HERE, "distributed_run.py"),
        "worker",
        fruit,
        str(tmp_path),
    ]
    env = dict(os.environ, FAIL_WORKER="1")
    codes = distribute.launch_local(command, n_workers=2, timeout=300, env=env)
    assert codes[1] == 3 and codes[0] != 0  # the healthy peer was stopped, not left waiting
    assert not (tmp_path / "worker0.npz").exists()


@pytest.mark.slow  # two CycleGANs, eight micro-steps
def test_gradient_accumulation_equals_the_large_batch(fruit, tmp_path):
    runs = {}
    for accumulate in (1, 2):
        gan = CycleGAN(
            data_dir=fruit,
            img_rows=32,
            img_cols=32,
            gf=4,
            df=4,
            seed=0,
            output_dir=str(tmp_path / str(accumulate)),
            accumulate=accumulate,
            checkpoint_every=0,
        )
        if accumulate == 2:
            for src, dst in zip(runs[1]["init"], snapshot_models(gan)):
                dst.assign(src)
        init = [np.array(w.numpy()) for w in snapshot_models(gan)]
        batches = list(gan.data_loader.train.dataset(4, seed=0, epoch=0).as_numpy_iterator())
        for batch in batches[:2]:
            gan.train_step(batch)
        runs[accumulate] = {
            "init": init,
            "final": [w.numpy() for w in snapshot_models(gan)],
            "iterations": int(gan.combined.optimizer.iterations.numpy()),
        }
    moved = max(np.abs(a - b).max() for a, b in zip(runs[1]["init"], runs[1]["final"]))
    diff = max(np.abs(a - b).max() for a, b in zip(runs[1]["final"], runs[2]["final"]))
    assert moved > 1e-4 and diff < 1e-5, (moved, diff)
    assert runs[1]["iterations"] == runs[2]["iterations"] == 2  # optimizer steps, not micro-steps


def snapshot_models(gan):
    return [w for m in (gan.g_AB, gan.g_BA, gan.d_A, gan.d_B) for w in m.weights]


def test_launch_cli_reports_exit_codes(tmp_path):
    code = subprocess.run(
        [
            sys.executable,
            "-m",
            "keras_gans.distribute",
            "launch",
            "--workers",
            "2",
            "--",
            sys.executable,
            "-c",
            "import os, json; "
            "assert json.loads(os.environ['TF_CONFIG'])['task']['type'] == 'worker'",
        ],
        cwd=ROOT,
        timeout=120,
    ).returncode
    assert code == 0
