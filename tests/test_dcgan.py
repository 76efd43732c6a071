"""DCGAN: Radford's architecture, Keras 3 training correctness, frozen BatchNorm, reuse, CLI."""

import csv
import math
import os

import numpy as np
import pytest

from keras_gans import dcgan, load_model
from keras_gans.dcgan import DCGAN
from tests.helpers import (
    assert_save_reload,
    assert_weights_changed,
    assert_weights_unchanged,
    snapshot,
)

SIZE = 16
LATENT = 8


def _images(n=24, size=SIZE, channels=3, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (n, size, size, channels)).astype("float32")


def _z(n=8, seed=1):
    return np.random.default_rng(seed).standard_normal((n, LATENT)).astype("float32")


def _make(tmp_path, **kwargs):
    kwargs = {"images": _images(), "latent_dim": LATENT, "gf": 4, "df": 4, "seed": 0, **kwargs}
    return DCGAN(output_dir=str(tmp_path), checkpoint_every=0, **kwargs)


@pytest.fixture(scope="module")
def gan(tmp_path_factory):
    return _make(tmp_path_factory.mktemp("dcgan"))


def test_report_architecture_at_64():
    g = dcgan.build_generator()
    d = dcgan.build_discriminator()
    assert g.input_shape == (None, 100) and g.output_shape == (None, 64, 64, 3)
    assert d.input_shape == (None, 64, 64, 3) and d.output_shape == (None, 1)
    # 4x4x512 -> 8x8x256 -> 16x16x128 -> 32x32x64 -> 64x64x3 (Radford et al. Fig. 1).
    assert g.get_layer("generator_reshape").output.shape == (None, 4, 4, 512)
    assert g.get_layer("generator_up3_deconv").output.shape == (None, 32, 32, 64)
    assert g.get_layer("generator_out").activation.__name__ == "tanh"
    # D: 64 -> 32x32x64 (no BN) -> 16x16x128 -> 8x8x256 -> 4x4x512 -> sigmoid.
    assert d.get_layer("discriminator_lrelu4").output.shape == (None, 4, 4, 512)
    names = [layer.name for layer in d.layers]
    assert "discriminator_bn1" not in names and "discriminator_bn2" in names
    assert d.get_layer("discriminator_lrelu1").negative_slope == pytest.approx(0.2)
    assert d.get_layer("discriminator_validity").activation.__name__ == "sigmoid"
    assert g.get_layer("generator_up1_bn").momentum == pytest.approx(dcgan.BN_MOMENTUM)


@pytest.mark.parametrize("size, channels", [(32, 1), (64, 3), (128, 1), (128, 3)])
def test_builders_cover_32_64_128_and_1_or_3_channels(size, channels):
    g = dcgan.build_generator(LATENT, size, channels, base_filters=2)
    d = dcgan.build_discriminator(size, channels, base_filters=2)
    assert g.output_shape == (None, size, size, channels)
    assert d(np.asarray(g(_z(2)))).shape == (2, 1)
    n = int(math.log2(size)) - 2
    assert d.get_layer(f"discriminator_conv{n}").output.shape[1:3] == (4, 4)


def test_bad_sizes_are_refused(tmp_path):
    for size in (0, 24, 48):
        with pytest.raises(ValueError, match="power of two"):
            dcgan.build_generator(LATENT, size)
    with pytest.raises(ValueError, match="power of two"):
        DCGAN(images=_images(4, size=24), output_dir=str(tmp_path))
    with pytest.raises(ValueError, match="class_name"):
        DCGAN(images=_images(4), class_name="bcc", output_dir=str(tmp_path))
    with pytest.raises(ValueError, match="frozen_bn"):
        DCGAN(images=_images(4), frozen_bn="none", output_dir=str(tmp_path))


def test_one_optimizer_per_compiled_model_with_the_report_settings(gan):
    d_opt, c_opt = gan.discriminator.optimizer, gan.combined.optimizer
    assert d_opt is not c_opt
    for opt in (d_opt, c_opt):
        assert float(opt.learning_rate) == pytest.approx(2e-4)
        assert opt.beta_1 == pytest.approx(0.5)


def test_d_step_changes_d_only(gan):
    before = snapshot(gan.generator, gan.discriminator)
    gan.set_trainable(gan.discriminator, True)
    gan.train_on_batch(gan.discriminator, _images(8, seed=3), np.ones((8, 1), "float32"))
    assert_weights_changed(before, [gan.discriminator])
    assert_weights_unchanged(before, [gan.generator])


def test_g_step_changes_g_only_and_keeps_d_moving_statistics(gan):
    before = snapshot(gan.generator, gan.discriminator)  # all weights, moving statistics too
    gan.set_trainable(gan.discriminator, False)
    gan.train_on_batch(gan.combined, _z(8), np.ones((8, 1), "float32"))
    assert_weights_changed(before, [gan.generator])
    assert_weights_unchanged(before, [gan.discriminator])
    assert not gan.combined.trainable_weights or all(
        not w.path.startswith("discriminator") for w in gan.combined.trainable_weights
    )


def test_full_step_moves_both_and_d_step_order_holds(gan):
    before = snapshot(gan.generator, gan.discriminator)
    logs = gan.train_step(
        _images(8, seed=4), np.ones((8, 1), "float32"), np.zeros((8, 1), "float32")
    )
    assert set(logs) == {"D_loss", "D_acc", "G_loss"}
    assert all(np.isfinite(v) for v in logs.values())
    assert_weights_changed(before, [gan.generator, gan.discriminator])


def _d_outputs(gan, z):
    """``(combined(z), D with batch statistics on G(z), D with moving statistics on G(z))``."""
    fakes = np.asarray(gan.generator(z, training=True))
    # A trainable copy: its BN in training mode uses (and updates) batch statistics; D's stay put.
    twin = gan.discriminator_builder(SIZE, 3, gan.df)
    twin.set_weights(gan.discriminator.get_weights())
    return (
        np.asarray(gan.combined(z, training=True)),
        np.asarray(twin(fakes, training=True)),
        np.asarray(gan.discriminator(fakes, training=False)),
    )


def test_frozen_d_uses_batch_statistics_in_combined(gan):
    """The chosen behaviour (Keras 2's): inside combined, D's BN normalises by the fake batch."""
    gan.set_trainable(gan.discriminator, False)
    before = snapshot(gan.discriminator)
    combined, batch_stats, moving = _d_outputs(gan, _z(8, seed=5))
    np.testing.assert_allclose(combined, batch_stats, atol=1e-5)
    assert np.abs(combined - moving).max() > 1e-4  # the two behaviours really differ here
    assert_weights_unchanged(before, [gan.discriminator])


def test_frozen_bn_moving_is_keras_3_inference_mode(tmp_path):
    gan = _make(tmp_path, frozen_bn="moving")
    gan.discriminator.get_layer("discriminator_bn2").moving_mean.assign(np.full(8, 0.3))
    combined, batch_stats, moving = _d_outputs(gan, _z(8, seed=7))
    np.testing.assert_allclose(combined, moving, atol=1e-5)
    assert np.abs(combined - batch_stats).max() > 1e-4
    before = snapshot(gan.discriminator)
    gan.train_on_batch(gan.combined, _z(8), np.ones((8, 1), "float32"))
    assert_weights_unchanged(before, [gan.discriminator])


def test_h5_and_keras_round_trip(gan, tmp_path):
    assert_save_reload(gan.generator, tmp_path, _z(4))
    assert_save_reload(gan.discriminator, tmp_path, _images(4))


def test_generate_images_is_seeded_and_reads_files(gan, tmp_path):
    path = os.path.join(tmp_path, "g.h5")
    gan.generator.save(path)
    a = dcgan.generate_images(gan.generator, 5, seed=3)
    b = dcgan.generate_images(path, 5, seed=3, batch_size=2)  # latent_dim read from the file
    assert a.shape == (5, SIZE, SIZE, 3) and a.dtype == np.float32
    assert -1 <= a.min() and a.max() <= 1
    np.testing.assert_allclose(a, b, atol=1e-5)
    assert not np.allclose(a, dcgan.generate_images(gan.generator, 5, seed=4))
    assert dcgan.generate_images(gan.generator, 0).shape == (0, SIZE, SIZE, 3)


def test_generate_cli_writes_pngs(gan, tmp_path):
    path = os.path.join(tmp_path, "g.keras")
    gan.generator.save(path)
    out = os.path.join(tmp_path, "out")
    paths = dcgan.main(
        ["generate", "--model", path, "--n", "3", "--output", out, "--prefix", "mel_"]
    )
    assert sorted(os.listdir(out)) == ["mel_00000.png", "mel_00001.png", "mel_00002.png"]
    assert len(paths) == 3


def test_single_channel_arrays_as_anogan_passes_them(tmp_path):
    gan = _make(tmp_path, images=_images(16, size=32, channels=1), img_size=64)
    assert gan.img_size == 32 and gan.channels == 1  # the array's shape wins
    assert gan.generator.output_shape == (None, 32, 32, 1)
    assert gan.discriminator.input_shape == (None, 32, 32, 1)
    assert gan.images.shape == (16, 32, 32, 1)


@pytest.mark.slow
def test_sample_data_cli_run_resume_and_one_class(tmp_path):
    out = str(tmp_path / "run")
    args = ["--img-size", "16", "--gf", "4", "--df", "4", "--latent-dim", str(LATENT)]
    args += ["--batch-size", "16", "--output-dir", out, "--seed", "0", "--sample-interval", "2"]
    gan = dcgan.main(["train", *args, "--max-steps", "2", "--checkpoint-every", "1"])
    assert gan.class_counts == {"melanoma": 160, "nevus": 160}
    gan = dcgan.main([*args, "--max-steps", "4"])  # resumes at step 2
    assert gan.step == 4
    with open(os.path.join(out, "losses.csv")) as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]
    assert all(math.isfinite(float(r[k])) for r in rows for k in ("D_loss", "D_acc", "G_loss"))
    for name in ("losses.png", "summary.json", "images/0_2.png", "models/generator.h5"):
        assert os.path.exists(os.path.join(out, name)), name
    assert load_model(os.path.join(out, "models", "generator.h5")).output_shape == (None, 16, 16, 3)
    one = DCGAN(class_name="melanoma", img_size=16, gf=4, df=4, output_dir=str(tmp_path / "mel"))
    assert one.class_counts == {"melanoma": 160} and len(one.images) == 160


def test_eval_every_writes_fid_and_kid_to_the_loss_log(tmp_path):
    import keras

    inputs = keras.Input((SIZE, SIZE, 3))
    features = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(8, 3)(inputs))
    extractor = keras.Model(inputs, features)
    gan = _make(
        tmp_path,
        images=_images(16),
        img_size=SIZE,
        gf=4,
        df=4,
        latent_dim=8,
        seed=0,
        eval_every=2,
        eval_extractor=extractor,
    )
    gan.train(epochs=1, batch_size=8, sample_interval=1000)
    with open(tmp_path / "losses.csv") as f:
        rows = list(csv.DictReader(f))
    assert rows[1]["fid"] and float(rows[1]["fid"]) >= 0 and rows[1]["kid"]
    assert not rows[0].get("fid")
