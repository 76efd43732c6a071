"""Shared pytest setup: quiet TensorFlow, an isolated dataset cache, tiny CPU runs."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Tiny models for a few steps: tracing a CycleGAN's update costs about 20 s, an eager step under 2.
# Inherited by subprocesses and notebook kernels. The trainer contract, the strategy tests and the
# tests of many steps pass run_eagerly=False (or set the variable to 0): the traced path, the one
# real runs take, keeps its own tests.
os.environ.setdefault("KERAS_GANS_RUN_EAGERLY", "1")

import pytest  # noqa: E402

# The longest files first: `--dist loadfile` hands out whole files in collection order, and a long
# file handed out last keeps one worker busy while the other idles.
LONGEST_FIRST = (
    "test_trainers_distributed.py",
    "test_notebooks.py",
    "test_trainers.py",
    "test_benchmarks_smoke.py",
    "test_cyclegan.py",
    "test_reliability.py",
    "test_distribute.py",
)


def pytest_configure(config):
    # pytest-xdist otherwise hands out the files with the most tests first, which puts the two
    # long strategy subprocesses of tests/test_trainers_distributed.py last, alone on one worker.
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


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
