"""BigGAN: architecture, custom layers, which weights each step changes, hinge, EMA, truncation,
class conditioning, per-class sampling, CLI. The trainer contract is in tests/test_trainers.py."""

import csv
import json
import math
import os

import keras
import numpy as np
import pytest
from PIL import Image

from data_loaders.isic import make_lesion_sample
from keras_gans import biggan, load_model, losses
from keras_gans.biggan import BigGAN, build_discriminator, build_generator, sample_latent
from keras_gans.errors import ConfigError
from keras_gans.layers import (
    ConditionalBatchNormalization,
    LatentSplit,
    SelfAttention,
    SpectralNorm,
)
from keras_gans.saving import save_model
from tests.helpers import (
    assert_config_roundtrip,
    assert_save_reload,
    assert_weights_changed,
    assert_weights_unchanged,
    changed,
    snapshot,
)

SIZE = 16
CH = 4
ATTN = 8  # attention at 8x8, so the tiny models have it too
LATENT = 120  # 3 chunks of 40 at 16 px


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


def _latent(n=4, seed=1, dim=LATENT):
    return sample_latent(np.random.default_rng(seed), n, dim)


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


def test_trainer_wiring(gan):
    d_opt, g_opt = gan.d.optimizer, gan.combined.optimizer
    assert float(d_opt.learning_rate) == pytest.approx(biggan.D_LR)
    assert float(g_opt.learning_rate) == pytest.approx(biggan.G_LR)
    for opt in (d_opt, g_opt):
        assert (opt.beta_1, opt.beta_2, opt.epsilon) == (0.0, 0.999, 1e-6)
    assert gan.d.loss is losses.d_hinge_loss and gan.combined.loss is losses.g_hinge_loss
    assert sorted(gan.models) == ["d", "g", "g_ema"]  # saved and checkpointed; combined is not
    assert "g_ema" not in gan.compiled and gan.g_ema.trainable_weights == []
    ids = {id(v) for v in gan.combined.trainable_variables}
    assert ids == {id(v) for v in gan.g.trainable_variables}  # the G step trains G only


def test_shapes_and_combined_is_d_of_g(gan):
    z, y = _latent(), np.array([0, 1, 0, 1], np.int32)
    img = np.asarray(gan.g([z, y], training=False))
    assert img.shape == (4, SIZE, SIZE, 3)
    score = np.asarray(gan.d([img, y]))
    assert score.shape == (4, 1)
    np.testing.assert_allclose(np.asarray(gan.combined([z, y])), score, rtol=1e-5, atol=1e-5)
    assert gan.g.get_layer("g_attention").input.shape == (None, ATTN, ATTN, 16 * CH)  # block 1


def test_bad_arguments_name_the_option(data, tmp_path):
    images, labels = data
    out = str(tmp_path)
    with pytest.raises(ConfigError, match="--img-size"):
        BigGAN(images, labels, img_size=48, output_dir=out)
    with pytest.raises(ConfigError, match="class_names"):
        BigGAN(images, labels, img_size=SIZE, num_classes=3, output_dir=out)
    with pytest.raises(ConfigError, match="images must be"):
        BigGAN(images[:, :8], labels, img_size=SIZE, output_dir=out)
    with pytest.raises(ConfigError, match="labels must be"):
        BigGAN(images, labels + 1, img_size=SIZE, output_dir=out)
    with pytest.raises(ConfigError, match="--latent-dim"):
        build_generator(img_size=SIZE, ch=CH, latent_dim=121)
    with pytest.raises(ConfigError, match="--truncation-mode"):
        BigGAN(images, labels, img_size=SIZE, truncation_mode="clip", output_dir=out)


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


def test_d_step_keeps_real_and_fake_halves_in_every_micro_batch(gan, data, monkeypatch):
    """d_hinge_loss sums the two hinge terms only on equal real / fake halves."""
    seen = []
    fake_logs = {"loss": 0.0, "d_hinge_real": 0.0, "d_hinge_fake": 0.0}
    monkeypatch.setattr(gan, "update", lambda model, x, y: seen.append(y) or fake_logs)
    monkeypatch.setattr(gan, "accumulate", 2)
    gan.d_step(*(a[:4] for a in data))
    target = seen[0].ravel()
    np.testing.assert_array_equal(target, [1, 1, -1, -1, 1, 1, -1, -1])


def test_ema_is_the_running_average_after_ema_start(gan):
    old = [w.numpy().copy() for w in gan.g_ema.weights]
    gan.g_step(4)  # ema_start = 0, decay = 0.5
    new_g = [w.numpy() for w in gan.g.weights]
    for prev, ema, g in zip(old, gan.g_ema.weights, new_g):
        np.testing.assert_allclose(ema.numpy(), 0.5 * prev + 0.5 * g, rtol=1e-5, atol=1e-6)
    differ = [not np.allclose(e.numpy(), g) for e, g in zip(gan.g_ema.weights, new_g)]
    assert sum(differ) > len(differ) // 2  # an average, not a copy of G
    # Before ema_start the EMA generator is a plain copy (BigGAN-PyTorch ema.update(itr)).
    start, gan.ema_start = gan.ema_start, 10**9
    try:
        gan.update_ema(gan.step)
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


def test_sample_grid_has_the_classes_in_rows(gan):
    grid = gan.sample_grid()
    rows, cols = biggan.GRID_ROWS, biggan.GRID_COLS
    assert (grid["rows"], grid["cols"]) == (2 * rows, cols)
    assert grid["images"].shape == (2 * rows * cols, SIZE, SIZE, 3)
    assert grid["row_labels"] == ["melanoma", "", "nevus", ""]
    np.testing.assert_allclose(grid["images"][rows * cols :], gan.generate(1), atol=1e-6)


def test_hinge_losses():
    real, fake = np.array([[2.0], [0.5]], "float32"), np.array([[-0.5], [0.8]], "float32")
    y_pred = np.concatenate([real, fake])
    y_true = np.array([[1.0], [1.0], [-1.0], [-1.0]], "float32")
    l_real = np.mean(np.maximum(0, 1 - real))  # 0.25
    l_fake = np.mean(np.maximum(0, 1 + fake))  # 1.15
    assert float(np.mean(losses.d_hinge_loss(y_true, y_pred))) == pytest.approx(l_real + l_fake)
    assert float(np.mean(losses.d_hinge_real(y_true, y_pred))) == pytest.approx(l_real)
    assert float(np.mean(losses.d_hinge_fake(y_true, y_pred))) == pytest.approx(l_fake)
    assert float(np.mean(losses.g_hinge_loss(None, fake))) == pytest.approx(-np.mean(fake))


@pytest.mark.filterwarnings("ignore:Skipping variable loading for optimizer")
def test_saved_d_compiles_with_the_hinge_loss(gan, tmp_path):
    # Models saved before the losses moved to keras_gans.losses name them "keras_gans>d_hinge_loss".
    assert keras.saving.get_registered_name(losses.d_hinge_loss) == "keras_gans>d_hinge_loss"
    path = save_model(gan.d, str(tmp_path / "d"), formats=("keras",), include_optimizer=True)[0]
    assert load_model(path, compile=True).loss is losses.d_hinge_loss


def test_truncation_bounds_z():
    z = sample_latent(np.random.default_rng(0), 200, LATENT, truncation=0.5)
    assert z.dtype == np.float32 and np.abs(z).max() <= 0.5 and z.std() > 0.2
    assert np.abs(_latent(200, seed=0)).max() > 2.0  # untruncated z does leave [-0.5, 0.5]
    z = sample_latent(np.random.default_rng(1), 10, LATENT, truncation=0.5, mode="scale")
    np.testing.assert_allclose(z, 0.5 * _latent(10, seed=1), rtol=1e-6)
    with pytest.raises(ConfigError, match="--truncation"):
        sample_latent(np.random.default_rng(0), 2, 4, truncation=0.0)


def test_generate_images_uses_truncated_z_and_pads_batches(gan):
    n = len(gan.fixed_z)  # batches of the grid's size reuse the trainer's traced sampler
    a = biggan.generate_images(gan.g_ema, n + 3, 1, truncation=0.5, seed=7, batch_size=n)
    assert a.shape == (n + 3, SIZE, SIZE, 3)
    z = sample_latent(np.random.default_rng([7, 1]), n + 3, LATENT, truncation=0.5)
    np.testing.assert_allclose(a[:n], gan.generate(1, z[:n]), atol=1e-5)
    padded = np.concatenate([z[n:], np.zeros((n - 3, LATENT), np.float32)])
    np.testing.assert_allclose(a[n:], gan.generate(1, padded)[:3], atol=1e-5)
    untruncated = biggan.generate_images(gan.g_ema, 3, 1, seed=7, batch_size=n)
    assert not np.allclose(untruncated, a[:3], atol=1e-3)


def test_model_classes(gan, tmp_path):
    assert biggan.model_classes(gan.g) == ("melanoma", "nevus")
    path = str(tmp_path / "g.h5")
    (tmp_path / "classes.json").write_text(json.dumps(["nevus", "melanoma"]))
    assert biggan.model_classes(gan.g, path) == ("nevus", "melanoma")
    (tmp_path / "classes.json").write_text(json.dumps(["a", "b", "c"]))  # not this generator's
    assert biggan.model_classes(gan.g, path) == ("melanoma", "nevus")


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
        # The output is the inner layer's with W / sigma.
        expect = np.asarray(inner(x.astype("float32"))) - np.asarray(inner.bias)
        got = np.asarray(layer(x.astype("float32"))) - np.asarray(inner.bias)
        np.testing.assert_allclose(got, expect / float(layer.sigma()), rtol=1e-4, atol=1e-5)


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


# --- command line ------------------------------------------------------------------------------------------
def test_cli_bad_option_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        biggan.main(["train", "--img-size", "48", "--output-dir", str(tmp_path)])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().startswith("error: --img-size must be 16, 32, 64 or 128")


@pytest.mark.slow
def test_cli_train_on_sample_then_generate(tmp_path):
    """The CLI end to end at 16 px on the built-in synthetic lesion sample, drawn small."""
    sample = make_lesion_sample(str(tmp_path / "sample"), n_per_class=6, size=16, n_other=2)
    out = tmp_path / "run"
    args = "--img-size 16 --ch 4 --attention-res 8 --max-steps 3 --batch-size 4 --seed 0"
    args += " --sample-interval 2 --ema-start 1 --checkpoint-every 0 --truncation 1.0"
    gan = biggan.main(["train", "--data-dir", sample, "--output-dir", str(out), *args.split()])
    with open(out / "losses.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [1, 2, 3]
    assert all(math.isfinite(float(r[k])) for r in rows for k in ("D_loss", "D_real", "G_loss"))
    assert sorted(os.listdir(out / "images")) == ["000002.png", "000003.png"]
    assert json.loads((out / "models" / "classes.json").read_text()) == ["melanoma", "nevus"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["images"] == {"melanoma": 6, "nevus": 6} and summary["truncation"] == 1.0
    assert gan.g_ema.trainable is False  # saving unfroze it only while writing

    model = str(out / "models" / "g_ema.h5")
    fake = tmp_path / "fake"
    written = biggan.main(["generate", "--model", model, "--n", "3", "--output", str(fake)])
    assert sorted(written) == ["melanoma", "nevus"]
    for cls in ("melanoma", "nevus"):
        files = sorted(os.listdir(fake / cls))
        assert files == [f"{cls}_{i:05d}.png" for i in range(3)]
        assert Image.open(fake / cls / files[0]).size == (16, 16)
    # The nevus files are G(z, nevus) with z keyed by (seed 0, class 1).
    expected = biggan.generate_images(model, 3, 1)
    got = np.asarray(Image.open(fake / "nevus" / "nevus_00000.png"), np.float32) / 127.5 - 1
    np.testing.assert_allclose(got, expected[0], atol=1.5 / 127.5)
