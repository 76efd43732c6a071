"""Tests of keras_gans.saving: legacy tf.keras 2 ``.h5`` files, Keras 3 round trips, bad files.

The legacy fixtures in ``tests/fixtures/legacy/`` were written by tf.keras 2.15 with keras-contrib
and tensorflow-addons instance norms (see ``tests/fixtures/make_legacy_fixtures.py``); all offline.
"""

import os
import warnings
import zipfile
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest

import keras_gans
from keras_gans.layers import InstanceNormalization
from keras_gans.saving import ModelFileError, load_model, save_model

LEGACY = os.path.join(os.path.dirname(__file__), "fixtures", "legacy")
# file stem -> expected (axis, epsilon_mode) of every instance norm in it
SEMANTICS = {
    "contrib_generator": [(None, "std")] * 7,
    "contrib_discriminator": [(None, "std")] * 3,
    "addons_generator": [(-1, "variance")] * 7,
    "addons_discriminator": [(-1, "variance")] * 3,
    "contrib_axis": [(-1, "std"), (3, "std")],
}


@pytest.fixture(scope="module")
def expected():
    with np.load(os.path.join(LEGACY, "expected.npz")) as data:
        return dict(data)


def _input(expected, stem):
    return expected["x_small" if stem == "contrib_axis" else "x"]


def _norms(model):
    return [layer for layer in model.layers if isinstance(layer, InstanceNormalization)]


@pytest.mark.parametrize("stem", sorted(SEMANTICS))
def test_legacy_h5_loads_with_the_original_outputs(stem, expected):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = keras_gans.load_model(os.path.join(LEGACY, f"{stem}.h5"))
        out = np.asarray(model(_input(expected, stem), training=False))
    np.testing.assert_allclose(out, expected[stem], atol=1e-4, rtol=0)
    assert [(n.axis, n.epsilon_mode) for n in _norms(model)] == SEMANTICS[stem]
    # No Keras 3 complaint about tf.keras 2 configs (LeakyReLU alpha, one-element input lists).
    messages = [str(w.message) for w in caught]
    assert not [m for m in messages if "alpha" in m or "structure of `inputs`" in m], messages


def test_legacy_layer_details():
    model = load_model(os.path.join(LEGACY, "contrib_axis.h5"))
    assert isinstance(model, keras.Sequential)
    last = _norms(model)[-1]
    assert (last.center, last.epsilon, last.beta, tuple(last.gamma.shape)) == (
        False,
        0.05,
        None,
        (5,),
    )
    gen = load_model(os.path.join(LEGACY, "contrib_generator.h5"))
    assert {tuple(n.gamma.shape) for n in _norms(gen)} == {(1,)}
    leaky = [layer for layer in gen.layers if isinstance(layer, keras.layers.LeakyReLU)]
    assert leaky and all(abs(layer.negative_slope - 0.2) < 1e-6 for layer in leaky)


@pytest.mark.parametrize("stem", ["contrib_discriminator", "addons_generator"])
def test_fixtures_tell_the_two_norms_apart(stem, expected):
    """The stored outputs would catch a contrib <-> addons mix-up of epsilon placement."""
    model = load_model(os.path.join(LEGACY, f"{stem}.h5"))
    for norm in _norms(model):
        norm.epsilon_mode = "variance" if norm.epsilon_mode == "std" else "std"
    out = np.asarray(model(_input(expected, stem), training=False))
    assert np.abs(out - expected[stem]).max() > 1e-4


def test_legacy_compile_rebuilds_training_config():
    with pytest.warns(UserWarning, match="optimizer state"):
        model = load_model(os.path.join(LEGACY, "addons_discriminator.h5"), compile=True)
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    assert model.optimizer.get_config()["beta_1"] == pytest.approx(0.5)
    assert float(model.optimizer.learning_rate) == pytest.approx(2e-4)
    assert model.loss == "mse"


def _keras3_model(kind):
    keras.utils.set_random_seed(1)
    norm = dict(
        contrib=dict(axis=None, epsilon_mode="std"), addons=dict(axis=-1, epsilon_mode="variance")
    )
    x = keras.Input((8, 8, 3))
    h = keras.layers.Conv2D(4, 3, strides=2, padding="same")(x)
    h = keras.layers.LeakyReLU(negative_slope=0.2)(h)
    h = InstanceNormalization(
        gamma_initializer="random_normal", beta_initializer="random_normal", **norm[kind]
    )(h)
    return keras.Model(x, keras.layers.Conv2D(2, 3, padding="same")(h), name=f"{kind}_net")


@pytest.mark.parametrize("kind", ["contrib", "addons"])
def test_keras3_round_trip(kind, tmp_path):
    model = _keras3_model(kind)
    x = np.random.default_rng(0).uniform(-1, 1, (2, 8, 8, 3)).astype("float32")
    want = np.asarray(model(x))
    stem = tmp_path / "new" / "dir" / "net"
    paths = save_model(model, stem)
    assert paths == [f"{stem}.h5", f"{stem}.keras"]
    assert sorted(os.listdir(stem.parent)) == ["net.h5", "net.keras"]  # no temp files left
    for path in paths:
        loaded = load_model(path)
        np.testing.assert_allclose(np.asarray(loaded(x)), want, atol=1e-6)
        (norm,) = _norms(loaded)
        assert (norm.axis, norm.epsilon_mode) == (
            _norms(model)[0].axis,
            _norms(model)[0].epsilon_mode,
        )


def _optimizer_groups(path):
    """Names of the optimizer's groups in a saved ``.h5`` or in a ``.keras`` archive's weights."""
    if path.endswith(".h5"):
        with h5py.File(path) as f:
            return [k for k in f if "optimizer" in k]
    with zipfile.ZipFile(path) as archive, archive.open("model.weights.h5") as raw:
        with h5py.File(raw) as f:
            return [k for k in f if "optimizer" in k]


def test_files_for_reuse_hold_no_optimizer_state(tmp_path):
    model = _keras3_model("contrib")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    x = np.random.default_rng(0).uniform(-1, 1, (2, 8, 8, 3)).astype("float32")
    model.train_on_batch(x, np.zeros((2, 4, 4, 2), "float32"))  # builds Adam's moments
    want = np.asarray(model(x))
    lean = save_model(model, tmp_path / "lean")
    full = save_model(model, tmp_path / "full", include_optimizer=True)
    for lean_path, full_path in zip(lean, full):
        assert _optimizer_groups(lean_path) == [] and _optimizer_groups(full_path) != []
        assert os.path.getsize(lean_path) < os.path.getsize(full_path)
        np.testing.assert_allclose(np.asarray(load_model(lean_path)(x)), want, atol=1e-6)
    assert model.optimizer.built  # the model being trained keeps its optimizer


def test_failed_save_leaves_nothing_behind(tmp_path, monkeypatch):
    model = _keras3_model("contrib")

    def broken_save(path, *args, **kwargs):
        Path(path).write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(model, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_model(model, tmp_path / "net", formats=("keras",))
    assert os.listdir(tmp_path) == []
    with pytest.raises(ValueError, match="formats"):
        save_model(model, tmp_path / "net", formats=("pt",))


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    """name -> path of each bad file, made from good ones once for the module."""
    good, folder = tmp_path_factory.mktemp("good"), tmp_path_factory.mktemp("bad")
    model = _keras3_model("contrib")
    save_model(model, good / "good")
    model.save_weights(good / "good.weights.h5")

    def write(name, data):
        (folder / name).write_bytes(data)
        return folder / name

    h5, zipped = (good / "good.h5").read_bytes(), (good / "good.keras").read_bytes()
    with h5py.File(folder / "plain.h5", "w") as f:
        f["data"] = np.arange(3)
    with zipfile.ZipFile(folder / "other.keras", "w") as zf:
        zf.writestr("readme.txt", "hello")
    with h5py.File(folder / "tf2_weights.h5", "w") as f:  # tf.keras 2 save_weights layout
        f.attrs["layer_names"] = [b"conv2d"]
    model.save_weights(folder / "w.weights.h5")
    os.replace(folder / "w.weights.h5", folder / "k3_weights.h5")
    legacy = (Path(LEGACY) / "contrib_discriminator.h5").read_bytes()
    damaged = bytearray(zipped)
    damaged[len(zipped) // 3 : len(zipped) // 3 + 64] = b"\xff" * 64
    return {
        "missing": folder / "missing.h5",
        "empty_h5": write("empty.h5", b""),
        "empty_keras": write("empty.keras", b""),
        "truncated_h5": write("truncated.h5", h5[: len(h5) // 2]),
        "truncated_keras": write("truncated.keras", zipped[: len(zipped) // 2]),
        "truncated_legacy_h5": write("legacy_cut.h5", legacy[: len(legacy) * 9 // 10]),
        "damaged_keras": write("damaged.keras", bytes(damaged)),
        "no_model_config": folder / "plain.h5",
        "text_h5": write("notes.h5", b"not a model\n"),
        "text_keras": write("notes.keras", b"not a model\n"),
        "zip_without_config": folder / "other.keras",
        "h5_named_keras": write("swapped.keras", h5),
        "keras_named_h5": write("swapped.h5", zipped),
        "weights_only": good / "good.weights.h5",
        "weights_tf2_h5": folder / "tf2_weights.h5",
        "weights_keras3_h5": folder / "k3_weights.h5",
        "unknown_extension": write("model.pt", h5),
    }


BAD_CASES = [
    "missing",
    "empty_h5",
    "empty_keras",
    "truncated_h5",
    "truncated_keras",
    "truncated_legacy_h5",
    "damaged_keras",
    "no_model_config",
    "text_h5",
    "text_keras",
    "zip_without_config",
    "h5_named_keras",
    "keras_named_h5",
    "weights_only",
    "weights_tf2_h5",
    "weights_keras3_h5",
    "unknown_extension",
]


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_files_raise_model_file_error(case, bad_files):
    path = bad_files[case]
    with pytest.raises(ModelFileError, match=path.name.replace(".", r"\.")) as info:
        keras_gans.load_model(path)
    assert "Traceback" not in str(info.value)
    if case.startswith("weights"):
        assert "weights-only" in str(info.value)
    if "truncated" in case:
        assert "truncated" in str(info.value)


def _reference(x, gamma, beta, axis, epsilon, mode):
    axes = tuple(i for i in range(1, x.ndim) if axis is None or i != axis % x.ndim)
    mean, var = x.mean(axes, keepdims=True), x.var(axes, keepdims=True)
    normed = (x - mean) / (np.sqrt(var) + epsilon if mode == "std" else np.sqrt(var + epsilon))
    shape = [1] * x.ndim
    if axis is not None:
        shape[axis % x.ndim] = -1
    return normed * gamma.reshape(shape) + beta.reshape(shape)


@pytest.mark.parametrize("axis, mode", [(None, "std"), (-1, "variance"), (-1, "std")])
def test_instance_norm_matches_numpy(axis, mode):
    rng = np.random.default_rng(3)
    x = rng.normal(0.5, 0.2, (2, 5, 4, 3)).astype("float32")
    layer = InstanceNormalization(axis=axis, epsilon=0.01, epsilon_mode=mode)
    layer.build(x.shape)
    size = 1 if axis is None else 3
    gamma, beta = rng.normal(size=size).astype("float32"), rng.normal(size=size).astype("float32")
    layer.set_weights([gamma, beta])
    want = _reference(x.astype("float64"), gamma, beta, axis, 0.01, mode)
    np.testing.assert_allclose(np.asarray(layer(x)), want, atol=1e-5)
    clone = InstanceNormalization.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    clone.build(x.shape)
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(np.asarray(clone(x)), np.asarray(layer(x)), atol=1e-6)


def test_translate_other_tf_keras_2_configs():
    from keras_gans.saving import _translate

    policy = {"class_name": "Policy", "config": {"name": "mixed_float16"}}
    layer = _translate({"class_name": "Dense", "config": {"units": 2, "dtype": policy}})
    assert layer["config"]["dtype"] == "mixed_float16"
    assert keras.layers.Dense.from_config(layer["config"]).dtype_policy.name == "mixed_float16"
    norm = {"class_name": "InstanceNormalization", "config": {"axis": None}}
    assert _translate(norm)["class_name"] == "keras_gans>InstanceNormalization"
    assert _translate(norm, keep={"InstanceNormalization"}) == norm  # the caller's own class


def test_custom_objects_override_the_translation():
    class MyNorm(InstanceNormalization):
        pass

    path = os.path.join(LEGACY, "contrib_axis.h5")
    model = load_model(path, custom_objects={"InstanceNormalization": MyNorm})
    assert all(type(n) is MyNorm for n in _norms(model))
    assert _norms(model)[0].epsilon_mode == "std"  # contrib's meaning is MyNorm's default
