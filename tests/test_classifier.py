"""The report's melanoma / nevus CNN: architecture, augmentation, class weights, training."""

import keras
import numpy as np
import pytest

from keras_gans import classifier as C
from keras_gans.errors import ConfigError
from keras_gans.evaluation import classification_metrics
from tests.helpers import assert_weights_changed, assert_weights_unchanged, snapshot

SIZE = (
    24  # the smallest comfortable size for the report's three valid conv blocks: 24 -> 11 -> 4 -> 1
)


def _images(n, seed=0, size=SIZE):
    """uint8 images whose brightness tells the class: class 0 dark, class 1 bright."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    base = np.where(labels[:, None, None, None] == 0, 60, 190)
    noise = rng.integers(-40, 40, (n, size, size, 3))
    return np.clip(base + noise, 0, 255).astype(np.uint8), labels


def test_report_architecture():
    model = C.build_classifier(128)
    convs = [layer for layer in model.layers if layer.name.endswith("_conv")]
    assert [c.filters for c in convs] == [32, 64, 128]
    assert [c.kernel_size for c in convs] == [(3, 3)] * 3 and convs[0].padding == "valid"
    assert model.get_layer("fc").units == 512
    assert model.get_layer("fc_dropout").rate == 0.5
    assert [model.get_layer(f"block{i}_dropout").rate for i in (1, 2, 3)] == [0.25] * 3
    assert model.output_shape == (None, 2)
    assert model.get_layer("flatten").output.shape[-1] == 14 * 14 * 128  # valid padding at 128
    assert model.get_layer("block1_bn").momentum == C.BN_MOMENTUM == 0.99
    assert C.build_classifier(SIZE, bn_momentum=0.9).get_layer("fc_bn").momentum == 0.9
    small = C.build_classifier(SIZE, channels=1, n_classes=3)
    assert small.input_shape == (None, SIZE, SIZE, 1) and small.output_shape == (None, 3)
    with pytest.raises(ConfigError, match="--img-size 16"):
        C.build_classifier(16)  # 16 -> 7 -> 2 -> 0


def test_augmentation_touches_training_batches_only():
    aug = C.build_augmentation(seed=0)
    assert [layer.name for layer in aug.layers] == ["rotation", "shear", "zoom", "flip", "shift"]
    assert aug.get_layer("rotation").factor == pytest.approx((-15 / 360, 15 / 360))
    x, y = _images(8)
    plain = list(C.make_dataset(x, y, 2, 4))
    assert len(plain) == 2 and len(plain[0]) == 2  # (images, one-hot), no weights
    np.testing.assert_allclose(np.concatenate([b[0] for b in plain]), x / 255.0, atol=1e-6)
    np.testing.assert_array_equal(np.concatenate([b[1] for b in plain]), np.eye(2)[y])
    augmented = np.concatenate([b[0] for b in C.make_dataset(x, y, 2, 4, None, aug)])
    assert augmented.shape == x.shape
    assert np.abs(augmented - x / 255.0).mean() > 0.01
    weighted = next(iter(C.make_dataset(x, y, 2, 8, weights=np.arange(8.0))))
    np.testing.assert_array_equal(weighted[2], np.arange(8.0))


def test_class_weights():
    labels = np.array([0] * 10 + [1] * 30)  # melanoma rarer
    auto = C.class_weights(labels, 2, "auto")
    assert auto == pytest.approx({0: 40 / (2 * 10), 1: 40 / (2 * 30)})
    assert C.class_weights(np.zeros(6, int), 2, "auto") == {0: 1.0, 1: 1.0}  # absent class: 1
    # The report's "1:14": majority : minority, by the counts of the reference labels.
    assert C.class_weights(labels, 2, "1:14") == {1: 1.0, 0: 14.0}
    assert C.class_weights(1 - labels, 2, "1:14") == {0: 1.0, 1: 14.0}
    more_mel = np.concatenate([labels, np.zeros(50, int)])  # e.g. synthetic melanomas added
    assert C.class_weights(more_mel, 2, "1:14", reference_labels=labels) == {1: 1.0, 0: 14.0}
    names = ("melanoma", "nevus")
    assert C.class_weights(labels, 2, "Melanoma=8", class_names=names) == {0: 8.0, 1: 1.0}
    assert C.class_weights(labels, 2, " None ") is None
    for bad in ("1:2:3", "1:x", "1:-2", "melanoma=x", "benign=2", "melanoma=1=2"):
        with pytest.raises(ConfigError, match="--class-weight"):
            C.class_weights(labels, 2, bad, class_names=names)


def test_training_changes_every_kernel_and_predicts_probabilities():
    x, y = _images(48)
    keras.utils.set_random_seed(3)
    before = snapshot(C.build_classifier(SIZE))
    keras.utils.set_random_seed(3)
    assert_weights_unchanged(before, [C.build_classifier(SIZE)])  # the seed fixes the init
    train, val = (x[:32], y[:32]), (x[32:], y[32:])
    model, history = C.train_classifier(train, val, 2, {0: 1.0, 1: 2.0}, 3, epochs=1, batch_size=16)
    assert_weights_changed(before, [model])
    assert {"loss", "val_loss", "accuracy", "val_accuracy"} <= set(history)
    assert len(history["loss"]) == 1 and np.isfinite(history["val_loss"][0])
    probs = C.predict_proba(model, x[32:], batch_size=5)
    assert probs.shape == (16, 2) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    direct = np.asarray(model(x[32:].astype(np.float32) / 255.0, training=False))
    np.testing.assert_allclose(probs, direct, atol=1e-5)
    with pytest.raises(ConfigError, match="--val-fraction"):
        C.train_classifier((x, y), (x[:0], y[:0]), epochs=1)


@pytest.mark.slow
def test_classifier_beats_chance_on_the_sample():
    from data_loaders.images import to_uint8
    from data_loaders.isic import load_isic
    from keras_gans.experiments.lesion_harness import leakage_groups, split_indices

    data = load_isic(None, img_size=32, value_range=(0.0, 1.0))
    x, y = to_uint8(data.images, (0.0, 1.0)), data.labels
    split = split_indices(y, leakage_groups(x, data.lesion_ids), test_per_class=40)
    tr, va, te = split["train"], split["val"], split["test"]
    model, history = C.train_classifier(
        (x[tr], y[tr]),
        (x[va], y[va]),
        class_weight=C.class_weights(y[tr], 2),
        epochs=5,
        batch_size=16,
        bn_momentum=0.9,  # a few steps per epoch: moving statistics must catch up quickly
    )
    m = classification_metrics(y[te], C.predict_proba(model, x[te]), positive=0)
    assert len(history["loss"]) <= 5
    assert m["balanced_accuracy"] > 0.75, m
    assert m["roc_auc"] > 0.85, m


def test_bn_stats_auto_follows_the_steps_per_epoch():
    assert C.resolve_bn_stats("auto", 152, 64) == "recompute"  # issue 22: 3 steps an epoch
    assert C.resolve_bn_stats("auto", 15_000, 64) == "moving"  # the report's size: 235 steps
    assert C.resolve_bn_stats("auto", 152, 64, bn_momentum=0.5) == "moving"  # spans 2 steps
    assert C.resolve_bn_stats("moving", 10) == "moving"
    with pytest.raises(ConfigError, match="--bn-stats 'batch'"):
        C.resolve_bn_stats("batch", 10)


def test_recomputed_bn_statistics_fix_a_one_class_classifier():
    """Moving statistics after a few steps answer one class; recomputed ones separate the classes."""
    from keras_gans.evaluation import prediction_check

    x, y = _images(80)
    train, val, test = (x[:48], y[:48]), (x[48:64], y[48:64]), (x[64:], y[64:])
    checks, models = {}, {}
    for mode in ("moving", "recompute"):
        model, _ = C.train_classifier(train, val, 2, None, 0, 1, 16, False, bn_stats=mode)
        pred = C.predict_proba(model, test[0]).argmax(1)
        checks[mode], models[mode] = prediction_check(test[1], pred, 2), model
    assert checks["moving"]["degenerate"], checks
    assert not checks["recompute"]["degenerate"] and checks["recompute"]["share"] < 0.7, checks
    # The statistics are those of each layer's inputs over the training images, in inference mode.
    model = models["moving"]
    assert C.recompute_bn_statistics(model, train[0], batch_size=7) == 4
    for name in ("block1_bn", "fc_bn"):
        layer = model.get_layer(name)
        inputs = keras.Model(model.input, layer.input)(train[0] / 255.0, training=False)
        inputs = np.asarray(inputs).reshape(-1, layer.moving_mean.shape[0])
        np.testing.assert_allclose(layer.moving_mean.numpy(), inputs.mean(0), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(
            layer.moving_variance.numpy(), inputs.var(0), rtol=1e-3, atol=1e-6
        )
