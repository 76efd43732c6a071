"""The opt-in fused CycleGAN step equals the report's train_on_batch step (tiny 32x32 models)."""

import numpy as np
import pytest

from tests.helpers import assert_weights_changed, snapshot

MODELS = ("g_AB", "g_BA", "d_A", "d_B")


def _data_dir(root):
    from PIL import Image

    for split in ("trainA", "trainB", "testA", "testB"):
        (root / split).mkdir(parents=True)
        Image.new("RGB", (32, 32), (90, 120, 150)).save(root / split / "0.png")
    return str(root)


def _gan(tmp_path, name, **kwargs):
    from keras_gans.cyclegan import CycleGAN

    return CycleGAN(
        data_dir=str(tmp_path / "data"),
        img_rows=32,
        img_cols=32,
        gf=4,
        df=4,
        output_dir=str(tmp_path / name),
        seed=0,
        checkpoint_every=0,
        **kwargs,
    )


def _batch(seed):
    rng = np.random.default_rng(seed)
    imgs_A = rng.uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32)
    imgs_B = rng.uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32)
    valid = np.ones((2, 2, 2, 1), np.float32)
    return imgs_A, imgs_B, valid, np.zeros_like(valid)


def _models(gan):
    return [getattr(gan, name) for name in MODELS]


def _variables(gan):
    """Every weight of the four networks and every variable of the three optimizers."""
    optimizers = (gan.d_A.optimizer, gan.d_B.optimizer, gan.combined.optimizer)
    weights = [w for m in _models(gan) for w in m.weights]
    return weights + [v for opt in optimizers for v in opt.variables]


def _save(variables):
    return [np.array(v.numpy()) for v in variables]


def _load(variables, values):
    for v, value in zip(variables, values):
        v.assign(value)


def _assert_close(got, expected, variables):
    for g, e, v in zip(got, expected, variables):
        np.testing.assert_allclose(g, e, atol=1e-5, err_msg=v.path)


@pytest.mark.slow
def test_fused_step_equals_train_on_batch_step(tmp_path):
    """From the same weights, optimizer states and data, both steps give the same state.

    One trainer and state restores instead of two trainers: each step kind is traced once.
    """
    from keras_gans.fused import FusedCycleGANStep

    _data_dir(tmp_path / "data")
    gan = _gan(tmp_path, "run")
    # Built first, the fused step builds the optimizers; train_on_batch must then use them as is.
    step = FusedCycleGANStep(gan)
    variables = _variables(gan)
    start, before = _save(variables), snapshot(*_models(gan))

    got = step(*_batch(1))
    after_fused = _save(variables)
    assert_weights_changed(before, _models(gan))  # D_X, D_Y, G and F all trained
    _load(variables, start)
    expected = gan.report_step(*_batch(1))
    after_reference = _save(variables)
    assert set(got) == set(expected)
    for key in expected:
        assert got[key] == pytest.approx(expected[key], rel=1e-4, abs=1e-5), key
    _assert_close(after_fused, after_reference, variables)  # weights, Adam moments, iterations

    # A second step from there, where step 1's Adam moments matter: both kinds agree again.
    gan.report_step(*_batch(2))
    expected = _save(variables)
    _load(variables, after_reference)
    step(*_batch(2))
    _assert_close(_save(variables), expected, variables)


def test_fused_step_refuses_accumulation(tmp_path):
    from keras_gans.fused import FusedCycleGANStep

    _data_dir(tmp_path / "data")
    with pytest.raises(ValueError, match="accumulate"):
        FusedCycleGANStep(_gan(tmp_path, "acc", accumulate=2))
