"""ProGAN: the registered layers (values, .h5 / .keras round trips), growth (phases, fade-in paths,
weights kept across a transition, Adam reset), the WGAN-GP loss, the EMA, resume mid-fade, the CLI.
The trainer contract (which weights each update changes, resume, NaN) is in tests/test_trainers.py.
"""

import json
import math
import os
import shutil

import keras
import numpy as np
import pytest
from keras import layers, ops
from PIL import Image

from keras_gans import progan
from keras_gans.errors import ConfigError
from keras_gans.layers import (
    EqualizedConv2D,
    EqualizedDense,
    FadeIn,
    MinibatchStdDev,
    PixelNormalization,
)
from keras_gans.progan import ProGAN, real_batch
from keras_gans.progan_networks import (
    Critic,
    build_discriminator,
    build_generator,
    channels,
    discriminator_bank,
    generator_bank,
    phases,
)
from tests.helpers import assert_config_roundtrip, assert_save_reload, snapshot

SIZE = 16
TINY = dict(latent_dim=8, fmap_base=16, fmap_max=8)


def _images(n=8, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (n, SIZE, SIZE, 3)).astype(np.float32)


def _gan(out, **kw):
    options = dict(images=_images(), images_per_stage=4, seed=0, checkpoint_every=0, **TINY)
    return ProGAN(output_dir=str(out), **{**options, **kw})


def _fade_layers(model):
    return [la for la in model.layers if isinstance(la, FadeIn)]


# --- layers -------------------------------------------------------------------------------------------
def test_layers_round_trip_through_config_h5_and_keras(tmp_path):
    x = keras.Input((8, 8, 3))
    a = EqualizedConv2D(4, 3, name="conv")(x)
    b = EqualizedConv2D(4, 1, gain=1.0, use_bias=False, name="conv1x1")(x)
    h = FadeIn(name="fade")([a, b])
    h = MinibatchStdDev(2, name="mbstd")(PixelNormalization(name="pixnorm")(h))
    out = EqualizedDense(1, gain=1.0, name="dense")(layers.Flatten()(h))
    model = keras.Model(x, out, name="all_layers")
    model.get_layer("fade").alpha.assign(0.3)
    for layer in model.layers[1:]:
        if layer.name != "flatten":
            assert_config_roundtrip(layer)
    inputs = np.random.default_rng(0).standard_normal((4, 8, 8, 3)).astype(np.float32)
    assert_save_reload(model, tmp_path, inputs)  # alpha is a weight: 0.3 comes back


def test_equalized_layers_keep_unit_weights_and_scale_at_run_time():
    rng = np.random.default_rng(0)
    conv = EqualizedConv2D(16, 3, name="c")
    x = rng.standard_normal((2, 6, 6, 16)).astype(np.float32)
    y = np.asarray(conv(x))
    kernel = conv.kernel.numpy()
    assert 0.9 < kernel.std() < 1.1  # stored as N(0, 1), not He-scaled
    scale = math.sqrt(2) / math.sqrt(3 * 3 * 16)
    expected = np.asarray(ops.conv(x, kernel * scale, padding="same"))
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)
    dense = EqualizedDense(5, gain=0.5, name="d")
    v = rng.standard_normal((3, 7)).astype(np.float32)
    out = np.asarray(dense(v))
    np.testing.assert_allclose(out, v @ dense.kernel.numpy() * 0.5 / math.sqrt(7), rtol=1e-5)


def test_pixel_norm_and_minibatch_stddev_values():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 3, 3, 5)).astype(np.float32) * 7.0
    y = np.asarray(PixelNormalization()(x))
    np.testing.assert_allclose((y**2).mean(axis=-1), 1.0, rtol=1e-4)
    out = np.asarray(MinibatchStdDev(group_size=2)(x))
    assert out.shape == (4, 3, 3, 6)
    np.testing.assert_array_equal(out[..., :5], x)
    # Groups of 2 over a batch of 4: image i is in group i % 2 (the official reshape).
    for m in range(2):
        group = x[[m, m + 2]]
        value = np.sqrt(group.var(axis=0) + 1e-8).mean()
        for i in (m, m + 2):
            np.testing.assert_allclose(out[i, ..., 5], value, rtol=1e-5)


# --- growth -------------------------------------------------------------------------------------------
def test_phases_and_the_paper_widths():
    assert phases(16) == [(4, False), (8, True), (8, False), (16, True), (16, False)]
    assert [channels(r) for r in (4, 8, 16, 32, 64, 128)] == [512, 512, 512, 512, 256, 128]
    with pytest.raises(ConfigError, match="--img-size"):
        phases(48)


def test_fade_at_alpha_one_is_the_new_path_and_at_zero_the_old():
    g_bank, d_bank = generator_bank(SIZE, **TINY), discriminator_bank(SIZE, 16, 8)
    z = np.random.default_rng(2).standard_normal((4, 8)).astype(np.float32)
    g_fade, g_new, g_old = (
        build_generator(g_bank, 8, True),
        build_generator(g_bank, 8),
        build_generator(g_bank, 4),
    )
    x = _images(4)[:, ::2, ::2]
    d_fade, d_new, d_old = (
        build_discriminator(d_bank, 8, True),
        build_discriminator(d_bank, 8),
        build_discriminator(d_bank, 4),
    )
    for model in (g_fade, d_fade):
        _fade_layers(model)[0].alpha.assign(1.0)
    np.testing.assert_allclose(g_fade(z), g_new(z), atol=1e-6)
    np.testing.assert_allclose(d_fade(x), d_new(x), atol=1e-5)
    for model in (g_fade, d_fade):
        _fade_layers(model)[0].alpha.assign(0.0)
    np.testing.assert_allclose(g_fade(z), np.asarray(g_old(z)).repeat(2, 1).repeat(2, 2), atol=1e-6)
    pooled = x.reshape(4, 4, 2, 4, 2, 3).mean(axis=(2, 4))
    np.testing.assert_allclose(d_fade(x), d_old(pooled), atol=1e-5)


def test_real_images_fade_between_the_two_resolutions():
    x = _images(2)
    np.testing.assert_allclose(real_batch(x, 8, True, 1.0), progan.downscale(x, 2), atol=1e-6)
    blurred = real_batch(x, 8, True, 0.0)
    assert np.allclose(blurred[:, ::2, ::2], blurred[:, 1::2, 1::2])  # 2x2 blocks
    assert not np.allclose(blurred, progan.downscale(x, 2))


def test_schedule_counts_images_and_alpha_rises_over_a_fade(tmp_path):
    gan = _gan(tmp_path, images_per_stage=6)
    got = [gan.schedule(shown, 2) for shown in range(0, 34, 2)]
    assert [p for p, _ in got] == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 4, 4]
    np.testing.assert_allclose([a for _, a in got[3:6]], [1 / 3, 2 / 3, 1.0])
    assert all(a == 1.0 for p, a in got if not gan.phases[p][1])


def test_a_transition_keeps_the_trained_weights_and_resets_adam(tmp_path):
    gan = _gan(tmp_path)
    for batch in (_images(2), _images(2, 1)):  # phase 0 (4x4) for 4 images
        gan.train_step(batch)
        gan.step += 1
    before = snapshot(*gan.models.values())
    old_names = {la.name for m in gan.models.values() for la in m.layers if la.weights}
    for opt in gan.optimizers():
        opt.learning_rate.assign(5e-4)
    gan.enter_phase(1)
    after = snapshot(*gan.models.values())
    assert set(before) < set(after)  # the 8x8 block and toRGB / fromRGB join
    for key, value in before.items():
        np.testing.assert_array_equal(after[key], value, err_msg=key)
    for opt in gan.optimizers():  # fresh moments, the same learning rate
        assert int(opt.iterations.numpy()) == 0 and float(
            opt.learning_rate.numpy()
        ) == pytest.approx(5e-4)
        assert all(not np.any(v.numpy()) for v in opt.variables if "momentum" in v.path)
    gan.train_step(_images(2, 2))  # the old layers keep training (paper Sec. 3)
    moved = snapshot(*gan.models.values())
    assert not np.array_equal(moved["g/g_4x4_conv/kernel"], before["g/g_4x4_conv/kernel"])
    gan.enter_phase(2)  # stable 8x8: the 4x4 toRGB / fromRGB and the fades are gone
    names = {la.name for m in gan.models.values() for la in m.layers}
    assert "g_4x4_torgb" in old_names and not {"g_4x4_torgb", "d_4x4_fromrgb"} & names
    assert not any(_fade_layers(m) for m in gan.models.values())


def test_the_ema_generator_follows_g(tmp_path):
    gan = _gan(tmp_path, ema_decay=0.5)
    caps = [gan.ema_decay_at(step) for step in (0, 4, 8, 10**6)]  # (1 + step) / (10 + step)
    np.testing.assert_allclose(caps, [0.1, 5 / 14, 0.5, 0.5])
    ema_before = [e.numpy() for e, _ in gan.average.pairs]
    gan.step = 100  # past the warm-up cap: beta itself
    gan.train_step(_images(2))
    for (ema, w), old in zip(gan.average.pairs, ema_before):
        np.testing.assert_allclose(ema.numpy(), 0.5 * old + 0.5 * w.numpy(), atol=1e-6)


# --- losses -------------------------------------------------------------------------------------------
def test_wgan_gp_and_lsgan_losses_follow_their_formulas():
    rng = np.random.default_rng(3)
    x = keras.Input((2, 2, 3))
    d = keras.Model(x, layers.Dense(1, use_bias=False)(layers.Flatten()(x)))
    w = d.weights[0].numpy().ravel()
    real, fake = (rng.standard_normal((4, 2, 2, 3)).astype(np.float32) for _ in range(2))
    mix = rng.uniform(size=(4, 1, 1, 1)).astype(np.float32)
    dr, df = real.reshape(4, -1) @ w, fake.reshape(4, -1) @ w
    critic = Critic(d)
    y_pred = critic([real, fake, mix])
    loss = float(critic.compute_loss([real, fake, mix], None, y_pred))
    # D is linear: the gradient at every mixed image is w, so GP = (||w|| - 1)^2.
    expected = df.mean() - dr.mean() + 10 * (np.linalg.norm(w) - 1) ** 2 + 0.001 * (dr**2).mean()
    assert loss == pytest.approx(expected, rel=1e-5)
    lsgan = Critic(d, loss="lsgan")
    got = float(lsgan.compute_loss([real, fake, mix], None, y_pred))
    assert got == pytest.approx(((dr - 1) ** 2).mean() + (df**2).mean(), rel=1e-5)


# --- resume, options, CLI -------------------------------------------------------------------------------
def test_resume_in_the_middle_of_a_fade_lands_on_the_same_alpha(tmp_path):
    """Checkpoint after step 4 (8x8 fade-in, alpha 1/3); a new object resumes there and trains
    steps 5 and 6 at alpha 2/3 and 1, ending where the uninterrupted run ends."""
    out = tmp_path / "run"
    first = _gan(out, images_per_stage=6, checkpoint_every=4)
    first.run(max_steps=4, batch_size=2, sample_interval=0)
    shutil.copytree(out, tmp_path / "copy")
    first.run(max_steps=6, batch_size=2, sample_interval=0)
    resumed = _gan(tmp_path / "copy", images_per_stage=6, checkpoint_every=4)
    assert resumed.phase == 0 and resumed.restore_checkpoint() and resumed.step == 4
    assert resumed.phase == 1 and int(resumed._shown.numpy()) == 8
    for model in resumed.models.values():
        assert _fade_layers(model)[0].alpha.numpy() == pytest.approx(1 / 3)
    resumed.run(max_steps=6, batch_size=2, sample_interval=0)
    expected, got = snapshot(*first.models.values()), snapshot(*resumed.models.values())
    for key, value in expected.items():
        np.testing.assert_allclose(got[key], value, atol=1e-6, err_msg=key)
    alphas = [row.split(",")[-1] for row in (tmp_path / "copy" / "losses.csv").read_text().split()]
    assert [float(a) for a in alphas[1:]] == pytest.approx([1, 1, 1, 1 / 3, 2 / 3, 1])
    assert sorted(os.listdir(tmp_path / "copy" / "stages")) == ["00_4x4.png", "01_8x8_fade.png"]


def test_bad_options_name_the_option(tmp_path):
    with pytest.raises(ConfigError, match="--img-size"):
        ProGAN(images=np.zeros((4, 12, 12, 3), np.float32), output_dir=str(tmp_path))
    with pytest.raises(ConfigError, match="--loss"):
        _gan(tmp_path, loss="hinge")
    with pytest.raises(ConfigError, match="--images-per-stage"):
        _gan(tmp_path, images_per_stage=0)
    gan = _gan(tmp_path / "ok")
    with pytest.raises(ConfigError, match="minibatch-stddev group 4"):
        gan.steps_per_epoch(6)


@pytest.mark.slow
def test_cli_grows_and_generates_images_for_the_harness(tmp_path, capsys):
    out, images = tmp_path / "run", tmp_path / "images"
    tiny = ["--img-size", "8", "--latent-dim", "8", "--fmap-base", "16", "--fmap-max", "8"]
    steps = ["--images-per-stage", "2", "--max-steps", "3", "--batch-size", "2"]
    quiet = ["--sample-interval", "0", "--checkpoint-every", "0", "--output-dir", str(out)]
    progan.main(["train", *tiny, *steps, *quiet])
    stages = sorted(os.listdir(out / "stages"))
    assert stages == ["00_4x4.png", "01_8x8_fade.png", "02_8x8.png"]
    model = out / "models" / "g_ema.h5"
    progan.main(["generate", "--model", str(model), "--n", "3", "--output", str(images)])
    files = sorted(images.glob("*.png"))
    assert len(files) == 3 and Image.open(files[0]).size == (8, 8)
    assert "wrote 3 image(s)" in capsys.readouterr().out


@pytest.mark.slow
def test_the_lesion_pipeline_trains_one_progan_per_class_for_the_harness(tmp_path):
    from keras_gans import classifier

    out = tmp_path / "pipeline"
    harness = ["--img-size", "32", "--test-per-class", "3", "--seeds", "0", "--epochs", "1"]
    gan = ["--generator", "progan", "--gan-size", "8", "--gan-steps", "2", "--gan-filters", "4"]
    classifier.main(
        ["pipeline", *harness, *gan, "--checkpoint-every", "0", "--output-dir", str(out)]
    )
    record = json.loads((out / "pipeline.json").read_text())
    assert record["gan"]["generator"] == "progan"
    assert {name: run["steps"] for name, run in record["gan"]["runs"].items()} == {
        "melanoma": 2,
        "nevus": 2,
    }
    for name in ("melanoma", "nevus"):
        generator = out / f"progan_{name}" / "models" / "g_ema.h5"
        assert f"{name}={generator}" in record["synthetic"].split(",")
    assert (out / "evaluation" / "report.md").exists()
