"""Assertion helpers shared by the model tests (weight changes, save / reload, config round trip)."""

import os

import numpy as np


def snapshot(*models):
    """Copies of every weight of ``models``, keyed by ``model.name/weight.path``."""
    return {f"{m.name}/{w.path}": np.array(w.numpy()) for m in models for w in m.weights}


def changed(before, models, trainable_only=True):
    """``{model name: number of its (trainable) weights that differ from ``before``}``."""
    counts = {}
    for m in models:
        weights = m.trainable_weights if trainable_only else m.weights
        if trainable_only and not weights:  # a frozen model: compare all its kernels
            weights = [w for w in m.weights if w.trainable or "kernel" in w.path]
        n = 0
        for w in weights:
            key = f"{m.name}/{w.path}"
            if key in before and not np.array_equal(before[key], w.numpy()):
                n += 1
        counts[m.name] = n
    return counts


def assert_weights_changed(before, models):
    """Every model in ``models`` had at least one weight change, and every kernel changed."""
    for m in models:
        kernels = [w for w in m.weights if w.path.endswith("kernel")]
        moved = [
            w.path for w in kernels if not np.array_equal(before[f"{m.name}/{w.path}"], w.numpy())
        ]
        assert kernels, f"{m.name} has no kernels"
        assert len(moved) == len(kernels), (
            f"{m.name}: only {len(moved)}/{len(kernels)} kernels changed"
        )


def assert_weights_unchanged(before, models):
    """No weight of any model in ``models`` changed."""
    for m in models:
        for w in m.weights:
            key = f"{m.name}/{w.path}"
            assert np.array_equal(before[key], w.numpy()), f"{key} changed but should be frozen"


def assert_save_reload(model, tmp_path, inputs, atol=1e-5):
    """``model`` saved as ``.h5`` and ``.keras`` and loaded by ``keras_gans.load_model`` predicts the same."""
    from keras_gans import load_model
    from keras_gans.saving import save_model

    expected = np.asarray(model(inputs, training=False))
    for path in save_model(model, os.path.join(tmp_path, model.name)):
        reloaded = load_model(path)
        got = np.asarray(reloaded(inputs, training=False))
        np.testing.assert_allclose(got, expected, atol=atol, err_msg=path)


def assert_config_roundtrip(layer):
    """``from_config(get_config())`` rebuilds a layer with the same config."""
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
