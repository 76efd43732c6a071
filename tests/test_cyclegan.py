"""CycleGAN: the report's architecture, Keras 3 training correctness, artifacts, reuse, CLI."""

import csv
import json
import os

import keras
import numpy as np
import pytest
from PIL import Image

from data_loaders.download import DownloadError
from data_loaders.images import load_folder
from data_loaders.sample import make_fruit_sample
from keras_gans import cyclegan
from keras_gans.cyclegan import CycleGAN
from keras_gans.errors import ConfigError
from keras_gans.saving import ModelFileError
from tests.helpers import assert_weights_unchanged, snapshot

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


def test_report_architecture_at_128_is_built_without_data(tmp_path):
    # A Berkeley name that is not cached: building must not read (or download) anything.
    gan = CycleGAN(dataset_name="apple2orange", output_dir=str(tmp_path), checkpoint_every=0)
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
    assert os.listdir(tmp_path) == []
    with pytest.raises(DownloadError, match="apple2orange"):
        gan.data_loader  # noqa: B018 - reading the data is what fails offline


def test_norm_instance_is_per_channel(tmp_path):
    gan = CycleGAN(
        img_rows=SIZE, img_cols=SIZE, gf=4, df=4, norm="instance", output_dir=str(tmp_path)
    )
    norm = gan.g_AB.get_layer("g_AB_d2_norm")
    assert norm.axis == -1 and norm.gamma.shape == (8,) and norm.epsilon_mode == "variance"
    with pytest.raises(ValueError, match="norm"):
        CycleGAN(img_rows=SIZE, img_cols=SIZE, norm="batch", output_dir=str(tmp_path))
    with pytest.raises(ConfigError, match="multiple of 16"):
        CycleGAN(img_rows=40, img_cols=40, output_dir=str(tmp_path))


def test_no_optimizer_is_shared_and_d_is_frozen_only_in_combined(gan):
    optimizers = [gan.d_A.optimizer, gan.d_B.optimizer, gan.combined.optimizer]
    assert len({id(o) for o in optimizers}) == 3
    assert gan.compiled["combined"][1] == (gan.d_A, gan.d_B)
    assert gan.compiled["d_A"][1] == () and gan.compiled["d_B"][1] == ()


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


def test_the_step_logs_both_identity_terms_and_the_report_losses(gan):
    valid = np.ones((2,) + gan.disc_patch, "float32")
    logs = gan.report_step(_batch(5), _batch(6), valid, 0 * valid)
    assert set(logs) == {"D_loss", "D_acc", "G_loss", "adv", "recon", "id"}
    # G_loss = adv x 2 + lambda_cycle x recon x 2 + lambda_id x id x 2 (the compiled loss weights).
    total = 2 * logs["adv"] + 2 * gan.lambda_cycle * logs["recon"] + 2 * gan.lambda_id * logs["id"]
    assert logs["G_loss"] == pytest.approx(total, rel=1e-4)


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


def test_translate_reports_a_bad_model_file_in_one_line(tmp_path, capsys):
    bad = tmp_path / "g_AB.h5"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 40)
    argv = [
        "translate",
        "--model",
        str(bad),
        "--input",
        str(tmp_path),
        "--output",
        str(tmp_path / "o"),
    ]
    with pytest.raises(SystemExit) as exit_info:
        cyclegan.main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2 and len(err) == 1
    assert err[0].startswith("error: ") and "g_AB.h5" in err[0] and "Traceback" not in err[0]
    assert not (tmp_path / "o").exists()
    with pytest.raises(ModelFileError, match="g_AB.h5"):
        cyclegan.main([*argv, "--debug"])


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
    assert "(default: 128)" in text and "(default: contrib)" in text


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
        run_eagerly=False,  # 120 steps: tracing once is cheaper
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


@pytest.mark.slow  # trains the domain classifier first
def test_eval_every_logs_the_translation_score_of_the_current_generators(fruit, tmp_path):
    gan = CycleGAN(
        data_dir=fruit,
        img_rows=SIZE,
        img_cols=SIZE,
        gf=4,
        df=4,
        seed=0,
        output_dir=str(tmp_path),
        checkpoint_every=0,
        eval_every=3,
    )
    gan.train(epochs=1, batch_size=2, sample_interval=0)
    with open(tmp_path / "losses.csv") as f:
        rows = list(csv.DictReader(f))
    scored = [r for r in rows if r.get("a_to_b")]
    assert [int(r["step"]) for r in scored] == [3]
    # The logged value is the score of the generators as they were after step 3.
    again = gan.evaluate()
    assert float(scored[0]["a_to_b"]) == pytest.approx(again["a_to_b"], abs=1e-5)
    assert float(scored[0]["b_to_a"]) == pytest.approx(again["b_to_a"], abs=1e-5)


@pytest.mark.slow  # traces the fused step: tens of seconds
def test_fused_flag_trains_through_the_cli(fruit, tmp_path):
    argv = ["--data-dir", fruit, "--img-size", str(SIZE), "--gf", "4", "--df", "4", "--fused"]
    argv += ["--max-steps", "2", "--batch-size", "2", "--output-dir", str(tmp_path), "--seed", "0"]
    gan = cyclegan.main(argv)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["fused"] is True and summary["steps"] == 2 and gan._fused is not None
