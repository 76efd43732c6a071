"""The semi-supervised GAN (keras_gans.sgan) and its seeds study (keras_gans.experiments.sgan_study).

Tiny sizes throughout; the trainer contract (tests/test_trainers.py) checks which weights each update
changes, resume, NaN handling and the saved models.
"""

import json
import logging
import math

import keras
import numpy as np
import pytest

from keras_gans import losses, sgan
from keras_gans.errors import ConfigError
from keras_gans.experiments import sgan_study
from keras_gans.layers import WeightNormDense
from tests.helpers import (
    assert_config_roundtrip,
    assert_save_reload,
    assert_weights_changed,
    assert_weights_unchanged,
    snapshot,
)

TINY = dict(latent_dim=4, g_units=(8,), d_units=(16, 8))


def toy(n=64, size=8, seed=0):
    """Two classes a random D does not separate: an XOR of the signs of the left and right halves
    (class 0: equal signs), plus noise."""
    rng = np.random.default_rng(seed)
    signs = np.sign(rng.normal(size=(n, 2)))
    left = np.arange(size)[None, :] < size // 2
    x = np.where(left, signs[:, 0, None, None], signs[:, 1, None, None]) * 0.8
    x = x + rng.normal(0, 0.2, (len(x), size, size))
    x = np.clip(x, -1, 1)[..., None].astype(np.float32)
    return x, (signs[:, 0] != signs[:, 1]).astype(np.int64)


def make(out, x=None, y=None, **kw):
    if x is None:
        x, y = toy()
    options = {**TINY, "labels_per_class": 2, "checkpoint_every": 0, **kw}
    return sgan.SGAN(x, y, output_dir=str(out), **options)


def test_real_probability_is_z_over_z_plus_one():
    """Logits (0, ln 3): Z = 1 + 3 = 4, D(x) = 4/5; the losses are -log 0.8 and -log 0.2."""
    logits = np.array([[0.0, math.log(3.0)]], np.float32)
    assert float(losses.real_probability(logits)[0]) == pytest.approx(0.8, abs=1e-6)
    real = float(losses.real_fake_loss(np.ones((1, 1)), logits)[0])
    fake = float(losses.real_fake_loss(np.zeros((1, 1)), logits)[0])
    assert real == pytest.approx(-math.log(0.8), abs=1e-6)
    assert fake == pytest.approx(-math.log(0.2), abs=1e-6)
    # Large logits stay finite: -log(1 - D) = log(1 + Z) = log(1 + 2 e^100) ~ 100 + ln 2.
    big = np.full((1, 2), 100.0, np.float32)
    assert float(losses.real_fake_loss(np.zeros((1, 1)), big)[0]) == pytest.approx(
        100 + math.log(2)
    )


def test_feature_matching_loss_by_hand():
    real = np.array([[0.0, 2.0], [2.0, 2.0]], np.float32)  # mean (1, 2)
    fake = np.array([[1.0, 0.0], [3.0, 0.0]], np.float32)  # mean (2, 0)
    assert float(losses.feature_matching_loss(real, fake)) == pytest.approx((1 + 4) / 2)


def test_weight_norm_dense_data_init_and_saving(tmp_path):
    layer = WeightNormDense(3, activation="relu", name="wn")
    x = np.random.default_rng(0).normal(2.0, 5.0, (64, 6)).astype(np.float32)
    layer.build(x.shape)
    layer.data_init(x, init_scale=1.0)
    pre = np.asarray(keras.ops.matmul(x, layer.direction())) * layer.scale.numpy()
    pre += layer.bias.numpy()
    np.testing.assert_allclose(pre.mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(pre.std(0), 1, atol=1e-4)
    assert_config_roundtrip(layer)
    inputs = keras.Input((6,))
    model = keras.Model(inputs, WeightNormDense(2, name="wn2")(inputs), name="wn_model")
    assert_save_reload(model, tmp_path, x[:4])


def test_label_subset_is_per_class_and_seeded(tmp_path):
    x, y = toy(n=24)
    a = make(tmp_path / "a", x, y, labels_per_class=3, seed=0)
    again = make(tmp_path / "b", x, y, labels_per_class=3, seed=0)
    other = make(tmp_path / "c", x, y, labels_per_class=3, seed=1)
    assert np.bincount(y[a.labelled]).tolist() == [3, 3]
    assert a.labelled.tolist() == again.labelled.tolist() != other.labelled.tolist()
    assert sorted([*a.labelled, *a.unlabelled]) == list(range(len(y)))
    fewest = np.bincount(y).min()
    with pytest.raises(
        ConfigError, match=f"--labels-per-class {fewest + 1}: class . has {fewest} "
    ):
        make(tmp_path / "d", x, y, labels_per_class=fewest + 1)


@pytest.mark.parametrize("eager", [True, pytest.param(False, marks=pytest.mark.slow)])
def test_a_short_training_learns_a_toy_problem(eager, tmp_path):
    """30 steps, 2 labels per class: from below chance to every test image right (the traced run
    is the real path; it costs a trace of tens of seconds, hence slow)."""
    x, y = toy()
    x_test, y_test = toy(seed=1)
    gan = make(tmp_path, x, y, test=(x_test, y_test), seed=3, run_eagerly=eager)
    before = gan.score()["accuracy"]
    gan.run(max_steps=30, batch_size=8, sample_interval=0)
    after = gan.score()
    assert before < 0.6 and after["accuracy"] >= 0.95, (before, after)
    assert not after["prediction_check"]["degenerate"]


def test_non_saturating_g_step_moves_g_only(tmp_path):
    gan = make(tmp_path, g_loss="non-saturating", seed=0)
    assert gan.combined.output.shape[-1] == 2  # D's logits, not its features
    x_lab, y_lab, x_unl, x_unl2 = next(iter(gan.batches(4, 0, 0)))
    before = snapshot(gan.generator, gan.discriminator)
    z = gan.noise(4, 0)
    gan.update(gan.combined, z, np.ones((4, 1), np.float32))
    assert_weights_changed(before, [gan.generator])
    assert_weights_unchanged(before, [gan.discriminator])
    logs = gan.train_step((x_lab, y_lab, x_unl, x_unl2))
    assert set(logs) == {"D_sup", "D_unsup", "D_acc_labelled", "G_loss"}


def test_the_classifier_is_the_moving_average_of_d(tmp_path):
    """After the first step d_average = 0.1 * D before + 0.9 * D after (the warm-up decay of step
    0); with ``average_decay=0`` it is D itself, and so are its predictions."""
    gan = make(tmp_path / "a", seed=0)
    start = [w.numpy() for w in gan.discriminator.weights]
    for a, s in zip(gan.d_average.weights, start):
        np.testing.assert_array_equal(a.numpy(), s)
    gan.train_step(next(iter(gan.batches(4, 0, 0))))
    moved = [w.path for s, w in zip(start, gan.discriminator.weights) if not np.array_equal(s, w)]
    assert {w.path for w in gan.discriminator.weights if w.path.endswith("kernel")} <= set(moved)
    for a, s, w in zip(gan.d_average.weights, start, gan.discriminator.weights):
        np.testing.assert_allclose(a.numpy(), 0.1 * s + 0.9 * w.numpy(), atol=1e-6, err_msg=a.path)
    plain = make(tmp_path / "b", seed=0, average_decay=0.0)
    plain.run(max_steps=3, batch_size=4, sample_interval=0)
    for a, w in zip(plain.d_average.weights, plain.discriminator.weights):
        np.testing.assert_allclose(a.numpy(), w.numpy(), atol=1e-7, err_msg=a.path)
    x, _ = toy(seed=2)
    logits = np.asarray(plain.discriminator(x, training=False))
    np.testing.assert_array_equal(plain.classify(x), logits.argmax(axis=1))


def test_the_supervised_arm_starts_from_the_same_d(tmp_path):
    """Same seed: the same kernels (directions) before training; g, b from its own labelled data."""
    x, y = toy()
    gan = make(tmp_path, x, y, seed=3)
    d = sgan_study.supervised_classifier(x, y, gan.labelled, 2, 3, TINY)
    for a, b in zip(gan.discriminator.weights, d.weights):
        if a.path.endswith("kernel"):
            np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    # The directions are the code's theta ~ N(0, 0.1) (their scale sets Adam's turning rate).
    kernels = [w.numpy() for w in gan.discriminator.weights if w.path.endswith("kernel")]
    assert np.std(np.concatenate([k.ravel() for k in kernels])) == pytest.approx(0.1, rel=0.1)
    # Both arms use the code's Adam: beta_1 0.5 and its epsilon (sqrt(v + 1e-8) = 1e-4 at v = 0).
    for optimizer in (gan.d_train.optimizer, gan.combined.optimizer, d.optimizer):
        assert (optimizer.beta_1, optimizer.epsilon) == (0.5, 1e-4)


TINY_ARGS = ["--img-size", "8", "--d-units", "8", "--g-units", "8", "--latent-dim", "4"]
TINY_ARGS += ["--labels-per-class", "2", "--max-steps", "2", "--batch-size", "8"]


def test_train_command_reports_the_test_accuracy(tmp_path, capsys):
    gan = sgan.main(["train", *TINY_ARGS, "--sample-interval", "0", "--output-dir", str(tmp_path)])
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["labelled"] == 20 and summary["test_images"] == len(gan.test[1])
    assert f"test accuracy {summary['test_accuracy']:.4f} on {len(gan.test[1])} images" in (
        capsys.readouterr().out
    )


def test_compare_writes_a_paired_report(tmp_path, capsys, caplog, monkeypatch):
    out = tmp_path / "study"
    # --average-decay 0: each arm's average is its last D, so both accuracies must agree.
    argv = ["compare", *TINY_ARGS, "--seeds", "0,1", "--average-decay", "0"]
    sgan.main([*argv, "--output-dir", str(out)])
    report = json.loads((out / "report.json").read_text())
    assert [r["arm"] for r in report["runs"]] == ["sgan", "supervised"] * 2
    for run in report["runs"]:
        assert run["accuracy"] == pytest.approx(run["last_step_accuracy"]), run
    assert report["setting"]["labelled"] == 20 and report["setting"]["steps"] == 2
    assert report["paired"]["sgan - supervised"]["accuracy"]["n"] == 2
    assert "quoted" in report["quoted"]["source"]
    assert "| sgan |" in (out / "report.md").read_text()
    p = report["paired"]["sgan - supervised"]["accuracy"]["p_value"]
    shown = "n/a" if p is None else f"{p:.3g}"
    assert f" points, p = {shown}." in capsys.readouterr().out  # three significant digits

    # A rerun reuses the finished SGAN runs (their models) and scores them the same.
    monkeypatch.setattr(sgan.SGAN, "run", lambda *a: pytest.fail("trained again"))
    again = sgan.main([*argv, "--output-dir", str(out)])
    assert again["summary"] == report["summary"]
    monkeypatch.undo()

    # Seeds run apart and merged give the report of the joint run.
    for seed in (1, 0):
        sgan.main([*argv[:-4], "--seeds", str(seed), *argv[-2:], "--output-dir", f"{out}{seed}"])
    merge = ["compare", "--merge", f"{out}0", f"{out}1", "--output-dir", str(tmp_path / "merged")]
    merged = sgan_study.main(merge[1:])  # its own `python -m` runs `sgan compare`
    assert merged["setting"] == report["setting"]
    assert merged["summary"] == report["summary"] and merged["paired"] == report["paired"]
    capsys.readouterr()
    with pytest.raises(SystemExit):
        sgan.main([*merge[:3], f"{out}0", *merge[-2:]])
    assert capsys.readouterr().err.strip().endswith("study0: seed 0 appears twice")

    # A longer study continues each SGAN run from its last checkpoint instead of step 0.
    with caplog.at_level(logging.INFO, logger="keras_gans.checkpoints"):
        longer = sgan.main(
            [*argv[:-4], "--seeds", "0", *argv[-2:], "--max-steps", "3", "--output-dir", f"{out}0"]
        )
    assert "at step 2 (epoch" in caplog.text
    assert longer["setting"]["steps"] == 3 and len(longer["runs"]) == 2


def test_run_study_checkpoints_each_sgan_run_like_the_cli(tmp_path):
    x, y = toy()
    options = {**TINY, "labels_per_class": 2}
    sgan_study.run_study(
        (x, y), (x, y), (0,), str(tmp_path), max_steps=2, batch_size=8, options=options
    )
    state = json.loads((tmp_path / "sgan" / "seed_0" / "checkpoints" / "state.json").read_text())
    assert state["step"] == 2


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--g-loss", "wasserstein"], "--g-loss: invalid choice"),
        (["--labels-per-class", "0"], "--labels-per-class: must be > 0"),
        (["--d-units", "8,x"], "--d-units: expected widths such as 500,250"),
        (["--labels-per-class", "500"], "error: --labels-per-class 500: class 0 has"),
        (["compare", "--seeds", "a"], "--seeds: expected seeds such as 0,1,2"),
        (["compare", "--merge", "nowhere"], "error: --merge nowhere: no report.json"),
    ],
)
def test_bad_options_are_one_line_errors(argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        sgan.main([*argv, "--img-size", "8", "--output-dir", str(tmp_path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
