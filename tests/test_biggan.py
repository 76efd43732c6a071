"""BigGAN: architecture, custom layers, which weights each step changes, EMA, saving, sampling, CLI."""

import csv
import math
import os

import keras
import numpy as np
import pytest
from PIL import Image

from data_loaders.isic import make_lesion_sample
from keras_gans import biggan, load_model
from keras_gans.biggan import BigGAN, build_discriminator, build_generator, sample_latent
from keras_gans.layers import (
    ConditionalBatchNormalization,
    LatentSplit,
    SelfAttention,
    SpectralNorm,
)
from tests.helpers import (
    assert_config_roundtrip,
    assert_save_reload,
    assert_weights_changed,
    assert_weights_unchanged,
    changed,
    snapshot,
)

SIZE = 32
CH = 4
ATTN = 16  # attention at 16x16, so the tiny models have it too


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (8, SIZE, SIZE, 3)).astype("float32")
    return images, np.array([0, 1] * 4, np.int32)


@pytest.fixture(scope="module")
def gan(data, tmp_path_factory):
    images, labels = data
    return BigGAN(
        images,
        labels,
        img_size=SIZE,
        ch=CH,
        attention_res=ATTN,
        ema_start=0,
        ema_decay=0.5,
        output_dir=str(tmp_path_factory.mktemp("biggan")),
        seed=0,
        checkpoint_every=0,
    )


def _latent(n=4, seed=1, dim=120):
    return sample_latent(np.random.default_rng(seed), n, dim)


def _values(model, kind):
    return [w.numpy().copy() for w in model.weights if w.path.endswith(kind)]


# --- architecture -------------------------------------------------------------------------------------
def test_architecture_at_128():
    g = build_generator(ch=4)
    d = build_discriminator(ch=4)
    assert g.output_shape == (None, 128, 128, 3) and d.output_shape == (None, 1)
    # Hierarchical z: 6 chunks of 20 (input layer + 5 blocks), each block's condition is 128 + 20.
    assert [t.shape[-1] for t in g.get_layer("g_z_split").output] == [20] * 6
    assert g.get_layer("g_block1_cbn1").input[1].shape[-1] == 148
    assert len([la for la in g.layers if isinstance(la, ConditionalBatchNormalization)]) == 10
    # Block widths (BigGAN-PyTorch 128 px): G 16,8,4,2,1 x ch; D 1,2,4,8,16,16 x ch.
    assert g.get_layer("g_block5_add").output.shape[-1] == 4
    assert d.get_layer("d_block6_add").output.shape == (None, 4, 4, 64)
    # Self-attention at 64x64 in both networks.
    assert g.get_layer("g_attention").input.shape == (None, 64, 64, 8)
    assert d.get_layer("d_attention").input.shape == (None, 64, 64, 4)
    # Spectral norm on every convolution and linear map of G and D and on D's embedding.
    for model in (g, d):
        for layer in model.layers:
            assert not isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)), layer.name
    assert isinstance(d.get_layer("d_embed"), SpectralNorm)
    assert isinstance(g.get_layer("g_shared"), keras.layers.Embedding)  # shared, no SN (BGP)


def test_trainer_settings(gan):
    d_opt, g_opt = gan.d.optimizer, gan.combined.optimizer
    assert d_opt is not g_opt
    assert float(d_opt.learning_rate) == pytest.approx(4e-4)
    assert float(g_opt.learning_rate) == pytest.approx(1e-4)
    for opt in (d_opt, g_opt):
        assert opt.beta_1 == 0.0 and opt.beta_2 == 0.999
    assert biggan.EMA_DECAY == 0.9999 and biggan.LATENT_DIM == 120 and biggan.BATCH_SIZE == 16


def test_shapes(gan):
    z, y = _latent(), np.array([0, 1, 0, 1], np.int32)
    img = np.asarray(gan.g([z, y], training=False))
    assert img.shape == (4, SIZE, SIZE, 3) and np.abs(img).max() <= 1.0
    assert gan.d([img, y]).shape == (4, 1)
    assert gan.combined([z, y]).shape == (4, 1)
    assert gan.g.get_layer("g_attention").input.shape == (None, ATTN, ATTN, 8 * CH)


def test_bad_arguments(data, tmp_path):
    images, labels = data
    with pytest.raises(ValueError, match="img_size"):
        BigGAN(images, labels, img_size=48, output_dir=str(tmp_path))
    with pytest.raises(ValueError, match="class_names"):
        BigGAN(images, labels, img_size=SIZE, num_classes=3, output_dir=str(tmp_path))
    with pytest.raises(ValueError, match="images must be"):
        BigGAN(images[:, :16], labels, img_size=SIZE, output_dir=str(tmp_path))
    with pytest.raises(ValueError, match="chunks"):
        build_generator(img_size=SIZE, ch=CH, latent_dim=121)


# --- which weights each step changes --------------------------------------------------------------------
def test_d_step_changes_d_only(gan, data):
    images, labels = data
    before = snapshot(gan.g, gan.g_ema, gan.d)
    for _ in range(2):  # the attention convs get gradients once gamma has left 0
        logs = gan.d_step(images[:4], labels[:4])
        gan.step += 1
    assert all(math.isfinite(v) for v in logs.values())
    assert logs["D_loss"] == pytest.approx(logs["D_real"] + logs["D_fake"], rel=1e-5)
    assert_weights_changed(before, [gan.d])
    # G is not trained in the D step: no trainable weight of G moves ...
    assert changed(before, [gan.g])["g"] == 0
    assert_weights_unchanged(before, [gan.g_ema])
    # ... but its fakes come from training mode (batch statistics, as in BigGAN-PyTorch), so its
    # BatchNorm moving averages and spectral-norm u vectors are updated.
    moved = {
        w.path
        for w in gan.g.non_trainable_weights
        if not np.array_equal(before[f"g/{w.path}"], w.numpy())
    }
    assert "g_block1_cbn1/bn/moving_mean" in moved and "g_out_bn/moving_variance" in moved
    assert "g_block1_conv1/vector_u" in moved


def test_g_step_changes_g_not_d(gan):
    before = snapshot(gan.g, gan.g_ema, gan.d)
    for _ in range(2):
        logs = gan.g_step(4)
        gan.step += 1
    assert math.isfinite(logs["G_loss"])
    assert_weights_changed(before, [gan.g])
    # D is frozen: no kernel, bias, embedding, gamma or spectral-norm u of D changes (the kernels are
    # never rewritten in place, so an unchanged kernel means the optimizer did not touch it).
    assert_weights_unchanged(before, [gan.d])
    assert changed(before, [gan.g_ema], trainable_only=False)["g_ema"] > 0  # the EMA moved
    # G trains on batch statistics and updates its moving averages (used by inference-mode samples).
    mean = gan.g.get_layer("g_block2_cbn2").bn.moving_mean
    assert not np.array_equal(before[f"g/{mean.path}"], mean.numpy())


def test_ema_moves_toward_g_and_is_not_trained(gan):
    assert gan.g_ema.trainable_weights == []
    ids = {id(v) for v in gan.combined.trainable_variables}
    assert not ids & {id(v) for v in gan.g_ema.weights}
    old = [w.numpy().copy() for w in gan.g_ema.weights]
    far = sum(float(np.sum((a - w.numpy()) ** 2)) for a, w in zip(old, gan.g.weights))
    gan.g_step(4)
    new_g = [w.numpy() for w in gan.g.weights]
    for prev, ema, g in zip(old, gan.g_ema.weights, new_g):  # decay 0.5 from step 0
        np.testing.assert_allclose(ema.numpy(), 0.5 * prev + 0.5 * g, rtol=1e-5, atol=1e-6)
    near = sum(float(np.sum((e.numpy() - g) ** 2)) for e, g in zip(gan.g_ema.weights, new_g))
    assert near < far
    # Before ema_start the EMA generator is a plain copy.
    start, gan.ema_start = gan.ema_start, 10**9
    try:
        gan.update_ema(0)
        for ema, g in zip(gan.g_ema.weights, gan.g.weights):
            np.testing.assert_array_equal(ema.numpy(), g.numpy())
    finally:
        gan.ema_start = start


def test_inference_changes_nothing(gan):
    before = snapshot(gan.g, gan.d)
    z, y = _latent(), np.array([0, 1, 1, 0], np.int32)
    img = np.asarray(gan.g([z, y], training=False))
    gan.d([img, y], training=False)
    assert_weights_unchanged(before, [gan.g, gan.d])


# --- conditioning, losses, truncation -------------------------------------------------------------------
def test_output_depends_on_class(gan):
    # The grid's fixed noise, the same z for both classes; the EMA generator in inference mode.
    a, b = gan.generate(0), gan.generate(1)
    assert np.mean(np.abs(a - b)) > 0.05 * np.mean(np.abs(a))
    np.testing.assert_array_equal(a, gan.generate(0))
    # The projection discriminator scores the same image differently per class.
    n = len(a)
    da = np.asarray(gan.d([a, np.zeros(n, np.int32)]))
    db = np.asarray(gan.d([a, np.ones(n, np.int32)]))
    assert np.mean(np.abs(da - db)) > 1e-3


def test_hinge_losses():
    real, fake = np.array([[2.0], [0.5]], "float32"), np.array([[-0.5], [0.8]], "float32")
    y_pred = np.concatenate([real, fake])
    y_true = np.array([[1.0], [1.0], [-1.0], [-1.0]], "float32")
    l_real = np.mean(np.maximum(0, 1 - real))  # 0.25
    l_fake = np.mean(np.maximum(0, 1 + fake))  # 1.15
    assert float(np.mean(biggan.d_hinge_loss(y_true, y_pred))) == pytest.approx(l_real + l_fake)
    assert float(np.mean(biggan.d_hinge_real(y_true, y_pred))) == pytest.approx(l_real)
    assert float(np.mean(biggan.d_hinge_fake(y_true, y_pred))) == pytest.approx(l_fake)
    assert float(np.mean(biggan.g_hinge_loss(None, fake))) == pytest.approx(-np.mean(fake))


def test_truncation():
    rng = np.random.default_rng(0)
    z = sample_latent(rng, 200, 120, truncation=0.5)
    assert z.dtype == np.float32 and np.abs(z).max() <= 0.5 and z.std() > 0.2
    z = sample_latent(np.random.default_rng(1), 10, 120, truncation=0.5, mode="scale")
    np.testing.assert_allclose(z, 0.5 * sample_latent(np.random.default_rng(1), 10, 120), rtol=1e-6)
    with pytest.raises(ValueError):
        sample_latent(rng, 2, 4, truncation=0.5, mode="clip")
    with pytest.raises(ValueError):
        sample_latent(rng, 2, 4, truncation=0.0)


def test_generate_images(gan):
    grid = len(gan.fixed_z)  # batches of the grid's size reuse the trainer's traced sampler
    a = biggan.generate_images(gan.g_ema, grid + 3, 1, truncation=0.5, seed=7, batch_size=grid)
    assert a.shape == (grid + 3, SIZE, SIZE, 3)
    z = sample_latent(np.random.default_rng([7, 1]), grid + 3, 120, truncation=0.5)
    np.testing.assert_allclose(a[:grid], gan.generate(1, z[:grid]), atol=1e-5)
    padded = np.concatenate([z[grid:], np.zeros((grid - 3, 120), np.float32)])
    np.testing.assert_allclose(a[grid:], gan.generate(1, padded)[:3], atol=1e-5)


# --- custom layers ----------------------------------------------------------------------------------------
def test_spectral_norm_sigma_near_one():
    rng = np.random.default_rng(0)
    for inner, x in (
        (keras.layers.Dense(12), rng.normal(size=(4, 20))),
        (keras.layers.Conv2D(6, 3), rng.normal(size=(2, 8, 8, 5))),
    ):
        layer = SpectralNorm(inner)
        layer(x.astype("float32"))
        w = inner.kernel
        w.assign(5.0 * np.asarray(w))
        kernel = w.numpy().copy()
        u = layer.vector_u.numpy().copy()
        for _ in range(30):  # one power iteration per training call
            layer(x.astype("float32"), training=True)
        np.testing.assert_array_equal(w.numpy(), kernel)  # never written in place
        assert not np.array_equal(layer.vector_u.numpy(), u)
        top = np.linalg.svd(
            np.asarray(layer.normalized_weight()).reshape(-1, w.shape[-1]), compute_uv=False
        )[0]
        assert top == pytest.approx(1.0, abs=1e-2)
        true = np.linalg.svd(kernel.reshape(-1, w.shape[-1]), compute_uv=False)[0]
        assert float(layer.sigma()) == pytest.approx(true, rel=1e-2)
        # The output uses W / sigma.
        expect = inner(x.astype("float32"))  # unnormalised
        got = layer(x.astype("float32"))
        assert np.abs(np.asarray(got)).mean() < np.abs(np.asarray(expect)).mean()


def test_frozen_spectral_norm_keeps_u():
    layer = SpectralNorm(keras.layers.Dense(3))
    x = np.ones((2, 4), "float32")
    layer(x)
    layer.trainable = False
    u = layer.vector_u.numpy().copy()
    layer(x, training=True)
    np.testing.assert_array_equal(layer.vector_u.numpy(), u)


@pytest.mark.parametrize(
    "layer",
    [
        SpectralNorm(keras.layers.Conv2D(4, 3, padding="same"), power_iterations=2, epsilon=1e-5),
        SpectralNorm(keras.layers.Embedding(3, 5)),
        ConditionalBatchNormalization(momentum=0.8, epsilon=1e-4, spectral_norm=False),
        SelfAttention(sn_epsilon=1e-5, kernel_initializer="glorot_uniform"),
        LatentSplit(3),
    ],
    ids=lambda la: type(la).__name__,
)
def test_layer_config_roundtrip(layer):
    assert_config_roundtrip(layer)


def test_layers_in_a_model_save_and_reload(tmp_path):
    x = keras.Input((8, 8, 4))
    c = keras.Input((6,))
    h = ConditionalBatchNormalization(name="cbn")([x, c])
    h = SelfAttention(name="attn")(h)
    h = SpectralNorm(keras.layers.Conv2D(2, 3, padding="same"), name="sn")(h)
    model = keras.Model([x, c], h, name="layers")
    rng = np.random.default_rng(0)
    inputs = [
        rng.normal(size=(2, 8, 8, 4)).astype("float32"),
        rng.normal(size=(2, 6)).astype("float32"),
    ]
    model.get_layer("attn").gamma.assign(0.7)  # make the attention path count
    model(inputs, training=True)  # move BN statistics and u away from their initial values
    assert_save_reload(model, str(tmp_path), inputs)


def test_g_and_d_save_and_reload(gan, tmp_path):
    z, y = _latent(3, seed=5), np.array([0, 1, 1], np.int32)
    assert_save_reload(gan.g, str(tmp_path), [z, y])
    img = np.asarray(gan.g([z, y], training=False))
    assert_save_reload(gan.d, str(tmp_path), [img, y])
    reloaded = load_model(os.path.join(str(tmp_path), "g.h5"))
    assert biggan.model_classes(reloaded) == ("melanoma", "nevus")


# --- runs ------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_cli_train_on_sample_then_generate(tmp_path):
    """The CLI end to end at 16 px (two up-blocks, the cheapest model to trace)."""
    # The built-in synthetic lesion sample, drawn small (the default one is 2 x 160 images).
    sample = make_lesion_sample(str(tmp_path / "sample"), n_per_class=6, size=16, n_other=2)
    out = tmp_path / "run"
    args = "--img-size 16 --ch 4 --attention-res 8 --max-steps 3 --batch-size 4 --seed 0"
    args += " --sample-interval 2 --ema-start 1 --checkpoint-every 3 --truncation 1.0"
    gan = biggan.main(["train", "--data-dir", sample, "--output-dir", str(out), *args.split()])
    with open(out / "losses.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3
    for row in rows:
        for key in ("D_loss", "D_real", "D_fake", "G_loss"):
            assert math.isfinite(float(row[key])), row
    for name in ("g", "g_ema", "d"):
        for ext in ("h5", "keras"):
            assert (out / "models" / f"{name}.{ext}").exists()
    for step in (2, 3):
        for cls in ("melanoma", "nevus"):
            assert (out / "images" / f"{step}_{cls}.png").exists()
    assert (out / "losses.png").exists() and (out / "summary.json").exists()
    assert gan.labels.min() == 0 and gan.labels.max() == 1  # both classes in the sample

    model = str(out / "models" / "g_ema.h5")
    fake = tmp_path / "fake"
    written = biggan.main(["generate", "--model", model, "--n", "3", "--output", str(fake)])
    assert sorted(written) == ["melanoma", "nevus"]
    for cls in ("melanoma", "nevus"):
        files = sorted(os.listdir(fake / cls))
        assert len(files) == 3
        assert Image.open(fake / cls / files[0]).size == (16, 16)

    # A second trainer on the same folder resumes from the checkpoint at step 3.
    again = BigGAN(data_dir=sample, img_size=16, ch=4, attention_res=8, output_dir=str(out))
    assert again.restore_checkpoint() and again.step == 3
    for a, b in zip(again.g_ema.weights, gan.g_ema.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
