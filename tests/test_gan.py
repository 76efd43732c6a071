"""Basic conv GAN (32x32): Keras-GAN's architecture on the DCGAN trainer, its defaults, its CLI.

The trainer itself (updates, frozen BatchNorm, data, generate) is tested in tests/test_dcgan.py and
the shared contract in tests/test_trainers.py; here only what the GAN's networks change.
"""

import csv
import math
import os

import numpy as np
import pytest

from keras_gans import dcgan, gan
from keras_gans.errors import ConfigError
from keras_gans.gan import GAN

SIZE = 16
LATENT = 8


def _images(n=16, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (n, SIZE, SIZE, 3)).astype("float32")


def test_report_architecture_at_32():
    g = gan.build_generator()
    d = gan.build_discriminator()
    assert g.input_shape == (None, 100) and g.output_shape == (None, 32, 32, 3)
    assert d.input_shape == (None, 32, 32, 3) and d.output_shape == (None, 1)
    # Keras-GAN: Dense(128 * 8 * 8) -> 16x16x128 -> 32x32x64 -> 3 channels, tanh.
    assert g.get_layer("generator_reshape").output.shape == (None, 8, 8, 128)
    assert g.get_layer("generator_conv1").output.shape == (None, 16, 16, 128)
    assert g.get_layer("generator_conv2").output.shape == (None, 32, 32, 64)
    assert g.get_layer("generator_bn1").momentum == pytest.approx(0.8)
    assert g.get_layer("generator_out").activation.__name__ == "tanh"
    # D: 32 -> 16x16x32 -> 8x8x64 -> 4x4x128 -> 4x4x256 (stride 1), Dropout 0.25 after each.
    assert [d.get_layer(f"discriminator_dropout{i}").output.shape[1:] for i in (1, 2, 3, 4)] == [
        (16, 16, 32),
        (8, 8, 64),
        (4, 4, 128),
        (4, 4, 256),
    ]
    assert d.get_layer("discriminator_dropout1").rate == pytest.approx(0.25)
    assert d.get_layer("discriminator_bn2").momentum == pytest.approx(0.8)
    assert "discriminator_bn1" not in [layer.name for layer in d.layers]
    assert d.get_layer("discriminator_validity").activation.__name__ == "sigmoid"


def test_sizes_are_multiples_of_8_not_powers_of_two(tmp_path):
    assert gan.build_generator(LATENT, 24, 1, base_filters=2).output_shape == (None, 24, 24, 1)
    assert gan.build_discriminator(24, 1, base_filters=2).output_shape == (None, 1)
    with pytest.raises(ConfigError, match="multiple of 8"):
        gan.build_discriminator(img_size=20)
    with pytest.raises(ConfigError, match="--img-size must be a multiple of 8"):
        GAN(images=None, img_size=20, output_dir=str(tmp_path))
    assert not os.listdir(tmp_path)


def test_the_dcgan_trainer_with_the_gan_networks_and_defaults(tmp_path):
    trainer = GAN(
        images=_images(),
        latent_dim=LATENT,
        gf=4,
        df=4,
        output_dir=str(tmp_path),
        checkpoint_every=0,
    )
    assert isinstance(trainer, dcgan.DCGAN) and trainer.name == "gan"
    d, g = trainer.discriminator, trainer.generator
    # gf = df = 4 at 16 px: G from 4x4x8; D 8x8x4 -> 4x4x8 -> 2x2x16 -> 2x2x32 (stride 1).
    assert g.get_layer("generator_reshape").output.shape == (None, 4, 4, 8)
    assert d.get_layer("discriminator_dropout4").output.shape == (None, 2, 2, 32)
    assert trainer.combined.output_shape == (None, 1)
    assert trainer.config()["architecture"] == "gan"  # a DCGAN checkpoint folder is refused
    defaults = GAN(output_dir=str(tmp_path / "defaults"), checkpoint_every=0)
    assert (defaults.img_size, defaults.gf, defaults.df) == (32, 64, 32)
    assert defaults.default_batch_size == 32 and defaults.default_epochs == gan.EPOCHS


def test_help_shows_the_gan_defaults(capsys):
    with pytest.raises(SystemExit):
        gan.main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for expected in (
        "usage: python -m keras_gans.gan train",
        "--img-size IMG_SIZE pixels (default: 32)",
        "--df DF D filters (default: 32)",
        "30 epochs on the built-in sample, 40 otherwise",
        "train, generate (default: train)",
    ):
        assert expected in text, expected


@pytest.mark.slow
def test_sample_data_run_and_generate_cli(tmp_path):
    out = str(tmp_path / "run")
    args = ["--img-size", "16", "--gf", "4", "--df", "4", "--latent-dim", str(LATENT)]
    args += ["--batch-size", "16", "--output-dir", out, "--seed", "0", "--max-steps", "3"]
    trainer = gan.main([*args, "--class", "nevus", "--checkpoint-every", "0"])
    assert isinstance(trainer, GAN) and trainer.class_counts == {"nevus": 160}
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
