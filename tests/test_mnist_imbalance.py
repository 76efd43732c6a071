"""keras_gans.mnist_imbalance: the cGAN and GAN, which weights each step trains, label dependence,
the experiment's artifacts; keras_gans.evaluation's statistics."""

import csv
import json
import os

import keras
import numpy as np
import pytest
from helpers import assert_save_reload, assert_weights_changed, assert_weights_unchanged, snapshot

from data_loaders.mnist import imbalanced_subset, load_mnist
from keras_gans import evaluation
from keras_gans import mnist_imbalance as mi

TINY = {"latent_dim": 8, "base_filters": 4, "embedding_dim": 4, "checkpoint_every": 0}


def _data(n=24, size=16, n_classes=2, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (n, size, size, 1)).astype(np.float32)
    return x, (np.arange(n) % n_classes).astype(np.int64)


def _gan(tmp_path, conditional=True, **kw):
    x, y = _data()
    kw = {**TINY, **kw}
    if conditional:
        return mi.DigitGAN(x, y, 2, [4, 7], output_dir=tmp_path, seed=0, **kw)
    return mi.DigitGAN(x, output_dir=tmp_path, seed=0, **kw)


def test_builders_shapes_and_names():
    g = mi.build_generator(8, n_classes=3, img_size=16, base_filters=4, embedding_dim=4)
    d = mi.build_discriminator(n_classes=3, img_size=16, base_filters=4, embedding_dim=4)
    z, labels = np.zeros((2, 8), np.float32), np.array([[0], [2]], np.int32)
    imgs = np.asarray(g([z, labels]))
    assert imgs.shape == (2, 16, 16, 1) and np.abs(imgs).max() <= 1
    assert np.asarray(d([imgs, labels])).shape == (2, 1)
    assert g.get_layer("generator_label_embedding") and d.get_layer("discriminator_projection")
    u = mi.build_generator(8, img_size=28, base_filters=4)
    assert u.output_shape == (None, 28, 28, 1) and len(u.inputs) == 1
    c = mi.build_classifier(3)
    assert c.output_shape == (None, 3) and c.get_layer("classifier_dropout").rate == 0.3
    assert [c.get_layer(f"classifier_conv{i}").filters for i in (1, 2)] == [16, 32]
    with pytest.raises(ValueError, match="multiple of 4"):
        mi.build_generator(8, img_size=30)


@pytest.mark.parametrize("conditional", [True, False])
def test_d_step_trains_only_d_and_g_step_only_g(tmp_path, conditional):
    gan = _gan(tmp_path, conditional)
    x, y = _data(8)
    labels = y[:, None].astype(np.int32) if conditional else None
    noise = np.random.default_rng(1).normal(size=(8, 8)).astype(np.float32)
    before = snapshot(gan.generator, gan.discriminator)
    gan.d_step(x, labels, noise)
    assert_weights_changed(before, [gan.discriminator])
    assert_weights_unchanged(before, [gan.generator])
    before = snapshot(gan.generator, gan.discriminator)
    gan.g_step(noise, labels)
    assert_weights_changed(before, [gan.generator])
    assert_weights_unchanged(before, [gan.discriminator])
    if conditional:  # the label embeddings learn too
        weights = gan.generator.get_layer("generator_label_embedding").weights[0]
        assert not np.array_equal(before[f"generator/{weights.path}"], weights.numpy())


@pytest.mark.slow
def test_train_writes_outputs_and_resumes(tmp_path):
    gan = _gan(tmp_path, checkpoint_every=2)
    summary = gan.train(steps=3, batch_size=4, sample_interval=2)
    assert summary["steps"] == 3 and summary["conditional"] and summary["classes"] == [4, 7]
    for name in ("losses.csv", "losses.png", "summary.json", "images/0.png", "images/3.png"):
        assert os.path.exists(tmp_path / name), name
    for name in ("generator", "discriminator"):
        assert os.path.exists(tmp_path / "models" / f"{name}.h5")
        assert os.path.exists(tmp_path / "models" / f"{name}.keras")
    features = keras.Sequential(  # a tiny stand-in for Inception: --eval-extractor
        [keras.Input((16, 16, 3)), keras.layers.Conv2D(4, 3), keras.layers.GlobalAveragePooling2D()]
    )
    again = _gan(tmp_path, checkpoint_every=2, eval_every=1, eval_extractor=features)
    assert again.train(steps=4, batch_size=4, sample_interval=0)["steps"] == 4
    assert again.step == 4
    with open(tmp_path / "losses.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["step"] for r in rows] == ["1", "2", "3", "4"]  # resumed after step 3
    assert float(rows[-1]["fid"]) >= 0 and rows[-1]["kid"] != ""


@pytest.mark.parametrize("conditional", [True, False])
def test_generator_round_trips_through_load_model(tmp_path, conditional):
    gan = _gan(tmp_path / "run", conditional)
    z = np.random.default_rng(0).normal(size=(3, 8)).astype(np.float32)
    inputs = [z, np.array([[0], [1], [1]], np.int32)] if conditional else z
    assert_save_reload(gan.generator, tmp_path, inputs)


def test_generate_command_writes_pngs(tmp_path):
    gan = _gan(tmp_path / "run")
    gan.save_models()
    model = str(tmp_path / "run" / "models" / "generator.keras")
    paths = mi.main(["generate", "--model", model, "--output", str(tmp_path / "png"), "-n", "3",
                     "--label", "1"])  # fmt: skip
    assert len(paths) == 3 and all(os.path.exists(p) for p in paths)
    with pytest.raises(ValueError, match="--label"):
        mi.generate_files(model, str(tmp_path / "png"))


def test_balanced_batches_draw_each_class_equally(tmp_path):
    x, _ = _data(40)
    y = np.array([0] * 38 + [1] * 2)
    gan = mi.DigitGAN(x, y, 2, output_dir=tmp_path, balanced_batches=True, **TINY)
    drawn = gan._draw(np.random.default_rng(0), 2000)
    assert 0.45 < np.mean(y[drawn] == 1) < 0.55
    plain = mi.DigitGAN(x, y, 2, output_dir=tmp_path / "plain", **TINY)
    assert np.mean(y[plain._draw(np.random.default_rng(0), 2000)] == 1) < 0.1


def test_augment_and_classic_oversampling():
    x, y = _data(6, size=16, n_classes=3)
    x[:] = -1.0
    x[:, 6:10, 6:10] = 1.0  # a square in the middle
    rng = np.random.default_rng(0)
    out = mi.augment(x[:2], 5, rng)
    assert out.shape == (5, 16, 16, 1) and out.min() >= -1.0 and out.max() <= 1.0
    assert not np.allclose(out[0], x[0]) and out[:, 6:10, 6:10].mean() > 0  # moved, still there
    missing = mi.shortfall(np.array([0, 1, 1, 1, 2, 2]), 3, 3)
    assert missing == {0: 2, 2: 1}
    xo, yo = mi.oversample_classic(x, y, {0: 4}, seed=0)
    assert len(xo) == 10 and np.bincount(yo).tolist() == [6, 2, 2]


def test_classification_metrics():
    y_true = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    y_pred = np.array([0, 0, 1, 1, 1, 1, 2, 0])
    m, cm = mi.classification_metrics(y_true, y_pred, ["1", "2", "3"], first_n=2)
    assert cm == [[2, 2, 0], [0, 2, 0], [1, 0, 1]]
    assert m["accuracy"] == pytest.approx(5 / 8)
    assert (m["recall_1"], m["recall_2"], m["recall_3"]) == (0.5, 1.0, 0.5)
    assert m["precision_1"] == pytest.approx(2 / 3) and m["balanced_accuracy"] == pytest.approx(
        2 / 3
    )
    assert m["first2_correct"] == 5


def test_parse_counts():
    assert mi.parse_counts("1,300,300", [1, 2, 3]) == {1: 1, 2: 300, 3: 300}
    assert mi.parse_counts("3:5, 1:2", [1, 3]) == {1: 2, 3: 5}
    with pytest.raises(ValueError):
        mi.parse_counts("1,2", [1, 2, 3])
    with pytest.raises(ValueError):
        mi.parse_counts("1:2,4:2", [1, 2])


def test_mean_ci_and_paired_difference():
    ci = evaluation.mean_ci([1.0, 2.0, 3.0])
    assert ci["mean"] == 2.0 and ci["std"] == 1.0
    assert ci["half_width"] == pytest.approx(4.302653 / np.sqrt(3), rel=1e-5)
    assert ci["low"] == pytest.approx(2.0 - ci["half_width"])
    one = evaluation.mean_ci([0.7])
    assert one["mean"] == 0.7 and one["half_width"] is None
    d = evaluation.paired_difference([0.5, 0.6, 0.7], [0.6, 0.8, 0.7])
    assert d["mean"] == pytest.approx(0.1) and (d["better"], d["worse"]) == (2, 0)
    assert 0 < d["p_value"] < 1
    assert evaluation.paired_difference([1, 2], [2, 3])["p_value"] is None  # constant differences
    runs = {"baseline": [{"acc": 0.5}, {"acc": 0.6}], "gan": [{"acc": 0.7}, {"acc": 0.6}]}
    assert evaluation.summarize(runs)["gan"]["acc"]["mean"] == pytest.approx(0.65)
    assert evaluation.compare(runs, "baseline")["gan - baseline"]["acc"]["mean"] == pytest.approx(
        0.1
    )
    json.dumps(evaluation.compare(runs, "baseline"), allow_nan=False)  # strict JSON


@pytest.mark.slow
def test_conditional_generator_follows_the_label(tmp_path):
    """A short cGAN run on real digits 0 and 1: a classifier trained on the real digits reads the
    requested digit in G's images far above chance (50%)."""
    x, y = load_mnist(None, "train", size=16)
    x, y = imbalanced_subset(x, y, {0: 100, 1: 100}, seed=0)
    y = (y == 1).astype(np.int64)
    gan = mi.DigitGAN(x, y, 2, latent_dim=32, base_filters=8, embedding_dim=8,
                      output_dir=tmp_path, seed=0, checkpoint_every=0)  # fmt: skip
    gan.train(steps=400, batch_size=32, sample_interval=0)  # 300 sufficed for 2 of 3 seeds
    clf = mi.train_classifier(x, y, 2, seed=0, epochs=3)
    for label in (0, 1):
        pred = mi.predict_classes(clf, gan.generate_class(100, label, key=label))
        assert np.mean(pred == label) > 0.8, f"digit {label}: {np.mean(pred == label):.2f}"


@pytest.mark.slow
def test_experiment_cli_writes_its_artifacts(tmp_path):
    out = tmp_path / "exp"
    args = ["--digits", "0,1", "--counts", "2,40", "--gan-steps", "3", "--batch-size", "8",
            "--base-filters", "4", "--latent-dim", "8", "--seeds", "2", "--epochs", "1",
            "--sample-interval", "0", "--output-dir", str(out)]  # fmt: skip
    report = mi.main(args)
    for name in ("report.json", "runs.csv", "metrics.png", "images/gan_seed0.png",
                 "images/classic_seed1.png", "gan/seed_1/models/generator.h5"):  # fmt: skip
        assert os.path.exists(out / name), name
    with open(out / "report.json") as f:
        saved = json.load(f)
    assert saved["setting"]["counts_used"] == {"0": 2, "1": 40}
    assert saved["setting"]["target_count"] == 40 and saved["setting"]["seeds"] == [0, 1]
    for arm in ("baseline", "gan", "classic"):
        assert [r["train_size"] for r in saved["runs"][arm]] == [
            42 if arm == "baseline" else 80
        ] * 2
        ci = saved["summary"][arm]["recall_0"]
        assert ci["n"] == 2 and ci["half_width"] is not None
    assert set(saved["differences"]) == {"gan - baseline", "classic - baseline", "gan - classic"}
    assert report["setting"]["test_images"] == {"0": 53, "1": 55}
    assert "recall 0" in mi.format_summary(report)


@pytest.mark.slow
def test_unconditional_gan_on_the_rare_digit(tmp_path):
    train, test = _data(40, 16, 2, seed=1), _data(20, 16, 2, seed=2)
    report = mi.run_experiment(
        train, test, digits=(0, 1), counts={0: 1, 1: 10}, arms=("baseline", "gan"),
        gan="unconditional", gan_steps=2, gan_batch_size=4, seeds=(3,), epochs=1,
        output_dir=str(tmp_path), gan_kwargs={"latent_dim": 8, "base_filters": 4},
        runtime={"checkpoint_every": 0},
    )  # fmt: skip
    assert os.path.exists(tmp_path / "gan" / "seed_3" / "digit_0" / "models" / "generator.keras")
    assert report["runs"]["gan"][0]["train_size"] == 20
    assert report["summary"]["gan"]["accuracy"]["half_width"] is None  # one seed: no interval
