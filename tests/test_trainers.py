"""The trainer contract: every trainer, run by ``GANTrainer.run``, behaves the same way.

For each trainer of tests/trainers.py, at a tiny size: each update changes exactly the weights it
should; the saved models reload with ``keras_gans.load_model``; a new object resumed from a
checkpoint ends where the uninterrupted run ends; a NaN stops the run naming the step; a roll-back
really restores; the outputs have one naming. tests/test_trainers_distributed.py adds the strategies: MirroredStrategy trains
and resumes; two MultiWorkerMirroredStrategy workers started through the real command line finish.
"""

import csv
import json
import os
import shutil

import numpy as np
import pytest

from keras_gans import load_model
from keras_gans.errors import DivergenceError
from tests.trainers import TRAINERS, model_inputs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The largest two, and ProGAN (a trace per growth phase, WGAN-GP's double backward), trace for
# tens of seconds: in the full suite only (their modules' own tests stay in the fast tier).
NAMES = [
    pytest.param(n, marks=pytest.mark.slow) if n in ("biggan", "cyclegan", "progan") else n
    for n in sorted(TRAINERS)
]
STEPS = 4


def _weights(trainer):
    return {
        f"{n}/{w.path}": np.array(w.numpy()) for n, m in trainer.models.items() for w in m.weights
    }


@pytest.fixture(scope="module", params=NAMES)
def finished(request, tmp_path_factory):
    """An uninterrupted run of STEPS steps, checkpoints every 2, grids every 2."""
    name = request.param
    out = tmp_path_factory.mktemp(name)
    trainer = TRAINERS[name](str(out), seed=0, checkpoint_every=2, run_eagerly=False)
    summary = trainer.run(max_steps=STEPS, batch_size=2, sample_interval=2)
    trainer.final_weights = _weights(trainer)  # later tests train it on; the resume test needs this
    return name, trainer, summary, out


def test_the_run_leaves_one_naming_of_outputs(finished):
    name, trainer, summary, out = finished
    assert (
        summary["steps"] == STEPS
        and json.loads((out / "summary.json").read_text())["steps"] == STEPS
    )
    assert sorted(os.listdir(out / "images")) == ["000002.png", "000004.png"]
    expected = sorted(f"{m}.{ext}" for m in trainer.models for ext in ("h5", "keras"))
    assert sorted(f for f in os.listdir(out / "models") if f.endswith(("h5", "keras"))) == expected
    with open(out / "losses.csv") as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == list(range(1, STEPS + 1))
    assert (out / "losses.png").stat().st_size > 0
    assert (out / "checkpoints" / "state.json").exists()


def test_saved_models_reload_with_the_same_outputs(finished):
    name, trainer, _, out = finished
    for model_name, model in trainer.models.items():
        x = model_inputs(model)
        expected = np.asarray(model(x, training=False))
        for ext in ("h5", "keras"):
            reloaded = load_model(str(out / "models" / f"{model_name}.{ext}"))
            got = np.asarray(reloaded(x, training=False))
            np.testing.assert_allclose(got, expected, atol=1e-5, err_msg=f"{model_name}.{ext}")


def test_each_update_changes_exactly_the_weights_it_should(finished):
    """Per ``update(model)``: the models it trains move (every kernel), all others stay fixed."""
    name, trainer, _, _ = finished
    real_update, calls = trainer.update, []

    def recording(model, x, y):
        before = _weights(trainer)
        logs = real_update(model, x, y)
        calls.append((model, before, _weights(trainer)))
        return logs

    trainer.update = recording
    try:
        batch = next(iter(trainer.batches(2, trainer.epoch + 1, 0)))
        trainer.train_step(batch)
    finally:
        del trainer.update
    # A GAN step makes at least a D and a G update; a trainer of one compiled model (an autoencoder)
    # makes one.
    assert len(calls) >= min(2, len(trainer.compiled)), f"{name}: {len(calls)} update(s) a step"
    for model, before, after in calls:
        frozen = trainer.compiled[model.name][1]
        held = {id(v) for v in model.weights}
        for model_name, m in trainer.models.items():
            moved = [
                k
                for k in before
                if k.startswith(f"{model_name}/") and not np.array_equal(before[k], after[k])
            ]
            trains = all(id(v) in held for v in m.weights) and not any(m is f for f in frozen)
            if trains:
                kernels = [f"{model_name}/{w.path}" for w in m.weights if w.path.endswith("kernel")]
                assert kernels and set(kernels) <= set(moved), (
                    f"{name}: update of {model.name} left kernels of {model_name} unchanged: "
                    f"{sorted(set(kernels) - set(moved))[:3]}"
                )
            else:
                assert not moved, (
                    f"{name}: update of {model.name} changed {model_name}: {moved[:3]}"
                )


def _poison(trainer, at_step, value, once=False):
    """Make the log of step ``at_step + 1`` non-finite (a loss the step itself computed)."""
    real_step, done = trainer.train_step, []

    def poisoned(batch):
        logs = real_step(batch)
        if trainer.step == at_step and not (once and done):
            done.append(True)
            logs[next(iter(logs))] = value
        return logs

    trainer.train_step = poisoned
    return done


def test_resume_nan_stop_and_rollback(finished, tmp_path):
    """A new object on a copy of the run's folder, its checkpoint index set back to step 2, resumes
    there and ends with the uninterrupted run's weights. Then a NaN stops it naming the step and its
    checkpoint; then, with ``--on-nan rollback`` and without ``--resume``, an Inf restores this
    run's last checkpoint and halves the learning rates."""
    name, reference, _, out = finished
    run = tmp_path / "run"
    shutil.copytree(out, run)
    index = 'model_checkpoint_path: "ckpt-2"\nall_model_checkpoint_paths: "ckpt-2"\n'
    (run / "checkpoints" / "checkpoint").write_text(index)  # tf.train's index, set back to step 2
    resumed = TRAINERS[name](str(run), seed=0, checkpoint_every=2, run_eagerly=False)
    summary = resumed.run(max_steps=STEPS, batch_size=2, sample_interval=2)
    assert summary["steps"] == STEPS
    expected, got = reference.final_weights, _weights(resumed)
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], atol=1e-6, err_msg=f"{name} {key}")
    with open(run / "losses.csv") as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == list(range(1, STEPS + 1))

    saved = _weights(resumed)  # = checkpoint 4
    _poison(resumed, STEPS, float("nan"))
    with pytest.raises(DivergenceError, match=rf"step {STEPS + 1}: .*=nan.*ckpt-{STEPS}"):
        resumed.run(max_steps=STEPS + 3, batch_size=2, sample_interval=0)
    del resumed.train_step

    resumed.on_nan, resumed.resume, restored = "rollback", False, {}
    real_restore = resumed.restore_checkpoint

    def restore(path=None):
        done = real_restore(path)
        restored[resumed.step] = _weights(resumed)
        return done

    resumed.restore_checkpoint = restore
    poisoned = _poison(resumed, STEPS + 1, float("inf"), once=True)
    learning_rates = [float(o.learning_rate.numpy()) for o in resumed.optimizers()]
    summary = resumed.run(max_steps=STEPS + 3, batch_size=2, sample_interval=0)
    assert poisoned and summary["steps"] == STEPS + 3 and list(restored) == [STEPS]
    for key, value in saved.items():
        np.testing.assert_array_equal(restored[STEPS][key], value, err_msg=key)
    halved = [float(o.learning_rate.numpy()) for o in resumed.optimizers()]
    np.testing.assert_allclose(halved, [lr / 2 for lr in learning_rates], rtol=1e-6)
