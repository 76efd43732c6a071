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


@pytest.mark.slow
def test_fused_step_equals_train_on_batch_step(tmp_path):
    from keras_gans.fused import FusedCycleGANStep

    _data_dir(tmp_path / "data")
    reference, fused = _gan(tmp_path, "reference"), _gan(tmp_path, "fused")
    start = snapshot(*_models(fused))
    for a, b in zip(_models(reference), _models(fused)):
        for wa, wb in zip(a.weights, b.weights):
            np.testing.assert_array_equal(wa.numpy(), wb.numpy())  # the same seed, the same start
    step = FusedCycleGANStep(fused)

    expected = reference.train_step(*_batch(1))
    got = step(*_batch(1))
    assert set(got) == set(expected)
    for key in expected:
        assert got[key] == pytest.approx(expected[key], rel=1e-4, abs=1e-5), key
    assert_weights_changed(start, _models(fused))  # D_X, D_Y, G and F all trained
    for a, b in zip(_models(reference), _models(fused)):
        for wa, wb in zip(a.weights, b.weights):
            np.testing.assert_allclose(wb.numpy(), wa.numpy(), atol=1e-5, err_msg=wa.path)

    # The fused step uses the trainer's own optimizers: a train_on_batch step after it continues
    # from the same Adam state, as if both steps had been train_on_batch steps.
    reference.train_step(*_batch(2))
    fused.train_step(*_batch(2))
    for a, b in zip(_models(reference), _models(fused)):
        for wa, wb in zip(a.weights, b.weights):
            np.testing.assert_allclose(wb.numpy(), wa.numpy(), atol=1e-5, err_msg=wa.path)
    for opt_a, opt_b in (
        (reference.d_A.optimizer, fused.d_A.optimizer),
        (reference.d_B.optimizer, fused.d_B.optimizer),
        (reference.combined.optimizer, fused.combined.optimizer),
    ):
        assert int(opt_a.iterations.numpy()) == int(opt_b.iterations.numpy())


def test_fused_step_refuses_accumulation(tmp_path):
    from keras_gans.fused import FusedCycleGANStep

    _data_dir(tmp_path / "data")
    with pytest.raises(ValueError, match="accumulate"):
        FusedCycleGANStep(_gan(tmp_path, "acc", accumulate=2))
