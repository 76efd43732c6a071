"""keras_gans.latent: slerp, the walk and arithmetic grids, class interpolation, the command line.

Tiny generators (8x8 images, z of 8) saved as ``.h5`` / ``.keras`` go through ``python -m
keras_gans.latent``: the grids hold the expected images, the interpolation endpoints are the
generator's own images of the endpoints, and bad input is one line with exit code 2.
"""

import keras
import numpy as np
import pytest
from keras import layers
from PIL import Image

from keras_gans import cgan, latent
from keras_gans.saving import save_model

Z, SIZE = 8, 8


def _save(model, tmp_path, fmt="h5"):
    return save_model(model, str(tmp_path / model.name), formats=(fmt,))[0]


def _unconditional():
    return cgan.build_generator(Z, img_size=SIZE, base_filters=4, name="g_uncond")


def _conditional(n_classes=3):
    return cgan.build_generator(
        Z, n_classes=n_classes, img_size=SIZE, base_filters=4, embedding_dim=4, name="g_cond"
    )


def _keras_gan_cgan(n_classes=3):
    """Keras-GAN ``cgan``'s generator graph: z * Flatten(Embedding(label)) -> an MLP."""
    z = keras.Input((Z,), name="noise")
    label = keras.Input((1,), dtype="int32", name="label")
    e = layers.Flatten()(layers.Embedding(n_classes, Z)(label))
    x = layers.Dense(SIZE * SIZE, activation="tanh")(layers.Multiply()([z, e]))
    return keras.Model([z, label], layers.Reshape((SIZE, SIZE, 1))(x), name="g_kerasgan")


def _one_hot_conditional(n_classes=3):
    """A conditional G whose class is one-hot encoded (no Embedding): nothing to interpolate."""
    z = keras.Input((Z,))
    label = keras.Input((1,), dtype="int32")
    y = layers.CategoryEncoding(n_classes, output_mode="one_hot")(label)
    x = layers.Dense(SIZE * SIZE, activation="tanh")(layers.Concatenate()([z, y]))
    return keras.Model([z, label], layers.Reshape((SIZE, SIZE, 1))(x), name="g_onehot")


def test_slerp_meets_its_ends_and_keeps_the_norm_where_lerp_dips():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 100))
    b *= np.linalg.norm(a) / np.linalg.norm(b)  # equal norms: slerp stays on that sphere
    t = np.linspace(0, 1, 9)
    path = latent.slerp(t, a, b)
    np.testing.assert_allclose(path[0], a, atol=1e-5)
    np.testing.assert_allclose(path[-1], b, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(path, axis=1), np.linalg.norm(a), rtol=1e-5)
    # a straight line through high-dimensional Gaussian draws passes well inside (White 2016)
    assert np.linalg.norm(latent.lerp(t, a, b)[4]) < 0.8 * np.linalg.norm(a)
    # unequal norms: the norm moves monotonically from one to the other
    norms = np.linalg.norm(latent.slerp(t, a, 3 * b), axis=1)
    assert np.all(np.diff(norms) > 0) and np.isclose(norms[-1], 3 * np.linalg.norm(a), rtol=1e-5)
    np.testing.assert_allclose(latent.slerp(t, a, 2 * a), latent.lerp(t, a, 2 * a), atol=1e-5)


def test_groups_parse_into_signed_seed_lists():
    assert latent.parse_groups("1,2,3 - 4,5,6 + 7") == [(1, [1, 2, 3]), (-1, [4, 5, 6]), (1, [7])]
    assert latent.parse_groups("10-11") == [(1, [10]), (-1, [11])]
    for bad in ("", "1,2 3", "a - b", "1 - - 2", "- 1"):
        with pytest.raises(Exception, match="--groups"):
            latent.parse_groups(bad)


def test_walk_cli_on_an_unconditional_h5(tmp_path):
    g = _unconditional()
    path, out = _save(g, tmp_path), tmp_path / "walk.png"
    result = latent.main(["walk", "--model", path, "--points", "3,7,12", "--steps", "5",
                          "--output", str(out)])  # fmt: skip
    assert result["images"].shape == (2 * 5, SIZE, SIZE, 1)
    width, height = Image.open(out).size
    assert 1.5 < width / height < 3.5  # 2 rows of 5 cells
    saved = np.load(tmp_path / "walk.npz")["z"]
    ends = latent.latent_points([3, 7, 12], Z)
    np.testing.assert_allclose(saved[[0, 4, 9]], ends, atol=1e-5)  # the rows pass the points
    expected = np.asarray(g(ends[:1], training=False))[0]
    np.testing.assert_allclose(result["images"][0], expected, atol=1e-5)
    rows = latent.main(["walk", "--model", path, "--rows", "3", "--steps", "4",
                        "--output", str(tmp_path / "random.png")])  # fmt: skip
    assert rows["images"].shape[0] == 12 and (tmp_path / "random.png").exists()
    gen = latent.Generator(path)  # the Python API reads the file too
    assert (gen.name, gen.latent_dim, gen.conditional, gen.n_classes) == (path, Z, False, None)


def test_arithmetic_cli_draws_the_signed_sum_of_group_means(tmp_path):
    path = _save(_unconditional(), tmp_path, "keras")
    result = latent.main(["arithmetic", "--model", path, "--groups", "1,2,3 - 4,5 + 6",
                          "--variants", "2", "--output", str(tmp_path / "a.png")])  # fmt: skip
    assert [len(r) for r in result["rows"]] == [4, 3, 2, 3]  # mean + members; result + variants
    mean = lambda seeds: latent.latent_points(seeds, Z).mean(axis=0)
    expected = mean([1, 2, 3]) - mean([4, 5]) + mean([6])
    np.testing.assert_allclose(result["z"][0], expected, atol=1e-5)
    assert 0 < np.abs(result["z"][1:] - expected).max() <= latent.NOISE
    assert (tmp_path / "a.png").exists() and (tmp_path / "a.npz").exists()


@pytest.mark.parametrize("build", [_conditional, _keras_gan_cgan], ids=["cgan", "keras_gan"])
def test_class_walk_interpolates_the_label_embedding(tmp_path, build, capsys):
    g = build()
    path = _save(g, tmp_path)
    result = latent.main(["walk", "--model", path, "--classes", "0,2", "--rows", "2",
                          "--steps", "5", "--output", str(tmp_path / "c.png")])  # fmt: skip
    assert result["interpolated"] and result["images"].shape == (10, SIZE, SIZE, 1)
    assert "cannot be interpolated" not in capsys.readouterr().out
    z = result["z"][5:6]  # the second row's z
    ends = [np.asarray(g([z, np.full((1, 1), c, np.int32)], training=False))[0] for c in (0, 2)]
    np.testing.assert_allclose(result["images"][5], ends[0], atol=1e-5)
    np.testing.assert_allclose(result["images"][9], ends[1], atol=1e-5)
    middle = result["images"][7]
    assert np.abs(middle - ends[0]).max() > 1e-4 and np.abs(middle - ends[1]).max() > 1e-4
    walk = latent.main(["walk", "--model", path, "--rows", "3", "--steps", "3",
                        "--output", str(tmp_path / "w.png")])  # fmt: skip
    assert walk["labels"].tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]  # row i: class i mod 3


def test_a_label_without_embedding_gives_the_same_z_across_classes(tmp_path, capsys):
    g = _one_hot_conditional()
    path = _save(g, tmp_path)
    args = ["walk", "--model", path, "--classes", "0,1", "--rows", "2", "--output",
            str(tmp_path / "c.png")]  # fmt: skip
    with pytest.raises(SystemExit) as err:  # the class count is not in the model
        latent.main(args)
    assert err.value.code == 2 and "--n-classes" in capsys.readouterr().err
    result = latent.main([*args, "--n-classes", "3"])
    assert "cannot be interpolated" in capsys.readouterr().out
    assert not result["interpolated"] and result["cols"] == 3
    assert result["labels"].tolist() == [0, 1, 2, 0, 1, 2]
    np.testing.assert_array_equal(result["z"][0], result["z"][2])


def test_bad_input_is_one_line(tmp_path, capsys):
    uncond = _save(_unconditional(), tmp_path)
    cases = [
        (["walk", "--model", str(tmp_path / "missing.h5")], "no such model file"),
        (["walk", "--model", "tests/fixtures/legacy/contrib_generator.h5"], "not a generator"),
        (["walk", "--model", uncond, "--label", "1"], "unconditional"),
        (["walk", "--model", uncond, "--classes", "0,1"], "unconditional"),
        (["walk", "--model", uncond, "--points", "4"], "two seeds"),
        (["arithmetic", "--model", uncond, "--groups", "1,x"], "--groups"),
        (["walk", "--model", _save(_conditional(), tmp_path), "--label", "5"], "not one of"),
    ]
    for argv, message in cases:
        with pytest.raises(SystemExit) as err:
            latent.main([*argv, "--output", str(tmp_path / "x.png")])
        lines = capsys.readouterr().err.strip().splitlines()
        assert err.value.code == 2 and len(lines) == 1 and message in lines[0], (argv, lines)
