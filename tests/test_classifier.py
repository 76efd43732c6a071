"""The CNN evaluation harness: leak-free splits, class weights, metrics, training, CLI artifacts."""

import hashlib
import json
import logging
import os

import numpy as np
import pytest
from sklearn import metrics as skm

from data_loaders.images import save_image
from keras_gans import classifier as C
from keras_gans.evaluation import classification_metrics

SIZE = 32  # the smallest size the report's three valid-conv blocks allow comfortably


def _toy(n_mel=40, n_nev=90, seed=0):
    """Tiny uint8 images with planted leaks: pixel duplicates under other ids, shared lesions."""
    rng = np.random.default_rng(seed)
    labels = np.array([0] * n_mel + [1] * n_nev)
    images = rng.integers(0, 256, (len(labels), 6, 6, 3), dtype=np.uint8)
    for src, dst in [(0, 5), (1, 7), (50, 60), (51, 99), (52, 100)]:  # same class duplicates
        images[dst] = images[src]
    lesions = [f"L{i}" for i in range(len(labels))]
    for a, b in [(2, 3), (4, 8), (70, 71), (72, 73)]:  # two photos of one lesion
        lesions[b] = lesions[a]
    return images, labels, lesions


def _digest(img):
    return hashlib.sha1(img.tobytes()).hexdigest()


def test_test_split_never_overlaps_training_or_validation():
    images, labels, lesions = _toy()
    ids = np.array([f"ISIC_{i:07d}" for i in range(len(labels))])
    groups = C.leakage_groups(images, lesions)
    tests = []
    for seed in range(4):
        split = C.split_indices(labels, groups, test_per_class=15, val_fraction=0.2, seed=seed)
        tr, va, te = split["train"], split["val"], split["test"]
        assert sorted(np.concatenate([tr, va, te])) == list(range(len(labels)))
        for a, b in [(tr, va), (tr, te), (va, te)]:
            assert not set(ids[a]) & set(ids[b])
            assert not {_digest(images[i]) for i in a} & {_digest(images[i]) for i in b}
            assert not {lesions[i] for i in a} & {lesions[i] for i in b}
        assert np.bincount(labels[te]).tolist() == [15, 15]  # balanced
        val_counts = np.bincount(labels[va])
        rest = np.bincount(labels[np.concatenate([tr, va])])
        np.testing.assert_allclose(val_counts / rest, 0.2, atol=0.05)  # stratified
        tests.append(te)
    assert all(np.array_equal(tests[0], t) for t in tests)  # chosen once, whatever the seed


def test_test_set_is_capped_by_what_exists(caplog):
    labels = np.array([0] * 10 + [1] * 100)
    with caplog.at_level(logging.WARNING):
        split = C.split_indices(labels, test_per_class=500)
    assert np.bincount(labels[split["test"]]).tolist() == [5, 5]
    assert "capped at 5" in caplog.text


def test_class_weights_follow_the_split():
    images, labels, lesions = _toy()
    split = C.split_indices(labels, C.leakage_groups(images, lesions), test_per_class=15)
    train = labels[split["train"]]
    n, counts = len(train), np.bincount(train)
    auto = C.class_weights(train, 2, "auto")
    assert auto == pytest.approx({0: n / (2 * counts[0]), 1: n / (2 * counts[1])})
    assert auto[0] > auto[1]  # melanoma is the rarer class here
    # The report's "1:14": majority : minority, from the reference (real) training labels.
    assert C.class_weights(train, 2, "1:14") == {1: 1.0, 0: 14.0}
    flipped = np.where(train == 0, 1, 0)
    assert C.class_weights(flipped, 2, "1:14") == {0: 1.0, 1: 14.0}
    extra = np.concatenate([train, np.zeros(500, int)])  # synthetic melanomas outnumber nevi now
    assert C.class_weights(extra, 2, "1:14", reference_labels=train) == {1: 1.0, 0: 14.0}
    named = C.class_weights(train, 2, "melanoma=8,nevus=1", class_names=("melanoma", "nevus"))
    assert named == {0: 8.0, 1: 1.0}
    assert C.class_weights(train, 2, "none") is None
    with pytest.raises(ValueError):
        C.class_weights(train, 2, "1:2:3")


def test_metrics_equal_scikit_learn_on_a_known_case():
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1])  # 0 = melanoma (positive), 1 = nevus
    p_mel = np.array([0.9, 0.8, 0.4, 0.6, 0.1, 0.2, 0.7, 0.3, 0.05, 0.45])
    probs = np.stack([p_mel, 1 - p_mel], 1)
    m = classification_metrics(y, probs, positive=0)
    # By hand: predicted melanoma = p > 0.5 -> tp 3, fn 1, fp 1, tn 5.
    assert m["confusion_matrix"] == [[3, 1], [1, 5]]
    assert m["sensitivity"] == pytest.approx(3 / 4)
    assert m["specificity"] == pytest.approx(5 / 6)
    assert m["accuracy"] == pytest.approx(8 / 10)
    assert m["balanced_accuracy"] == pytest.approx((3 / 4 + 5 / 6) / 2)
    y_pred = probs.argmax(1)
    assert m["accuracy"] == skm.accuracy_score(y, y_pred)
    assert m["balanced_accuracy"] == skm.balanced_accuracy_score(y, y_pred)
    assert m["roc_auc"] == skm.roc_auc_score(y == 0, p_mel)
    assert m["roc_auc"] == pytest.approx(21 / 24)  # 3 of 24 (mel, nev) pairs misordered


def test_report_architecture_and_augmentation():
    model = C.build_classifier(128)
    convs = [layer for layer in model.layers if layer.name.endswith("_conv")]
    assert [c.filters for c in convs] == [32, 64, 128]
    assert model.get_layer("fc").units == 512
    assert model.output_shape == (None, 2)
    assert model.get_layer("flatten").output.shape[-1] == 14 * 14 * 128  # valid padding at 128
    with pytest.raises(ValueError):
        C.build_classifier(16)
    aug = C.build_augmentation(seed=0)
    assert [layer.name for layer in aug.layers] == ["rotation", "shear", "zoom", "flip", "shift"]
    x = np.random.default_rng(0).integers(0, 256, (8, SIZE, SIZE, 3), dtype=np.uint8)
    plain = np.concatenate([b[0] for b in C.make_dataset(x, np.zeros(8, int), 2, 4)])
    np.testing.assert_allclose(plain, x / 255.0, atol=1e-6)  # validation / test: untouched
    augmented = np.concatenate([b[0] for b in C.make_dataset(x, np.zeros(8, int), 2, 4, None, aug)])
    assert np.abs(augmented - x / 255.0).mean() > 0.01


def _sample(size=SIZE):
    from data_loaders.isic import load_isic

    return load_isic(None, img_size=size, value_range=(0.0, 1.0))


@pytest.mark.slow
def test_classifier_beats_chance_on_the_sample():
    from data_loaders.images import to_uint8

    data = _sample()
    x, y = to_uint8(data.images, (0.0, 1.0)), data.labels
    split = C.split_indices(y, C.leakage_groups(x, data.lesion_ids), test_per_class=40)
    tr, va, te = split["train"], split["val"], split["test"]
    model, history = C.train_classifier(
        (x[tr], y[tr]),
        (x[va], y[va]),
        class_weight=C.class_weights(y[tr], 2),
        epochs=5,
        batch_size=16,
        bn_momentum=0.9,  # a few steps per epoch: moving statistics must catch up quickly
    )
    m = classification_metrics(y[te], C.predict_proba(model, x[te]), positive=0)
    assert len(history["loss"]) <= 5
    assert m["balanced_accuracy"] > 0.75, m
    assert m["roc_auc"] > 0.85, m


def _tiny_dcgan(path, seed):
    import keras

    from keras_gans.dcgan import build_generator
    from keras_gans.saving import save_model

    keras.utils.set_random_seed(seed)
    return save_model(build_generator(8, 16, 3, 4), path, formats=("h5",))[0]


def test_synthetic_sources(tmp_path):
    import keras

    from keras_gans.biggan import build_generator
    from keras_gans.saving import save_model

    folder = tmp_path / "fakes"
    rng = np.random.default_rng(0)
    for i in range(3):
        save_image(
            rng.integers(0, 256, (20, 20, 3), dtype=np.uint8), folder / "melanoma" / f"{i}.png"
        )
    source = C.SyntheticSource(str(folder), ("melanoma", "nevus"))
    assert source.classes() == ("melanoma",)
    x, y = source.sample({"melanoma": 5, "nevus": 5}, SIZE, seed=0)  # capped at what exists
    assert x.shape == (3, SIZE, SIZE, 3) and x.dtype == np.uint8 and y.tolist() == [0, 0, 0]

    g1, g2 = _tiny_dcgan(str(tmp_path / "g_mel"), 1), _tiny_dcgan(str(tmp_path / "g_nev"), 2)
    source = C.SyntheticSource(f"melanoma={g1},nevus={g2}", ("melanoma", "nevus"))
    x, y = source.sample({"melanoma": 2, "nevus": 3}, SIZE, seed=0)
    assert x.shape == (5, SIZE, SIZE, 3) and y.tolist() == [0, 0, 1, 1, 1]
    with pytest.raises(ValueError, match="conditional"):
        C.SyntheticSource(g1, ("melanoma", "nevus"))

    keras.utils.set_random_seed(0)
    cond = build_generator(img_size=16, ch=4, latent_dim=12, attention_res=None)
    path = save_model(cond, str(tmp_path / "g_ema"), formats=("h5",))[0]
    source = C.SyntheticSource(path, ("melanoma", "nevus"))
    x, y = source.sample({"melanoma": 2, "nevus": 2}, SIZE, seed=1)
    assert x.shape == (4, SIZE, SIZE, 3) and y.tolist() == [0, 0, 1, 1]
    assert not np.array_equal(x[0], x[2])


@pytest.mark.slow
def test_cli_writes_every_artifact(tmp_path):
    g1, g2 = _tiny_dcgan(str(tmp_path / "g_mel"), 1), _tiny_dcgan(str(tmp_path / "g_nev"), 2)
    out = tmp_path / "run"
    # fmt: off
    report = C.main([
        "--synthetic", f"melanoma={g1},nevus={g2}", "--n-synthetic", "melanoma=30,nevus=10",
        "--seeds", "0", "--epochs", "1", "--img-size", str(SIZE), "--test-per-class", "40",
        "--batch-size", "32", "--no-augment", "--output-dir", str(out),
    ])
    # fmt: on
    for name in ["report.json", "report.md", "roc.png", "confusion_real.png",
                 "confusion_real_synthetic.png", "predictions.npz"]:  # fmt: skip
        assert (out / name).stat().st_size > 0, name
    models = sorted(p.name for p in (out / "models").iterdir())
    assert models == ["real_seed0.h5", "real_synthetic_seed0.h5"]
    saved = json.loads((out / "report.json").read_text())
    assert saved["summary"] == json.loads(json.dumps(report["summary"]))
    assert saved["data"]["test_counts"] == {"melanoma": 40, "nevus": 40}
    diff = saved["differences"]["real+synthetic - real"]
    assert set(diff) == set(C.SCALAR_METRICS)  # one seed: no interval (tested below)
    for real, mixed in zip(saved["runs"]["real"], saved["runs"]["real+synthetic"]):
        assert real["seed"] == mixed["seed"] and real["val_counts"] == mixed["val_counts"]
        assert mixed["synthetic_counts"] == {"melanoma": 30, "nevus": 10}
        for c in ("melanoma", "nevus"):  # synthetic images join the training split only
            assert (
                mixed["train_counts"][c] == real["train_counts"][c] + mixed["synthetic_counts"][c]
            )
        for run in (real, mixed):  # "auto" weights are the balanced weights of that training split
            n, counts = sum(run["train_counts"].values()), run["train_counts"]
            expected = {c: n / (2 * counts[c]) for c in counts}
            assert run["class_weight"] == pytest.approx(expected)
    table = (out / "report.md").read_text()
    assert "| balanced_accuracy |" in table and "real+synthetic - real" in table
    assert os.path.exists(out / saved["runs"]["real"][0]["model"])
    # `split` writes the GAN training pool: everything but this very test set.
    pool = tmp_path / "pool"
    counts = C.main(
        ["split", "--img-size", str(SIZE), "--test-per-class", "40", "--output", str(pool)]
    )
    written = {p.stem for c in ("melanoma", "nevus") for p in (pool / c).iterdir()}
    assert len(written) == sum(counts.values()) == 320 - 80
    assert not written & set(saved["data"]["test_ids"])
    assert (pool / "test_ids.txt").read_text().split() == saved["data"]["test_ids"]


def test_report_gives_intervals_and_paired_differences(tmp_path):
    from types import SimpleNamespace

    data = SimpleNamespace(
        class_names=("melanoma", "nevus"), labels=np.array([0, 0, 1, 1]), ids=list("abcd"), root="x"
    )
    acc = {"real": [0.70, 0.74, 0.72], "real+synthetic": [0.73, 0.78, 0.74]}
    runs = {}
    for arm, values in acc.items():
        runs[arm] = [
            {
                "seed": seed,
                "metrics": {m: v for m in C.SCALAR_METRICS},
                "confusion_matrix": [[1, 1], [0, 2]],
                "train_counts": {"melanoma": 3, "nevus": 9},
                "synthetic_counts": {},
                "val_counts": {"melanoma": 1, "nevus": 2},
                "class_weight": None,
                "epochs_run": 5,
                "best_epoch": 3,
                "roc": (np.array([0.0, 0.5, 1.0]), np.array([0.0, 1.0, 1.0])),
            }
            for seed, v in enumerate(values)
        ]
    settings = {"img_size": 32, "seeds": [0, 1, 2], "epochs": 5, "batch_size": 4}
    settings.update(class_weight="auto", augment=True, synthetic="fakes")
    report = C.assemble_report(settings, data, runs, "melanoma", np.array([0, 2]))
    real = report["summary"]["real"]["accuracy"]
    assert real["mean"] == pytest.approx(0.72) and real["low"] < 0.72 < real["high"]
    diff = report["differences"]["real+synthetic - real"]["accuracy"]
    assert diff["mean"] == pytest.approx(0.03)  # mean of the per-seed differences .03, .04, .02
    assert diff["low"] == pytest.approx(0.03 - 4.302653 * 0.01 / np.sqrt(3), abs=1e-5)
    assert diff["better"] == 3 and 0 < diff["p_value"] < 0.05
    C.write_outputs(report, runs, str(tmp_path))
    table = (tmp_path / "report.md").read_text()
    row = "| accuracy | 0.720 [0.670, 0.770] | 0.750 [0.684, 0.816] | +0.030 [0.005, 0.055] |"
    assert row in table
    assert json.loads((tmp_path / "report.json").read_text())["data"]["test_ids"] == ["a", "c"]
