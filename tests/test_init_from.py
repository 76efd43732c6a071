"""``init_from`` / ``--init-from``: a trainer starts from saved models (keras_gans.initialization).

The legacy tf.keras 2 files of tests/fixtures/legacy (Keras-GAN's U-Net and PatchGAN, gf = df = 8,
32x32x3) initialise a CycleGAN; a DCGAN starts from another DCGAN's files; files that do not fit
are refused in one line; a checkpoint in the output folder wins; the flag works through the CLI.
"""

import json
import os
import shutil

import keras
import numpy as np
import pytest

from data_loaders.sample import make_fruit_sample
from keras_gans import cyclegan, initialization
from keras_gans.cyclegan import CycleGAN
from keras_gans.dcgan import DCGAN
from keras_gans.initialization import InitFromError
from keras_gans.saving import ModelFileError, load_model, save_model
from tests.trainers import SIZE, TRAINERS, images

LEGACY = os.path.join(os.path.dirname(__file__), "fixtures", "legacy")


def legacy(stem):
    return os.path.join(LEGACY, f"{stem}.h5")


@pytest.fixture(scope="module")
def expected():
    with np.load(os.path.join(LEGACY, "expected.npz")) as data:
        return dict(data)


def _cyclegan(out, size=32, norm="contrib", df=8, **kw):
    rng = np.random.default_rng(0)
    data = tuple(rng.uniform(-1, 1, (2, size, size, 3)).astype(np.float32) for _ in "AB")
    size = {"img_rows": size, "img_cols": size}
    return CycleGAN(data=data, **size, gf=8, df=df, norm=norm, output_dir=str(out), seed=0, **kw)


def _out(model, x):
    return np.asarray(model(x, training=False))


def test_legacy_files_initialise_a_cyclegan_with_the_files_outputs(tmp_path, expected):
    files = {"g_AB": legacy("contrib_generator"), "g_BA": legacy("contrib_generator")}
    gan = _cyclegan(tmp_path, df=4, init_from=files)
    for name in files:
        got = _out(gan.models[name], expected["x"])
        np.testing.assert_allclose(got, expected["contrib_generator"], atol=1e-4)
    assert gan.init_sources == {k: os.path.abspath(v) for k, v in files.items()}
    assert gan.step == 0 and all(int(opt.iterations) == 0 for opt in gan.optimizers())


def test_tensorflow_addons_files_initialise_the_per_channel_norm_variant(tmp_path, expected):
    files = {"g_BA": legacy("addons_generator"), "d_B": legacy("addons_discriminator")}
    gan = _cyclegan(tmp_path, norm="instance", init_from=files)  # d_B's file has a training_config
    np.testing.assert_allclose(
        _out(gan.g_BA, expected["x"]), expected["addons_generator"], atol=1e-4
    )
    np.testing.assert_allclose(
        _out(gan.d_B, expected["x"]), expected["addons_discriminator"], atol=1e-4
    )
    assert set(gan.init_sources) == set(files)


def test_another_input_size_works_where_every_weight_fits_and_other_shapes_are_refused(tmp_path):
    path = legacy("contrib_generator")
    gan = _cyclegan(tmp_path / "ok", size=16, init_from=f"g_AB={path}")
    # The file's own network with its input size opened up, as an independent reference.
    source = load_model(path)
    config = source.get_config()
    config["layers"][0]["config"]["batch_shape"] = [None, None, None, 3]
    flexible = keras.Model.from_config(config)
    flexible.set_weights(source.get_weights())
    x = np.random.default_rng(1).uniform(-1, 1, (2, 16, 16, 3)).astype(np.float32)
    np.testing.assert_allclose(_out(gan.g_AB, x), _out(flexible, x), atol=1e-5)

    with pytest.raises(InitFromError) as refused:
        _cyclegan(tmp_path / "bad", size=16, norm="instance", init_from=f"g_AB={path}")
    message = str(refused.value)
    assert "\n" not in message
    assert f"--init-from g_AB={path}: the file does not fit g_AB: layer 2" in message
    assert "gamma 8 here, 1 in the file" in message
    assert "inputs 16x16x3 here, 32x32x3 in the file" in message


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A tiny DCGAN (seed 1) whose models/ holds its generator and discriminator."""
    out = tmp_path_factory.mktemp("source")
    gan = TRAINERS["dcgan"](str(out), seed=1)
    gan.save_models()
    weights = {n: [np.array(w) for w in m.get_weights()] for n, m in gan.models.items()}
    return out, weights


def _weights_equal(model, weights):
    return all(np.array_equal(a, b) for a, b in zip(model.get_weights(), weights, strict=True))


def test_a_dcgan_starts_from_another_dcgans_generator_and_discriminator(source, tmp_path):
    out, weights = source
    gan = TRAINERS["dcgan"](str(tmp_path / "all"), seed=2, init_from=str(out))  # a run folder
    assert all(_weights_equal(gan.models[n], weights[n]) for n in ("generator", "discriminator"))
    models = out / "models"
    assert gan.init_sources == {
        n: str(models / f"{n}.keras") for n in ("generator", "discriminator")
    }
    assert all(int(opt.iterations) == 0 for opt in gan.optimizers())

    one = TRAINERS["dcgan"](
        str(tmp_path / "one"), seed=2, init_from=f"generator={models / 'generator.h5'}"
    )
    assert _weights_equal(one.generator, weights["generator"])
    assert not _weights_equal(one.discriminator, weights["discriminator"])


@pytest.mark.parametrize("name", sorted(TRAINERS))
def test_every_trainer_starts_from_a_folder_of_its_models(name, tmp_path):
    first = TRAINERS[name](str(tmp_path / "first"), seed=1)
    for model_name, model in first.models.items():
        save_model(model, str(tmp_path / "saved" / model_name), formats=("keras",))
    again = TRAINERS[name](str(tmp_path / "again"), seed=2, init_from=str(tmp_path / "saved"))
    assert set(again.init_sources) == set(first.models)
    for model_name, model in again.models.items():
        assert _weights_equal(model, first.models[model_name].get_weights()), model_name


def test_models_or_files_that_do_not_fit_are_refused_by_name(source, tmp_path):
    out, _ = source
    with pytest.raises(InitFromError) as refused:
        DCGAN(
            images=images(), img_size=SIZE, gf=8, df=4, latent_dim=8, init_from=str(out),
            output_dir=str(tmp_path / "wide"),
        )  # fmt: skip
    message = str(refused.value)
    assert message.startswith(f"--init-from generator={out / 'models' / 'generator.keras'}: ")
    assert "the file does not fit generator: layer 1" in message and "\n" not in message

    models = TRAINERS["dcgan"](str(tmp_path / "target"), seed=0).models
    only_g = tmp_path / "only_g"
    only_g.mkdir()
    shutil.copy(out / "models" / "generator.h5", only_g)
    refusals = {
        str(only_g): "no file for discriminator",
        "g=x.h5": r"'g' is not a model of this trainer \(models: discriminator, generator\)",
        str(out / "models" / "generator.h5"): "a file; give a folder",
        "generator=a.h5,generator=b.h5": "generator is given twice",
    }
    for spec, words in refusals.items():
        with pytest.raises(InitFromError, match=words):
            initialization.initialize(models, spec)
    with pytest.raises(ModelFileError, match=r"--init-from generator: .*no such model file"):
        initialization.initialize(models, {"generator": str(tmp_path / "missing.h5")})


def test_a_checkpoint_in_the_output_folder_wins_over_init_from(source, tmp_path):
    out, weights = source
    run = dict(max_steps=1, batch_size=2, sample_interval=0)
    first = TRAINERS["dcgan"](str(tmp_path), seed=2, init_from=str(out), checkpoint_every=1)
    started = first.run(**run)["init_from"]
    assert json.loads((tmp_path / "init_from.json").read_text()) == started != {}
    trained = [np.array(w) for w in first.generator.get_weights()]
    assert not _weights_equal(first.generator, weights["generator"])

    same = TRAINERS["dcgan"](str(tmp_path), seed=3, init_from=str(out), checkpoint_every=1)
    summary = same.run(**run)  # the same command again: it continues
    assert summary["steps"] == 1 and _weights_equal(same.generator, trained)
    assert summary["init_from"] == started and "init_from_ignored" not in summary

    other = f"generator={out / 'models' / 'generator.h5'}"
    summary = TRAINERS["dcgan"](str(tmp_path), seed=3, init_from=other, checkpoint_every=1).run(
        **run
    )
    assert summary["init_from"] == started
    assert summary["init_from_ignored"] == {"generator": str(out / "models" / "generator.h5")}

    fresh = TRAINERS["dcgan"](str(tmp_path), seed=3, checkpoint_every=1, resume=False)
    assert fresh.run(max_steps=0, batch_size=2)["init_from"] == {}
    assert not (tmp_path / "init_from.json").exists()


def test_the_cli_flag_fine_tunes_legacy_generators_one_step_and_refuses_in_one_line(
    tmp_path, capsys
):
    path = legacy("contrib_generator")
    fruit = make_fruit_sample(str(tmp_path / "fruit"), n_train=2, n_test=1, size=16)
    argv = ["--data-dir", fruit, "--img-size", "16", "--gf", "8", "--df", "4", "--max-steps", "1"]
    argv += ["--sample-interval", "0", "--checkpoint-every", "0", "--init-from"]
    gan = cyclegan.main([*argv, f"g_AB={path},g_BA={path}", "--output-dir", str(tmp_path / "run")])
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["steps"] == 1 and summary["init_from"] == {"g_AB": path, "g_BA": path}
    # Started from the file's kernels, then moved by one Adam(2e-4) step: each by about 2e-4.
    kernels = [np.asarray(w) for w in load_model(path).weights if w.name == "kernel"]
    for g in (gan.g_AB, gan.g_BA):
        trained = [np.asarray(w) for w in g.weights if w.name == "kernel"]
        moved = [np.abs(a - b).max() for a, b in zip(trained, kernels, strict=True)]
        assert all(0 < m < 1e-3 for m in moved), (g.name, moved)
    capsys.readouterr()

    with pytest.raises(SystemExit) as exit_info:
        cyclegan.main([*argv, f"g_AB={path}", "--norm", "instance", "--output-dir", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2 and len(err) == 1
    assert err[0].startswith(f"error: --init-from g_AB={path}: the file does not fit g_AB")
