"""Basic conv GAN (32x32): Keras-GAN's architecture, Keras 3 training correctness, reuse, CLI."""

import csv
import math
import os

import numpy as np
import pytest

from keras_gans import dcgan, gan
from keras_gans.gan import GAN
from tests.helpers import (
    assert_save_reload,
    assert_weights_changed,
    assert_weights_unchanged,
    snapshot,
)

SIZE = 16
LATENT = 8


def _images(n=16, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (n, SIZE, SIZE, 3)).astype("float32")


def _z(n=8, seed=1):
    return np.random.default_rng(seed).standard_normal((n, LATENT)).astype("float32")


@pytest.fixture(scope="module")
def trainer(tmp_path_factory):
    out = tmp_path_factory.mktemp("gan")
    return GAN(
        images=_images(),
        latent_dim=LATENT,
        gf=4,
        df=4,
        seed=0,
        output_dir=str(out),
        checkpoint_every=0,
    )


def test_report_architecture_at_32():
    g = gan.build_generator()
    d = gan.build_discriminator()
    assert g.input_shape == (None, 100) and g.output_shape == (None, 32, 32, 3)
    assert d.input_shape == (None, 32, 32, 3) and d.output_shape == (None, 1)
    # Keras-GAN: Dense(128 * 8 * 8) -> 16x16x128 -> 32x32x64 -> 3 channels, tanh.
    assert g.get_layer("generator_reshape").output.shape == (None, 8, 8, 128)
    assert g.get_layer("generator_conv2").output.shape == (None, 32, 32, 64)
    assert g.get_layer("generator_out").activation.__name__ == "tanh"
    # D: 32 -> 16x16x32 -> 8x8x64 -> 4x4x128 -> 4x4x256 (stride 1), Dropout 0.25 after each.
    assert [d.get_layer(f"discriminator_conv{i}").output.shape[1:] for i in (1, 2, 3, 4)] == [
        (16, 16, 32),
        (8, 8, 64),
        (4, 4, 128),
        (4, 4, 256),
    ]
    assert d.get_layer("discriminator_dropout1").rate == pytest.approx(0.25)
    assert d.get_layer("discriminator_bn2").momentum == pytest.approx(0.8)
    names = [layer.name for layer in d.layers]
    assert "discriminator_bn1" not in names
    with pytest.raises(ValueError, match="multiple of 8"):
        gan.build_discriminator(img_size=20)


def test_shares_the_dcgan_trainer(trainer):
    assert isinstance(trainer, dcgan.DCGAN) and trainer.name == "gan"
    assert trainer.img_size == SIZE and trainer.generator.output_shape == (None, SIZE, SIZE, 3)
    assert trainer.discriminator.get_layer("discriminator_dropout4") is not None
    assert trainer.discriminator.optimizer is not trainer.combined.optimizer


def test_d_step_changes_d_only(trainer):
    before = snapshot(trainer.generator, trainer.discriminator)
    trainer.set_trainable(trainer.discriminator, True)
    trainer.train_on_batch(trainer.discriminator, _images(8, seed=2), np.zeros((8, 1), "float32"))
    assert_weights_changed(before, [trainer.discriminator])
    assert_weights_unchanged(before, [trainer.generator])


def test_g_step_changes_g_only_and_keeps_d_moving_statistics(trainer):
    before = snapshot(trainer.generator, trainer.discriminator)
    trainer.set_trainable(trainer.discriminator, False)
    trainer.train_on_batch(trainer.combined, _z(8), np.ones((8, 1), "float32"))
    assert_weights_changed(before, [trainer.generator])
    assert_weights_unchanged(before, [trainer.discriminator])


def test_h5_and_keras_round_trip(trainer, tmp_path):
    assert_save_reload(trainer.generator, tmp_path, _z(4))
    assert_save_reload(trainer.discriminator, tmp_path, _images(4))


@pytest.mark.slow
def test_sample_data_run_and_generate_cli(tmp_path):
    out = str(tmp_path / "run")
    args = ["--img-size", "16", "--gf", "4", "--df", "4", "--latent-dim", str(LATENT)]
    args += ["--batch-size", "16", "--output-dir", out, "--seed", "0", "--max-steps", "3"]
    trainer = gan.main([*args, "--class", "nevus", "--checkpoint-every", "0"])
    assert trainer.class_counts == {"nevus": 160}
    with open(os.path.join(out, "losses.csv")) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3
    assert all(math.isfinite(float(r[k])) for r in rows for k in ("D_loss", "D_acc", "G_loss"))
    pngs = str(tmp_path / "pngs")
    gan.main(
        ["generate", "--model", os.path.join(out, "models", "generator.h5"), "--n", "2"]
        + ["--output", pngs]
    )
    assert sorted(os.listdir(pngs)) == ["00000.png", "00001.png"]
