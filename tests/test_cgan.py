"""keras_gans.cgan: what is specific to the class-conditional DCGAN.

The label changes G's and D's outputs, the label embeddings learn, real batches are drawn with
replacement (optionally class-balanced) keyed by (seed, epoch, batch), the unconditional variant,
the FID evaluation, and the command line on tiny data (train, then ``generate --label``). The trainer
contract (each update's weights, save / reload, resume, NaN, strategies) is tests/test_trainers.py's.
"""

import json

import keras
import numpy as np
import pytest
from PIL import Image

from keras_gans import cgan
from keras_gans.errors import ConfigError

TINY = {"latent_dim": 8, "base_filters": 4, "embedding_dim": 4, "checkpoint_every": 0}
SIZE = 16


def _data(n=16, n_classes=2, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (n, SIZE, SIZE, 1)).astype(np.float32)
    return x, (np.arange(n) % n_classes).astype(np.int64)


def _gan(out, conditional=True, x=None, y=None, **kw):
    data_x, data_y = _data()
    x = data_x if x is None else x
    y = data_y if y is None else y
    if conditional:
        return cgan.CGAN(x, y, 2, ["four", "seven"], output_dir=str(out), seed=0, **TINY, **kw)
    return cgan.CGAN(x, output_dir=str(out), seed=0, **TINY, **kw)


def test_the_label_changes_what_g_draws_and_how_d_scores():
    g = cgan.build_generator(8, n_classes=3, img_size=SIZE, base_filters=4, embedding_dim=4)
    d = cgan.build_discriminator(n_classes=3, img_size=SIZE, base_filters=4, embedding_dim=4)
    z = np.repeat(np.random.default_rng(0).standard_normal((1, 8)), 3, 0).astype(np.float32)
    labels = np.array([[0], [1], [2]], np.int32)
    imgs = np.asarray(g([z, labels], training=False))
    assert imgs.shape == (3, SIZE, SIZE, 1) and imgs.dtype == np.float32
    for a, b in ((0, 1), (0, 2), (1, 2)):  # one z, three classes: three different images
        assert np.abs(imgs[a] - imgs[b]).max() > 1e-5, (a, b)
    same = np.repeat(imgs[:1], 3, 0)  # one image, three claimed classes: three different scores
    scores = np.asarray(d([same, labels], training=False))[:, 0]
    assert scores.shape == (3,) and np.min(np.abs(np.diff(np.sort(scores)))) > 1e-6
    unconditional = cgan.build_generator(8, img_size=28, base_filters=4)
    assert len(unconditional.inputs) == 1 and unconditional.output_shape == (None, 28, 28, 1)


def test_one_step_trains_both_label_embeddings(tmp_path):
    """G's embedding of y learns in the combined update, D's projection embedding in D's update."""
    gan = _gan(tmp_path)
    g_embed = gan.generator.get_layer("generator_label_embedding").embeddings
    d_embed = gan.discriminator.get_layer("discriminator_projection_embedding").embeddings
    assert tuple(g_embed.shape) == (2, 4)
    assert tuple(d_embed.shape) == (
        2,
        gan.discriminator.get_layer("discriminator_flatten").output.shape[-1],
    )
    before = [np.array(g_embed.numpy()), np.array(d_embed.numpy())]
    logs = gan.train_step(next(iter(gan.batches(8, 0, 0))))
    assert set(logs) == {"D_loss", "D_acc", "G_loss"}
    assert not np.array_equal(before[0], g_embed.numpy())
    assert not np.array_equal(before[1], d_embed.numpy())


def test_batches_are_keyed_draws_with_replacement_and_balanced_on_request(tmp_path):
    x, _ = _data(40)
    y = np.array([0] * 38 + [1] * 2)
    plain = _gan(tmp_path / "plain", x=x, y=y)
    balanced = _gan(tmp_path / "balanced", x=x, y=y, balanced_batches=True)
    rare = [np.mean(y[g.draw(np.random.default_rng(0), 4000)] == 1) for g in (plain, balanced)]
    assert rare[0] < 0.1 and 0.45 < rare[1] < 0.55
    assert plain.steps_per_epoch(8) == 5
    epoch = [b[0] for b in plain.batches(8, 1, 0)]
    resumed = [b[0] for b in plain.batches(8, 1, 2)]  # skipping 2 batches gives the same rest
    assert len(epoch) == 5 and all(np.array_equal(a, b) for a, b in zip(epoch[2:], resumed))
    assert not np.array_equal(epoch[0], next(iter(plain.batches(8, 2, 0)))[0])
    one = _gan(tmp_path / "one", conditional=False, x=x[:1])  # fewer images than a batch
    assert one.steps_per_epoch(8) == 1
    imgs, labels = next(iter(one.batches(8, 0, 0)))
    assert imgs.shape == (8, SIZE, SIZE, 1) and labels is None and np.all(imgs == x[0])


def test_unconditional_gan_and_option_errors(tmp_path):
    gan = _gan(tmp_path, conditional=False)
    assert gan.name == "gan" and len(gan.generator.inputs) == 1 and gan.labels is None
    grid = gan.sample_grid()
    assert (grid["rows"], grid["cols"], len(grid["images"])) == (4, 8, 32)
    x, y = _data()
    with pytest.raises(ConfigError, match="--balanced-batches"):
        cgan.CGAN(x, balanced_batches=True, output_dir=str(tmp_path), **TINY)
    with pytest.raises(ConfigError, match=r"class indices in \[0, 2\)"):
        cgan.CGAN(x, y + 1, 2, output_dir=str(tmp_path), **TINY)
    with pytest.raises(ConfigError, match="one label per image"):
        cgan.CGAN(x, None, 2, output_dir=str(tmp_path), **TINY)
    with pytest.raises(ConfigError, match="multiple of 4"):
        cgan.CGAN(np.zeros((4, 18, 18, 1), np.float32), output_dir=str(tmp_path), **TINY)


def test_fid_tells_fakes_from_the_data(tmp_path):
    features = keras.Sequential(  # a tiny stand-in for Inception: --eval-extractor
        [
            keras.Input((SIZE, SIZE, 3)),
            keras.layers.Conv2D(4, 3),
            keras.layers.GlobalAveragePooling2D(),
        ]
    )
    assert _gan(tmp_path / "none").evaluate() == {}
    gan = _gan(tmp_path / "fid", eval_extractor=features)
    values = gan.evaluate()
    assert set(values) == {"fid", "kid"}
    same = gan.fid_kid(gan.images, gan.images)["fid"]  # the data against itself
    assert same < 1e-6 < values["fid"] and np.isfinite(values["fid"])


def test_cli_trains_on_two_digits_and_generates_a_chosen_class(tmp_path, capsys):
    out, png = tmp_path / "run", tmp_path / "png"
    sizes = ["--latent-dim", "8", "--base-filters", "4", "--embedding-dim", "4"]
    cgan.main(["--digits", "3,5", "--img-size", str(SIZE), *sizes, "--max-steps", "2",
               "--batch-size", "8", "--sample-interval", "0", "--checkpoint-every", "0",
               "--seed", "0", "--output-dir", str(out)])  # fmt: skip
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 2 and summary["classes"] == ["3", "5"]
    assert summary["config"]["n_classes"] == 2 and (out / "images" / "000002.png").exists()
    model = str(out / "models" / "generator.keras")

    def generate(label, folder):
        paths = cgan.main(["generate", "--model", model, "--n", "3", "--label", str(label),
                           "--output", str(folder)])  # fmt: skip
        return np.stack([np.asarray(Image.open(p), np.float32) for p in paths])

    first, again, other = generate(1, png / "a"), generate(1, png / "b"), generate(0, png / "c")
    assert first.shape[0] == 3 and np.array_equal(first, again)
    assert not np.array_equal(first, other)  # the class, not only the noise, makes the image
    capsys.readouterr()
    with pytest.raises(SystemExit) as err:
        cgan.main(["generate", "--model", model, "--output", str(png / "d")])
    assert err.value.code == 2 and "--label" in capsys.readouterr().err
    with pytest.raises(SystemExit) as err:
        cgan.main(["--img-size", "30", "--output-dir", str(tmp_path / "bad")])
    assert err.value.code == 2 and "multiple of 4" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_on_the_isic_sample(tmp_path):
    out = tmp_path / "isic"
    cgan.main(["--dataset", "isic", "--img-size", str(SIZE), "--latent-dim", "8", "--base-filters",
               "4", "--max-steps", "1", "--batch-size", "8", "--checkpoint-every", "0",
               "--output-dir", str(out)])  # fmt: skip
    summary = json.loads((out / "summary.json").read_text())
    assert summary["classes"] == ["melanoma", "nevus"]
    assert summary["config"]["img_shape"] == [SIZE, SIZE, 3]


@pytest.mark.slow
def test_conditional_generator_follows_the_label(tmp_path):
    """A short cGAN run on real digits 0 and 1: a classifier trained on the real digits reads the
    requested digit in G's images far above chance (50%)."""
    from keras_gans.experiments.mnist_imbalance import predict_classes, train_classifier
    from keras_gans.sampling import generate_images

    x, y, _ = cgan.load_data("mnist", img_size=SIZE, digits=[0, 1])
    gan = cgan.CGAN(x, y, 2, latent_dim=32, base_filters=8, embedding_dim=8,
                    output_dir=str(tmp_path), seed=0, checkpoint_every=0, run_eagerly=False)  # fmt: skip
    gan.run(max_steps=400, batch_size=32, sample_interval=0)  # 300 sufficed for 2 of 3 seeds
    clf = train_classifier(x, y, 2, seed=0, epochs=3)
    for label in (0, 1):
        pred = predict_classes(clf, generate_images(gan.generator, 100, seed=0, label=label))
        assert np.mean(pred == label) > 0.8, f"digit {label}: {np.mean(pred == label):.2f}"
