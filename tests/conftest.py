"""Shared pytest setup: quiet TensorFlow, an isolated dataset cache, tiny CPU runs."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Datasets made on first use (the built-in samples) go to one temp cache per test session."""
    cache = tmp_path_factory.getbasetemp() / "keras_gans_home"
    monkeypatch.setenv("KERAS_GANS_HOME", str(cache))
    # Any download attempted by a test fails at once instead of reaching the network.
    monkeypatch.setenv("KERAS_GANS_BERKELEY_URL", "http://127.0.0.1:9/{name}.zip")
    yield


@pytest.fixture(autouse=True)
def _float32_policy():
    import keras

    keras.mixed_precision.set_global_policy("float32")
    yield
    keras.mixed_precision.set_global_policy("float32")
