"""keras_gans.metrics and keras_gans.translation_score: formulas on known Gaussian features,
extractors, the CLI (and its one-line errors), the translation score.

All offline: tiny random Keras conv nets stand in for InceptionV3, which is never downloaded.
"""

import json
import os

import keras
import numpy as np
import pytest
import scipy.linalg

from data_loaders.images import save_image
from keras_gans import metrics as M
from keras_gans import translation_score as T


def gaussian(n, d, seed, shift=0.0, scale=1.0):
    return np.random.default_rng(seed).normal(size=(n, d)) * scale + shift


def direct_fid(a, b):
    """The FID formula written out with scipy's matrix square root (as in pytorch-fid)."""
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2.0 * covmean)


def tiny_net(size=16, channels=3, seed=0, name="tiny"):
    init = keras.initializers.GlorotUniform(seed=seed)
    return keras.Sequential(
        [
            keras.Input((size, size, channels)),
            keras.layers.Conv2D(8, 3, strides=2, activation="tanh", kernel_initializer=init),
            keras.layers.Conv2D(6, 3, activation="tanh", kernel_initializer=init, name="feat"),
            keras.layers.GlobalAveragePooling2D(name="pool"),
            keras.layers.Dense(5, kernel_initializer=init, name="logits"),
        ],
        name=name,
    )


def random_images(n, seed, size=16, offset=0.0):
    x = np.random.default_rng(seed).uniform(-1.0, 1.0, size=(n, size, size, 3))
    return np.clip(x + offset, -1.0, 1.0).astype(np.float32)


# ----------------------------------------------------------------------------- formulas


def test_fid_of_a_set_with_itself_is_zero():
    a = gaussian(400, 12, seed=0)
    assert abs(M.fid_from_features(a, a)) < 1e-8


@pytest.mark.parametrize(
    "shift, scale",
    [(0.0, 1.0), (0.7, 1.0), (0.0, 2.0), (-0.5, 0.3)],
    ids=["same", "mean", "cov", "both"],
)
def test_fid_matches_direct_numpy_formula(shift, scale):
    a = gaussian(500, 8, seed=1)
    mix = np.eye(8) + 0.3 * np.random.default_rng(2).normal(size=(8, 8))
    b = gaussian(500, 8, seed=3, shift=shift, scale=scale) @ mix
    assert M.fid_from_features(a, b) == pytest.approx(direct_fid(a, b), rel=1e-6, abs=1e-9)


def test_frechet_distance_closed_form_on_known_gaussians():
    mu1, mu2 = np.zeros(4), np.array([1.0, -2.0, 0.0, 0.5])
    v1, v2 = np.array([1.0, 2.0, 0.5, 3.0]), np.array([4.0, 2.0, 0.1, 1.0])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(v1) - np.sqrt(v2)) ** 2)
    got = M.frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2))
    assert got == pytest.approx(expected, rel=1e-10)
    # a mean shift alone adds exactly its squared norm
    assert M.frechet_distance(mu1, np.diag(v1), mu2, np.diag(v1)) == pytest.approx(5.25)


def test_kid_matches_the_unbiased_estimator_written_out():
    x, y = gaussian(12, 5, seed=4), gaussian(12, 5, seed=5, shift=0.5)
    k = lambda u, v: (u @ v / 5 + 1.0) ** 3
    m = len(x)
    off = [(i, j) for i in range(m) for j in range(m) if i != j]
    expected = (
        sum(k(x[i], x[j]) for i, j in off) / (m * (m - 1))
        + sum(k(y[i], y[j]) for i, j in off) / (m * (m - 1))
        - 2.0 * sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / m**2
    )
    mean, std = M.kid_from_features(x, y, num_subsets=3, subset_size=m)
    assert mean == pytest.approx(expected, rel=1e-10)
    assert std == pytest.approx(0.0, abs=1e-12)  # full-size subsets are permutations


@pytest.mark.parametrize("precompute", [True, False])
def test_kid_subsets_are_the_estimator_on_random_subsets(monkeypatch, precompute):
    monkeypatch.setattr(M, "KID_PRECOMPUTE_MAX", 3000 if precompute else 0)
    a, b = gaussian(40, 6, seed=8), gaussian(30, 6, seed=9, shift=0.3)
    rng, values = np.random.default_rng(5), []
    for _ in range(4):
        i, j = rng.choice(40, 10, replace=False), rng.choice(30, 10, replace=False)
        values.append(M.mmd2_unbiased(a[i], b[j]))
    got = M.kid_from_features(a, b, num_subsets=4, subset_size=10, seed=5)
    assert got == pytest.approx((np.mean(values), np.std(values)), rel=1e-9)


def test_kid_is_unbiased_and_grows_with_a_shift():
    a = gaussian(600, 16, seed=6)
    kid = lambda shift: M.kid_from_features(a, gaussian(600, 16, seed=7, shift=shift), 10, 200)
    same, same_std = kid(0.0)
    # the unbiased estimator centres on 0; keeping the kernel diagonal would add ~2 E[k(x,x)] / m
    bias = 2 * np.mean((np.sum(a**2, 1) / 16 + 1) ** 3) / 200
    assert abs(same) < min(3 * same_std, 0.2 * bias)
    values = [same] + [kid(s)[0] for s in (0.25, 0.5, 1.0)]
    assert values == sorted(values) and values[1] > 20 * abs(same)


def test_inception_score_of_uniform_predictions_is_one():
    mean, std = M.inception_score(np.full((100, 10), 0.1), splits=10)
    assert mean == pytest.approx(1.0) and std == pytest.approx(0.0, abs=1e-12)
    # confident and evenly spread over 10 classes: IS = 10
    one_hot = np.eye(10)[np.arange(100) % 10]
    assert M.inception_score(one_hot, splits=5)[0] == pytest.approx(10.0)


# ----------------------------------------------------------------------------- extractors


def test_generative_evaluator_with_a_keras_model():
    model = tiny_net()
    real = random_images(48, seed=0)
    ev = M.GenerativeEvaluator(real, extractor=model, metrics=("fid", "kid", "is"), max_images=100)
    assert ev.real_features.shape == (48, 5)
    same = ev(real)
    assert set(same) == {"fid", "kid", "kid_std", "is", "is_std"}
    assert same["fid"] < 1e-6 and same["is"] >= 1.0
    fresh, shifted = ev(random_images(48, seed=1)), ev(random_images(48, seed=2, offset=0.6))
    assert shifted["fid"] > 5 * fresh["fid"] and shifted["kid"] > fresh["kid"]
    # fake images larger than the model input, and gray ones, are resized / tiled
    assert np.isfinite(ev(random_images(20, seed=3, size=24)[..., :1])["fid"])
    # max_images caps both sides
    assert M.GenerativeEvaluator(real, model, ("fid",), max_images=10).real_features.shape[0] == 10


def test_model_file_and_layer_spec(tmp_path):
    path = str(tmp_path / "net.h5")
    tiny_net(name="saved").save(path)
    ext = M.FeatureExtractor(f"{path}:feat")
    feats = ext(random_images(7, seed=0))
    assert feats.shape == (7, 6)  # spatial map averaged over space
    assert M.FeatureExtractor(path)(random_images(3, seed=0)).shape == (3, 5)
    with pytest.raises(ValueError, match="no layer 'nope'"):
        M.FeatureExtractor(f"{path}:nope")


def test_inception_is_built_from_keras_with_its_preprocessing(monkeypatch, tmp_path):
    seen = {}

    def fake_inception(include_top=True, weights="imagenet", input_shape=None, pooling=None):
        seen.update(include_top=include_top, weights=weights, shape=input_shape)
        inp = keras.Input(input_shape or (None, None, 3))  # as Keras: free size without top
        out = keras.layers.GlobalAveragePooling2D()(inp)
        return keras.Model(inp, keras.layers.Softmax()(out) if include_top else out)

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(keras.applications, "InceptionV3", fake_inception)
    ext = M.FeatureExtractor("inception")
    assert seen == {"include_top": False, "weights": "imagenet", "shape": (299, 299, 3)}
    assert ext.input_size == (299, 299)
    feats = ext(np.zeros((2, 32, 32, 3), np.float32))  # resized to 299, mapped to [-1, 1]
    assert feats.shape == (2, 3) and np.allclose(feats, 0.0, atol=1e-6)
    cached = tmp_path / "models" / M.INCEPTION_FILES["probs"]
    cached.parent.mkdir()
    cached.write_bytes(b"x")
    probs = M.FeatureExtractor("inception", output="probs")(random_images(4, seed=0))
    assert seen == {"include_top": True, "weights": str(cached), "shape": (299, 299, 3)}
    assert np.allclose(probs.sum(1), 1.0)


def test_inception_offline_error_says_where_to_put_weights(monkeypatch, tmp_path):
    def offline(**kw):
        raise Exception("URL fetch failure: no network")

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(keras.applications, "InceptionV3", offline)
    with pytest.raises(M.InceptionWeightsError) as err:
        M.FeatureExtractor("inception")
    msg = str(err.value)
    assert M.INCEPTION_FILES["features"] in msg and "--weights" in msg and str(tmp_path) in msg
    with pytest.raises(M.InceptionWeightsError, match="missing.h5"):
        M.FeatureExtractor("inception", weights=str(tmp_path / "missing.h5"))


# ----------------------------------------------------------------------------- CLI


def write_pngs(folder, images):
    os.makedirs(folder, exist_ok=True)
    for i, img in enumerate(images):
        save_image(img, os.path.join(folder, f"{i:03d}.png"))
    return str(folder)


def test_fid_key_names_the_network():
    """Keras' ImageNet InceptionV3 is not the reference FID network: its FIDs say so in the key."""
    assert M.fid_key() == M.fid_key("inception") == "fid_keras_inception_v3"
    assert M.fid_key("/runs/d.h5:d_lrelu2") == "fid_d_h5_d_lrelu2"
    net = tiny_net(name="Small-Net")
    assert M.fid_key(net) == M.fid_key(M.FeatureExtractor(net)) == "fid_small_net"


def test_cli_fid_kid_is_on_png_folders(tmp_path, capsys):
    model_path = str(tmp_path / "net.h5")
    tiny_net(name="cli").save(model_path)
    real = write_pngs(tmp_path / "real", random_images(24, seed=0))
    fake = write_pngs(tmp_path / "fake", random_images(24, seed=1, offset=0.6))
    common = ["--extractor", f"{model_path}:pool", "--batch-size", "10"]
    out = str(tmp_path / "out" / "fid.json")
    result = M.main(["fid", "--real", real, "--fake", real, *common, "--output", out])
    fid = "fid_net_h5_pool"  # the key names the network: no bare "fid"
    assert result[fid] < 1e-6 and result["n_real"] == 24 and "fid" not in result
    with open(out) as f:
        assert json.load(f) == result
    assert json.loads(capsys.readouterr().out)[fid] == result[fid]
    assert M.main(["fid", "--real", real, "--fake", fake, *common])[fid] > 1e-3
    kid = M.main(["kid", "--real", real, "--fake", fake, *common, "--subset-size", "10"])
    assert set(kid) >= {"kid", "kid_std"} and kid["kid"] > 0
    ext = ["--extractor", model_path, "--max-images", "20"]
    score = M.main(["is", "--fake", fake, *ext, "--splits", "2"])
    assert score["n_fake"] == 20 and score["is"] >= 1.0
    with pytest.raises(SystemExit):
        M.main(["fid", "--fake", fake])  # --real is required


def _offline_inception(monkeypatch, tmp_path):
    def offline(**kw):
        raise Exception("URL fetch failure: no network")

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setattr(keras.applications, "InceptionV3", offline)


@pytest.mark.parametrize(
    "case, expected",
    [
        ("offline", "cannot load the InceptionV3 ImageNet weights (download failed; offline?)"),
        ("weights", "InceptionV3 weights file not found"),
        ("folder", "image folder not found"),
        ("layer", "has no layer 'nope'"),
    ],
)
def test_cli_known_failures_are_one_error_line_and_exit_2(
    monkeypatch, tmp_path, capsys, case, expected
):
    _offline_inception(monkeypatch, tmp_path)  # no test reaches the network
    real = write_pngs(tmp_path / "real", random_images(2, seed=0))
    model = str(tmp_path / "net.keras")
    if case == "layer":
        tiny_net().save(model)
    argv = {
        "offline": ["fid", "--real", real, "--fake", real],
        "weights": ["is", "--fake", real, "--weights", str(tmp_path / "none.h5")],
        "folder": ["kid", "--real", str(tmp_path / "nowhere"), "--fake", real],
        "layer": ["fid", "--real", real, "--fake", real, "--extractor", f"{model}:nope"],
    }[case]
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        M.main(argv)
    assert exit_.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], lines
    if case == "offline":  # the hint: which file, and where to put it
        assert M.INCEPTION_FILES["features"] in lines[0] and "--weights FILE" in lines[0]
        assert str(tmp_path / "keras" / "models") in lines[0]


# ----------------------------------------------------------------------------- translation


def toy_domains(n, seed, size=16):
    """A: dark images with a bright blob; B = the true mapping of A, its negative."""
    rng = np.random.default_rng(seed)
    a = np.full((n, size, size, 3), -0.8, np.float32)
    for img, (r, c) in zip(a, rng.integers(2, size - 6, size=(n, 2))):
        img[r : r + 4, c : c + 4] = 0.8
    a += rng.normal(0.0, 0.05, a.shape).astype(np.float32)
    return a, -a


def test_translation_score_perfect_translator_vs_identity():
    real_A, _ = toy_domains(64, seed=0)
    _, real_B = toy_domains(64, seed=1)
    test_A, _ = toy_domains(24, seed=2)
    _, test_B = toy_domains(24, seed=3)
    clf = T.train_domain_classifier(real_A, real_B, epochs=6, size=16)  # trained once, reused
    kw = dict(real_A=real_A, real_B=real_B, test_A=test_A, test_B=test_B, classifier=clf)
    perfect = T.translation_score(lambda x: -x, lambda x: -x, **kw)
    assert perfect["classifier_accuracy"] >= 0.95 and perfect["test_accuracy"] >= 0.95
    assert perfect["a_to_b"] >= 0.9 and perfect["b_to_a"] >= 0.9
    identity = T.translation_score(lambda x: x, lambda x: x, **kw)
    assert identity["a_to_b"] <= 0.1 and identity["b_to_a"] <= 0.1
    assert identity["translation_score"] <= 0.1 < 0.9 <= perfect["translation_score"]
    one_way = T.translation_score(keras.layers.Lambda(lambda x: -x), None, **kw)
    assert "b_to_a" not in one_way and one_way["translation_score"] == one_way["a_to_b"]


def test_cli_translation_on_folders(tmp_path):
    a, b = toy_domains(30, seed=4)[0], toy_domains(30, seed=5)[1]
    dirs = {k: write_pngs(tmp_path / k, v) for k, v in dict(a=a, b=b, fa=-b, fb=-a).items()}
    out = str(tmp_path / "t.json")
    args = ["--real-a", dirs["a"], "--real-b", dirs["b"], "--fake-a", dirs["fa"]]
    args += ["--fake-b", dirs["fb"], "--size", "16", "--epochs", "6", "--output", out]
    result = M.main(["translation", *args])
    assert result["a_to_b"] >= 0.9 and result["b_to_a"] >= 0.9
    with open(out) as f:
        assert json.load(f)["translation_score"] == result["translation_score"]
