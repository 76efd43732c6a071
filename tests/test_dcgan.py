"""DCGAN: Radford's architecture, frozen BatchNorm (batch vs moving), options, lazy data, CLI."""

import csv
import json
import math
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from keras_gans import dcgan, load_model
from keras_gans.dcgan import DCGAN
from keras_gans.errors import ConfigError
from keras_gans.metrics import GenerativeEvaluator
from tests.helpers import assert_weights_unchanged, snapshot

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


def test_bad_options_are_refused_naming_the_option(tmp_path):
    for size in (0, 24, 48):
        with pytest.raises(ConfigError, match="power of two"):
            dcgan.build_generator(LATENT, size)
    bad = {
        "--img-size": {"images": None, "img_size": 24},
        "--class": {"class_name": "bcc"},
        "--frozen-bn": {"frozen_bn": "none"},
        "--channels": {"images": None, "channels": 2},
        "--latent-dim": {"latent_dim": 0},
        "images must be": {"images": _images(4)[0]},
    }
    for option, kwargs in bad.items():
        with pytest.raises(ConfigError, match=option):
            _make(tmp_path, **kwargs)
    assert not os.listdir(tmp_path)


def test_cli_prints_a_bad_option_as_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        dcgan.main(["--img-size", "24", "--output-dir", str(tmp_path)])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: --img-size must be a power of two >= 8, got 24"
    ]


def _isic_folder(root, counts=(("melanoma", 5), ("nevus", 3))):
    """One sub-folder per class of distinct random PNGs (a layout load_isic reads)."""
    rng = np.random.default_rng(0)
    for name, n in counts:
        os.makedirs(root / name)
        for i in range(n):
            pixels = rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


def test_models_build_without_data_and_isic_is_read_on_first_use(tmp_path, monkeypatch):
    folder = str(_isic_folder(tmp_path / "lesions"))
    calls = []
    load = dcgan.load_isic
    monkeypatch.setattr(dcgan, "load_isic", lambda *a, **k: calls.append(a) or load(*a, **k))
    monkeypatch.chdir(tmp_path)
    gan = DCGAN(data_dir=folder, class_name="melanoma", img_size=SIZE, channels=1, gf=4, df=4)
    assert not calls and gan.class_counts is None
    assert gan.generator.output_shape == (None, SIZE, SIZE, 1)
    assert gan.output_dir == str(tmp_path / "output" / "dcgan" / "lesions_melanoma")
    assert gan.images.shape == (5, SIZE, SIZE, 1)  # the grey mean of the RGB images
    assert gan.class_counts == {"melanoma": 5} and gan.steps_per_epoch(2) == 2
    gan.images  # noqa: B018  (a second use reads nothing)
    assert len(calls) == 1


def test_isic_classes_and_dedup_options_reach_the_loader(tmp_path, monkeypatch):
    """--classes all (the report's GANs: every diagnosis) and --dedup for gan, dcgan, biggan, cgan."""
    from keras_gans import biggan, cgan, gan

    folder = str(_isic_folder(tmp_path / "lesions", (("melanoma", 2), ("nevus", 2), ("bcc", 3))))
    monkeypatch.chdir(tmp_path)
    for module in (dcgan, biggan):
        monkeypatch.setattr(module.cli, "train", lambda trainer, args: trainer)
    tiny = ["--data-dir", folder, "--max-steps", "1", "--checkpoint-every", "0"]
    for main in (dcgan.main, gan.main):
        every = main([*tiny, "--img-size", "8", "--gf", "4", "--df", "4", "--classes", "all"])
        assert every.class_counts is None and len(every.images) == 7
        assert every.class_counts == {"melanoma": 2, "nevus": 2, "other": 3}
    default = dcgan.main([*tiny, "--img-size", "8", "--gf", "4", "--df", "4", "--dedup", "none"])
    assert len(default.images) == 4 and default.summary_info()["dedup"] == "none"
    big = biggan.main([*tiny, "--img-size", "16", "--ch", "2", "--classes", "all"])
    assert big.class_names == ("melanoma", "nevus", "other") and big.num_classes == 3
    assert np.bincount(big.labels).tolist() == [2, 2, 3]
    _, labels, names = cgan.load_data("isic", folder, 8, classes=("nevus", "other"), dedup="none")
    assert names == ["nevus", "other"] and np.bincount(labels).tolist() == [2, 3]
    with pytest.raises(SystemExit):
        dcgan.main([*tiny, "--classes", "moles"])


def test_one_optimizer_per_compiled_model_with_the_report_settings(gan):
    assert set(gan.models) == {"generator", "discriminator"}
    assert gan.compiled["combined"][1] == (gan.discriminator,)
    d_opt, c_opt = gan.discriminator.optimizer, gan.combined.optimizer
    assert d_opt is not c_opt
    for opt in (d_opt, c_opt):
        assert float(opt.learning_rate) == pytest.approx(2e-4)
        assert opt.beta_1 == pytest.approx(0.5)


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
    gan.update(gan.combined, _z(8), np.ones((8, 1), "float32"))
    assert_weights_unchanged(before, [gan.discriminator])  # moving statistics included


def test_frozen_bn_moving_is_keras_3_inference_mode(tmp_path):
    gan = _make(tmp_path, frozen_bn="moving")
    gan.discriminator.get_layer("discriminator_bn2").moving_mean.assign(np.full(8, 0.3))
    combined, batch_stats, moving = _d_outputs(gan, _z(8, seed=7))
    np.testing.assert_allclose(combined, moving, atol=1e-5)
    assert np.abs(combined - batch_stats).max() > 1e-4
    before = snapshot(gan.discriminator)
    gan.update(gan.combined, _z(8), np.ones((8, 1), "float32"))
    assert_weights_unchanged(before, [gan.discriminator])


def test_generate_images_is_seeded_and_reads_files(gan, tmp_path):
    """The harness's ``dcgan.generate_images``: N(0, 1) keyed by the seed, from a model or file."""
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


def test_single_channel_arrays_and_datasets_as_anogan_passes_them(tmp_path):
    x = _images(16, size=32, channels=1)
    gan = _make(tmp_path, images=x, img_size=64)
    assert gan.img_size == 32 and gan.channels == 1  # the array's shape wins
    assert gan.generator.output_shape == (None, 32, 32, 1)
    assert gan.discriminator.input_shape == (None, 32, 32, 1)
    assert gan.images.shape == (16, 32, 32, 1) and gan.data_root == "array"
    from_dataset = _make(tmp_path / "ds", images=tf.data.Dataset.from_tensor_slices(x))
    np.testing.assert_array_equal(from_dataset.images, x)


def test_help_shows_the_report_defaults_and_commands(capsys):
    with pytest.raises(SystemExit):
        dcgan.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for expected in (
        "--img-size IMG_SIZE pixels (default: 64)",
        "--gf GF G filters (default: 64)",
        "--batch-size BATCH_SIZE global batch (default: 32)",
        "--frozen-bn {batch,moving}",
        "30 epochs on the built-in sample, 25 otherwise",
        "train, generate (default: train)",
    ):
        assert expected in text, expected


@pytest.mark.slow
def test_sample_data_cli_run(tmp_path):
    out = str(tmp_path / "run")
    args = ["--img-size", "16", "--gf", "4", "--df", "4", "--latent-dim", str(LATENT)]
    args += ["--batch-size", "16", "--output-dir", out, "--seed", "0", "--sample-interval", "2"]
    gan = dcgan.main([*args, "--max-steps", "3", "--checkpoint-every", "2"])
    assert gan.step == 3
    with open(os.path.join(out, "losses.csv")) as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [1, 2, 3]
    assert all(math.isfinite(float(r[k])) for r in rows for k in ("D_loss", "D_acc", "G_loss"))
    for name in ("losses.png", "images/000002.png", "images/000003.png", "models/generator.h5"):
        assert os.path.exists(os.path.join(out, name)), name
    with open(os.path.join(out, "summary.json")) as f:
        summary = json.load(f)
    assert summary["class_counts"] == {"melanoma": 160, "nevus": 160} and summary["images"] == 320
    assert summary["frozen_bn"] == "batch" and summary["config"]["img_size"] == 16
    assert load_model(os.path.join(out, "models", "generator.h5")).output_shape == (None, 16, 16, 3)


def test_evaluate_scores_samples_against_the_training_images(tmp_path):
    inputs = keras.Input((SIZE, SIZE, 3))
    features = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(8, 3)(inputs))
    extractor = keras.Model(inputs, features)
    gan = _make(tmp_path, images=_images(16), eval_every=2, eval_extractor=extractor)
    gan.step = 2
    scores = gan.evaluate()
    assert set(scores) == {"fid", "kid"}
    # len(images) samples drawn with the step as seed, against the training images.
    fakes = dcgan.generate_images(gan.generator, 16, seed=2)
    direct = GenerativeEvaluator(gan.images, extractor=extractor)(fakes)
    assert scores["fid"] == pytest.approx(direct["fid"]) and scores["fid"] > 0
    assert scores["kid"] == pytest.approx(direct["kid"])
    assert gan.evaluate() == scores  # the same step draws the same samples
    assert _make(tmp_path / "none").evaluate() == {}  # no --eval-extractor, no metrics
    # What losses.csv receives: the FID keyed by the network that made it.
    logged = gan.maybe_evaluate()
    assert set(logged) == {f"fid_{extractor.name}", "kid"}
    assert logged[f"fid_{extractor.name}"] == pytest.approx(scores["fid"])
