"""keras_gans.mode_coverage: the measure, the scorer, and its wiring into the MNIST trainers.

The scorer is the small digit CNN trained on scikit-learn's digits (``load_mnist(None)``, about two
seconds), once per module. A generator that draws one digit covers fewer modes with a larger
KL(p_gen || uniform) than a balanced sample of real digits; the cGAN logs the values with
``--eval-every`` into losses.csv and summary.json.
"""

import json
import math

import keras
import numpy as np
import pytest
from keras import layers

from data_loaders.mnist import load_mnist
from keras_gans import cgan, mode_coverage
from keras_gans.dcgan import DCGAN
from keras_gans.saving import save_model


@pytest.fixture(scope="module")
def scorer(tmp_path_factory):
    path = tmp_path_factory.mktemp("coverage") / "digits.h5"
    return mode_coverage.fit_digit_classifier(None, str(path)), str(path)


@pytest.fixture(scope="module")
def test_digits():
    return load_mnist(None, "test")


def test_kl_from_uniform_is_zero_when_balanced_and_log_k_for_one_class():
    assert mode_coverage.kl_from_uniform([5] * 10) == pytest.approx(0.0)
    assert mode_coverage.kl_from_uniform([7] + [0] * 9) == pytest.approx(math.log(10))
    assert 0 < mode_coverage.kl_from_uniform([4, 4, 1, 1]) < math.log(4)
    assert math.isnan(mode_coverage.kl_from_uniform([0, 0]))


def test_the_scorer_reads_held_out_digits(scorer, test_digits):
    """Before trusting a coverage number: the classifier reads real test digits, every class."""
    clf, path = scorer
    info = mode_coverage.classifier_info(path)
    assert info["test_accuracy"] > 0.85 and info["train_images"] > 1000
    x, y = test_digits
    pred = mode_coverage.predict_digits(clf, x)
    assert np.mean(pred == y) == pytest.approx(info["test_accuracy"])
    assert min(np.bincount(pred, minlength=10)) > 0.5 * len(x) / 10


def test_a_collapsed_generator_scores_worse_than_a_balanced_one(scorer, test_digits):
    clf, _ = scorer
    x, y = test_digits
    rng = np.random.default_rng(0)
    balanced = x[rng.choice(len(x), 300, replace=False)]
    threes = x[y == 3]
    collapsed = threes[rng.integers(0, len(threes), 300)]  # a "generator" drawing only 3s
    good = mode_coverage.mode_coverage(balanced, clf)
    bad = mode_coverage.mode_coverage(collapsed, clf)
    assert good["modes_covered"] == 10 and good["mode_share"] == 1.0 and good["kl_uniform"] < 0.1
    assert bad["modes_covered"] < good["modes_covered"] and bad["kl_uniform"] > 1.5
    # the digits a GAN was trained on: others are no modes; conditional labels are checked
    sub = mode_coverage.mode_coverage(collapsed, clf, classes=[3, 5], labels=np.zeros(300))
    assert sub["modes_covered"] <= 2 and sub["label_match"] > 0.8 and sub["off_mode_share"] < 0.2
    none = mode_coverage.mode_coverage(collapsed[:1], clf, classes=[0])  # no image is a 0: no KL
    assert none["modes_covered"] == 0 and none["kl_uniform"] is None
    # RGB images of another size are made grey and resized
    rgb = np.repeat(np.asarray(keras.ops.image.resize(balanced, (32, 32))), 3, axis=-1)
    assert mode_coverage.mode_coverage(rgb, clf)["modes_covered"] == 10


def _one_digit_generator(image):
    """A saved G that ignores z and always draws ``image``: total mode collapse."""
    z = keras.Input((4,))
    x = layers.Dense(image.size, kernel_initializer="zeros")(z)
    g = keras.Model(z, layers.Reshape(image.shape)(x), name="collapsed")
    g.layers[1].bias.assign(image.reshape(-1))
    return g


def test_score_cli_on_a_collapsed_saved_generator(scorer, test_digits, tmp_path, capsys):
    clf, path = scorer
    x, y = test_digits
    g = _one_digit_generator(x[np.flatnonzero(y == 7)[0]])
    model = save_model(g, str(tmp_path / "g"), formats=("h5",))[0]
    values = mode_coverage.main(["score", "--model", model, "--classifier", path, "--n", "50"])
    assert values["modes_covered"] == 1 and values["kl_uniform"] == pytest.approx(math.log(10))
    assert values["histogram"][7] == 50 and "kl_uniform: 2.303" in capsys.readouterr().out
    with pytest.raises(SystemExit) as err:
        mode_coverage.main(["score", "--model", str(tmp_path / "none.h5"), "--classifier", path])
    assert err.value.code == 2 and "no such model file" in capsys.readouterr().err


def test_the_default_scorer_is_trained_once_and_cached(monkeypatch, tmp_path):
    """Without --coverage-classifier the cGAN trains one on --data-dir's digits, cached (the
    training is stubbed here: a CNN that reads every image as a 9, saved where the real one would
    be). Its fakes of the digits 0 and 1 then cover no mode, and the undefined KL is left out of
    the log instead of stopping the run as a NaN loss."""
    monkeypatch.setenv("KERAS_GANS_HOME", str(tmp_path / "home"))
    calls = []

    def fit(source, path, epochs=1):
        calls.append((source, path))
        model = mode_coverage.build_classifier(filters=2)
        probs = model.get_layer("digits_probs")
        probs.set_weights([np.zeros_like(probs.kernel), np.eye(10)[9] * 10])
        save_model(model, path[: -len(".h5")], formats=("h5",))
        return model

    monkeypatch.setattr(mode_coverage, "fit_digit_classifier", fit)
    args = ["--digits", "0,1", "--latent-dim", "8", "--base-filters", "4", "--embedding-dim", "4",
            "--max-steps", "1", "--batch-size", "8", "--sample-interval", "0", "--eval-every", "1",
            "--checkpoint-every", "0"]  # fmt: skip
    cgan.main([*args, "--output-dir", str(tmp_path / "run")])
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["steps"] == 1 and summary["evaluation"]["last"]["modes_covered"] == 0
    assert "kl_uniform" not in summary["evaluation"]["last"]
    mode_coverage.digit_classifier(None)  # the next run's scorer comes from the cache
    assert calls == [(None, mode_coverage.cache_path(None))]  # trained once, then read
    assert mode_coverage.cache_path(None).startswith(str(tmp_path / "home"))
    assert mode_coverage.cache_path(None) != mode_coverage.cache_path("/data/mnist")


def test_cgan_logs_coverage_with_eval_every(scorer, tmp_path, capsys):
    _, path = scorer
    out = tmp_path / "run"
    args = ["--digits", "0,1,2", "--latent-dim", "8", "--base-filters", "4", "--embedding-dim",
            "4", "--max-steps", "2", "--batch-size", "8", "--sample-interval", "0",
            "--checkpoint-every", "0", "--seed", "0", "--output-dir", str(out)]  # fmt: skip
    cgan.main([*args, "--eval-every", "1", "--coverage-classifier", path])
    summary = json.loads((out / "summary.json").read_text())
    first, last = summary["evaluation"]["first"], summary["evaluation"]["last"]
    assert (first["step"], last["step"]) == (1, 2)
    assert 1 <= last["modes_covered"] <= 3 and 0 <= last["kl_uniform"] <= math.log(3) + 1e-6
    assert {"mode_share", "label_match", "off_mode_share"} <= set(last)
    header = (out / "losses.csv").read_text().splitlines()[0].split(",")
    assert {"modes_covered", "kl_uniform"} <= set(header)
    capsys.readouterr()
    with pytest.raises(SystemExit) as err:  # scoring needs --eval-every
        cgan.main([*args, "--coverage-classifier", path, "--output-dir", str(tmp_path / "b")])
    assert err.value.code == 2 and "--eval-every" in capsys.readouterr().err
    not_a_classifier = save_model(cgan.build_generator(8, img_size=16, base_filters=4),
                                  str(tmp_path / "g"), formats=("h5",))[0]  # fmt: skip
    for bad, message in (
        (not_a_classifier, "not a digit classifier"),
        (tmp_path / "no.h5", "no such"),
    ):
        with pytest.raises(SystemExit) as err:
            cgan.main([*args, "--eval-every", "1", "--coverage-classifier", str(bad),
                       "--output-dir", str(tmp_path / "c")])  # fmt: skip
        lines = capsys.readouterr().err.strip().splitlines()
        assert err.value.code == 2 and len(lines) == 1 and message in lines[0]


def test_dcgan_on_digit_arrays_reports_coverage(scorer, tmp_path):
    clf, _ = scorer
    x, _ = load_mnist(None, "train", size=16)
    gan = DCGAN(x[:64], output_dir=str(tmp_path), seed=0, gf=4, df=4, latent_dim=8,
                checkpoint_every=0, coverage_classifier=clf)  # fmt: skip
    values = gan.evaluate()
    assert set(values) == {"modes_covered", "mode_share", "kl_uniform"}
    assert values["mode_share"] == values["modes_covered"] / 10


def test_sgan_reports_coverage_beside_its_test_accuracy(scorer, tmp_path):
    from keras_gans.sgan import SGAN

    clf, _ = scorer
    x, y = load_mnist(None, "train", size=16)
    gan = SGAN(x[:40], y[:40], labels_per_class=1, latent_dim=4, g_units=(8,), d_units=(8, 8),
               test=(x[:20], y[:20]), output_dir=str(tmp_path), coverage_classifier=clf)  # fmt: skip
    assert {"test_accuracy", "modes_covered", "kl_uniform"} <= set(gan.evaluate())
