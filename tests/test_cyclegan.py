"""CycleGAN: the report's architecture, Keras 3 training correctness, artifacts, reuse, CLI."""

import csv
import os

import keras
import numpy as np
import pytest
from PIL import Image

from data_loaders.images import load_folder
from data_loaders.sample import make_fruit_sample
from keras_gans import cyclegan, load_model
from keras_gans.cyclegan import CycleGAN
from tests.helpers import (
    assert_save_reload,
    assert_weights_changed,
    assert_weights_unchanged,
    snapshot,
)

SIZE = 32


@pytest.fixture(scope="module")
def fruit(tmp_path_factory):
    return make_fruit_sample(str(tmp_path_factory.mktemp("fruit")), n_train=6, n_test=2, size=SIZE)


@pytest.fixture(scope="module")
def gan(fruit, tmp_path_factory):
    out = tmp_path_factory.mktemp("cyclegan")
    return CycleGAN(
        data_dir=fruit,
        img_rows=SIZE,
        img_cols=SIZE,
        gf=4,
        df=4,
        output_dir=str(out),
        seed=0,
        checkpoint_every=0,
    )


def _batch(seed=0, n=2):
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, (n, SIZE, SIZE, 3)).astype("float32")


def test_report_architecture_at_128():
    gan = CycleGAN(output_dir="unused", checkpoint_every=0)
    # Keras-GAN's U-Net (gf=32) and PatchGAN (df=64) with contrib instance norm.
    assert gan.g_AB.count_params() == 1_545_425
    assert gan.d_A.count_params() == 2_764_743
    assert gan.disc_patch == (8, 8, 1)
    assert gan.d_A.output_shape == (None, 8, 8, 1)
    assert gan.lambda_id == pytest.approx(1.0)
    assert gan.combined.output_names == [
        "valid_A",
        "valid_B",
        "reconstr_A",
        "reconstr_B",
        "img_A_id",
        "img_B_id",
    ]
    norm = gan.g_AB.get_layer("g_AB_d2_norm")
    assert norm.axis is None and norm.gamma.shape == (1,)  # keras-contrib: one scalar gamma


def test_norm_instance_is_per_channel(fruit, tmp_path):
    gan = CycleGAN(
        data_dir=fruit,
        img_rows=SIZE,
        img_cols=SIZE,
        gf=4,
        df=4,
        norm="instance",
        output_dir=str(tmp_path),
        checkpoint_every=0,
    )
    norm = gan.g_AB.get_layer("g_AB_d2_norm")
    assert norm.axis == -1 and norm.gamma.shape == (8,) and norm.epsilon_mode == "variance"
    with pytest.raises(ValueError, match="norm"):
        CycleGAN(
            data_dir=fruit, img_rows=SIZE, img_cols=SIZE, norm="batch", output_dir=str(tmp_path)
        )


def test_no_optimizer_is_shared(gan):
    optimizers = [gan.d_A.optimizer, gan.d_B.optimizer, gan.combined.optimizer]
    assert len({id(o) for o in optimizers}) == 3


def test_d_step_changes_that_discriminator_only(gan):
    models = [gan.g_AB, gan.g_BA, gan.d_A, gan.d_B]
    before = snapshot(*models)
    valid = np.ones((2,) + gan.disc_patch, "float32")
    gan._d_step(gan.d_A, _batch(1), _batch(2), valid, 0 * valid)
    assert_weights_changed(before, [gan.d_A])
    assert_weights_unchanged(before, [gan.g_AB, gan.g_BA, gan.d_B])


def test_combined_step_changes_both_generators_and_no_discriminator(gan):
    models = [gan.g_AB, gan.g_BA, gan.d_A, gan.d_B]
    a, b = _batch(3), _batch(4)
    valid = np.ones((2,) + gan.disc_patch, "float32")
    gan.train_step(a, b, valid, 0 * valid)  # traces every train function in the report's order
    before = snapshot(*models)
    gan.set_trainable(gan.d_A, False)
    gan.set_trainable(gan.d_B, False)
    gan.train_on_batch(gan.combined, [a, b], [valid, valid, a, b, a, b])
    assert_weights_changed(before, [gan.g_AB, gan.g_BA])
    assert_weights_unchanged(before, [gan.d_A, gan.d_B])
    # And the full step still trains the discriminators after the combined model was traced.
    before = snapshot(*models)
    gan.train_step(a, b, valid, 0 * valid)
    assert_weights_changed(before, models)


def test_keras_gan_order_without_flips_leaves_d_untrained():
    """Why the trainer flips ``trainable``: Keras 3 reads it when the train function is traced."""
    inp = keras.Input((4,))
    d = keras.Model(inp, keras.layers.Dense(1)(inp))
    d.compile(loss="mse", optimizer=keras.optimizers.Adam(0.1))
    d.trainable = False  # Keras-GAN: freeze after compiling D, before compiling combined
    combined = keras.Model(inp, d(keras.layers.Dense(4)(inp)))
    combined.compile(loss="mse", optimizer=keras.optimizers.Adam(0.1))
    before = snapshot(d)
    d.train_on_batch(np.ones((2, 4)), np.ones((2, 1)))
    assert_weights_unchanged(before, [d])


def test_train_writes_models_images_and_both_identity_losses(fruit, tmp_path):
    gan = CycleGAN(
        data_dir=fruit,
        img_rows=SIZE,
        img_cols=SIZE,
        gf=4,
        df=4,
        output_dir=str(tmp_path),
        seed=0,
        checkpoint_every=2,
    )
    summary = gan.train(epochs=1, batch_size=2, sample_interval=2)
    assert summary["steps"] == 3 and summary["epochs"] == 1
    for name in ("g_AB", "g_BA", "d_A", "d_B"):
        for ext in ("h5", "keras"):
            assert os.path.getsize(tmp_path / "models" / f"{name}.{ext}") > 0
    assert (tmp_path / "images" / "0_0.png").exists() and (tmp_path / "images" / "0_2.png").exists()
    assert (tmp_path / "losses.png").stat().st_size > 0
    with open(tmp_path / "losses.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [1, 2, 3]
    assert {"D_loss", "D_acc", "G_loss", "adv", "recon", "id"} <= set(rows[0])
    reloaded = load_model(str(tmp_path / "models" / "g_AB.h5"))
    np.testing.assert_allclose(reloaded(_batch(7)), gan.g_AB(_batch(7)), atol=1e-5)
    assert reloaded.trainable and load_model(str(tmp_path / "models" / "d_A.keras")).trainable
    g = gan.combined.train_on_batch(
        [_batch(5), _batch(6)],
        [np.ones((2, 2, 2, 1))] * 2 + [_batch(5), _batch(6)] * 2,
        return_dict=True,
    )
    assert {"img_A_id_loss", "img_B_id_loss"} <= set(g)


def test_generator_and_discriminator_round_trip(gan, tmp_path):
    assert_save_reload(gan.g_AB, tmp_path, _batch(8))
    assert_save_reload(gan.d_B, tmp_path, _batch(9))


def test_translate_cli_any_size_and_mode(gan, tmp_path):
    model_path = str(tmp_path / "g_AB.h5")
    gan.g_AB.save(model_path)
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    Image.new("L", (50, 20), 128).save(inputs / "gray.png")
    Image.new("RGBA", (64, 64), (255, 0, 0, 128)).save(inputs / "alpha.png")
    Image.new("CMYK", (40, 30), (0, 128, 255, 0)).save(inputs / "cmyk.jpg")
    written = cyclegan.main(
        [
            "translate",
            "--model",
            model_path,
            "--input",
            str(inputs),
            "--output",
            str(tmp_path / "out"),
        ]
    )
    assert sorted(os.path.basename(p) for p in written) == ["alpha.png", "cmyk.png", "gray.png"]
    assert Image.open(written[0]).size == (SIZE, SIZE)
    one = cyclegan.main(
        [
            "translate",
            "--model",
            model_path,
            "--input",
            str(inputs / "gray.png"),
            "--output",
            str(tmp_path / "one"),
        ]
    )
    assert len(one) == 1


def test_translate_reports_a_bad_model_file(tmp_path):
    bad = tmp_path / "g_AB.h5"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 40)
    with pytest.raises(ValueError, match="g_AB.h5"):
        cyclegan.main(
            [
                "translate",
                "--model",
                str(bad),
                "--input",
                str(tmp_path),
                "--output",
                str(tmp_path / "o"),
            ]
        )


def test_help_documents_the_report_defaults(capsys):
    with pytest.raises(SystemExit):
        cyclegan.main(["--help"])
    text = capsys.readouterr().out
    for flag in (
        "--dataset",
        "--data-dir",
        "--epochs",
        "--batch-size",
        "--img-size",
        "--sample-interval",
        "--max-steps",
        "--output-dir",
        "--seed",
        "--norm",
        "--strategy",
        "--mixed-precision",
        "--jit",
        "--accumulate",
        "--checkpoint-every",
    ):
        assert flag in text
    assert "default: 128" in text and "default: contrib" in text


@pytest.mark.slow
def test_short_training_moves_translations_toward_domain_b(tmp_path):
    """On the built-in fruit sample, G(A) gets measurably closer to B's colours within minutes."""
    root = make_fruit_sample(str(tmp_path / "fruit"), n_train=40, n_test=8, size=SIZE)
    gan = CycleGAN(
        data_dir=root,
        img_rows=SIZE,
        img_cols=SIZE,
        gf=8,
        df=16,
        output_dir=str(tmp_path / "out"),
        seed=1,
        checkpoint_every=0,
    )
    test_a = load_folder(os.path.join(root, "testA"), SIZE)
    test_b = load_folder(os.path.join(root, "testB"), SIZE)
    target = test_b.mean(axis=(0, 1, 2))
    distance = lambda x: float(np.linalg.norm(x.mean(axis=(0, 1, 2)) - target))
    start = distance(test_a)
    untrained = distance(gan.translate(test_a, test_b)[0])
    gan.train(epochs=6, batch_size=2, sample_interval=1000)  # 120 steps
    moved = distance(gan.translate(test_a, test_b)[0])
    # Closer to B's colours than the apples themselves (and than the untrained generator's grey).
    assert moved < 0.8 * start and moved < 0.5 * untrained, (start, untrained, moved)


def test_eval_every_writes_the_translation_score_to_the_loss_log(fruit, tmp_path):
    gan = CycleGAN(
        data_dir=fruit,
        img_rows=SIZE,
        img_cols=SIZE,
        gf=4,
        df=4,
        seed=0,
        output_dir=str(tmp_path),
        checkpoint_every=0,
        eval_every=2,
    )
    gan.train(epochs=1, batch_size=2, sample_interval=1000)
    with open(tmp_path / "losses.csv") as f:
        rows = list(csv.DictReader(f))
    scored = [r for r in rows if r.get("a_to_b")]
    assert [int(r["step"]) for r in scored] == [2]
    assert 0.0 <= float(scored[0]["a_to_b"]) <= 1.0 and 0.0 <= float(scored[0]["b_to_a"]) <= 1.0
