"""The lesion harness: leak-free splits, synthetic sources, metrics, the report, the command line."""

import hashlib
import json
import logging
from types import SimpleNamespace

import keras
import numpy as np
import pytest
from sklearn import metrics as skm

from data_loaders.images import save_image
from keras_gans import classifier as C
from keras_gans import load_model
from keras_gans.errors import ConfigError, KerasGansError
from keras_gans.evaluation import classification_metrics
from keras_gans.experiments import lesion_harness as H
from keras_gans.experiments import lesion_report
from keras_gans.saving import save_model

SIZE = 24  # the smallest comfortable size for the report's CNN
CLASSES = ("melanoma", "nevus")


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


def _images_by_brightness(n, size=SIZE, seed=0):
    """uint8 images whose brightness tells the class (melanoma dark, nevus bright), and labels."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    base = np.where(labels[:, None, None, None] == 0, 80, 170)
    noise = rng.integers(-60, 60, (n, size, size, 3))
    return np.clip(base + noise, 0, 255).astype(np.uint8), labels


def _digest(img):
    return hashlib.sha1(img.tobytes()).hexdigest()


def test_test_split_never_overlaps_training_or_validation():
    images, labels, lesions = _toy()
    ids = np.array([f"ISIC_{i:07d}" for i in range(len(labels))])
    groups = H.leakage_groups(images, lesions)
    assert groups[5] == groups[0] and groups[3] == groups[2] and groups[71] == groups[70]
    assert len(set(groups.tolist())) == len(labels) - 9  # 5 duplicates + 4 shared lesions
    tests = []
    for seed in range(4):
        split = H.split_indices(labels, groups, test_per_class=15, val_fraction=0.2, seed=seed)
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
    other = H.split_indices(labels, groups, test_per_class=15, split_seed=7)["test"]
    assert not np.array_equal(other, tests[0])  # ... by the split seed


def test_test_set_is_capped_by_what_exists(caplog):
    labels = np.array([0] * 10 + [1] * 100)
    with caplog.at_level(logging.WARNING):
        split = H.split_indices(labels, test_per_class=500)
    assert np.bincount(labels[split["test"]]).tolist() == [5, 5]
    assert "capped at 5" in caplog.text


def test_class_weights_follow_the_split():
    images, labels, lesions = _toy()
    split = H.split_indices(labels, H.leakage_groups(images, lesions), test_per_class=15)
    train = labels[split["train"]]
    n, counts = len(train), np.bincount(train)
    assert C.class_weights(train, 2, "auto") == pytest.approx(
        {0: n / (2 * counts[0]), 1: n / (2 * counts[1])}
    )
    assert C.class_weights(train, 2, "1:14") == {1: 1.0, 0: 14.0}  # melanoma is rarer here


def test_metrics_equal_scikit_learn_on_a_known_case():
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1])  # 0 = melanoma (positive), 1 = nevus
    p_mel = np.array([0.9, 0.8, 0.4, 0.6, 0.1, 0.2, 0.7, 0.3, 0.05, 0.45])
    probs = np.stack([p_mel, 1 - p_mel], 1)
    m = classification_metrics(y, probs, positive=0)
    # By hand: predicted melanoma = p > 0.5 -> tp 3, fn 1, fp 1, tn 5.
    assert m["confusion_matrix"] == [[3, 1], [1, 5]]
    assert m["sensitivity"] == pytest.approx(3 / 4)
    assert m["specificity"] == pytest.approx(5 / 6)
    assert m["balanced_accuracy"] == pytest.approx((3 / 4 + 5 / 6) / 2)
    y_pred = probs.argmax(1)
    assert m["accuracy"] == skm.accuracy_score(y, y_pred) == pytest.approx(0.8)
    assert m["balanced_accuracy"] == skm.balanced_accuracy_score(y, y_pred)
    assert m["roc_auc"] == skm.roc_auc_score(y == 0, p_mel) == pytest.approx(21 / 24)


def _generator(path, seed, conditional=False):
    """A tiny generator (z of 8 -> 4x4x3 in [-1, 1]) saved as .h5; conditional: inputs [z, class]."""
    keras.utils.set_random_seed(seed)
    z = keras.Input((8,), name="z")
    inputs, h = [z], z
    if conditional:
        y = keras.Input((), dtype="int32", name="class")
        inputs.append(y)
        h = keras.layers.Concatenate()([z, keras.layers.Embedding(2, 8)(y)])
    h = keras.layers.Dense(4 * 4 * 3, activation="tanh")(keras.layers.Dense(16)(h))
    model = keras.Model(inputs, keras.layers.Reshape((4, 4, 3))(h), name="generator")
    return save_model(model, str(path), formats=("h5",))[0]


def test_synthetic_sources(tmp_path):
    folder = tmp_path / "fakes"
    rng = np.random.default_rng(0)
    for i in range(3):
        save_image(rng.integers(0, 256, (20, 20, 3), np.uint8), folder / "melanoma" / f"{i}.png")
    source = H.SyntheticSource(str(folder), CLASSES)
    assert source.classes() == ("melanoma",)
    x, y = source.sample({"melanoma": 5, "nevus": 5}, SIZE, seed=0)  # capped at what exists
    assert x.shape == (3, SIZE, SIZE, 3) and x.dtype == np.uint8 and y.tolist() == [0, 0, 0]

    g1, g2 = _generator(tmp_path / "g_mel", 1), _generator(tmp_path / "g_nev", 2)
    source = H.SyntheticSource(f"melanoma={g1}, nevus={g2}", CLASSES)
    assert source.classes() == CLASSES
    x, y = source.sample({"melanoma": 2, "nevus": 3}, SIZE, seed=0)
    assert x.shape == (5, SIZE, SIZE, 3) and x.dtype == np.uint8 and y.tolist() == [0, 0, 1, 1, 1]
    again, _ = source.sample({"melanoma": 2, "nevus": 3}, SIZE, seed=0)
    other, _ = source.sample({"melanoma": 2, "nevus": 3}, SIZE, seed=1)
    assert np.array_equal(x, again) and not np.array_equal(x, other)  # the seed draws z
    only, _ = H.SyntheticSource(f"nevus={g2}", CLASSES).sample({"melanoma": 2, "nevus": 3}, SIZE)
    assert np.array_equal(only, x[2:])  # nevus images come from the nevus generator

    cond = _generator(tmp_path / "g_ema", 3, conditional=True)
    source = H.SyntheticSource(cond, CLASSES)
    x, y = source.sample({"melanoma": 2, "nevus": 2}, SIZE, seed=1)
    assert x.shape == (4, SIZE, SIZE, 3) and y.tolist() == [0, 0, 1, 1]
    assert not np.array_equal(x[0], x[2])  # the class input changes the image


def test_bad_synthetic_specs_name_the_option(tmp_path):
    g = _generator(tmp_path / "g", 1)
    cond = _generator(tmp_path / "c", 2, conditional=True)
    (tmp_path / "empty").mkdir()
    bad = {
        f"benign={g}": "--synthetic names 'benign'",
        f"melanoma={g},nevus": "'nevus' is not CLASS=GENERATOR.h5",
        str(tmp_path / "empty"): "no class sub-folder",
        str(tmp_path / "nowhere"): "no such folder or model file",
        g: "not a conditional generator",
        f"melanoma={cond}": "is a conditional generator",
    }
    for spec, message in bad.items():
        with pytest.raises(ConfigError, match="--synthetic") as err:
            H.SyntheticSource(spec, CLASSES)
        assert message in str(err.value)
    with pytest.raises(KerasGansError, match="missing.h5"):
        H.SyntheticSource(str(tmp_path / "missing.h5"), CLASSES)


def test_counts_and_config():
    assert H.parse_counts(None, CLASSES) is None and H.parse_counts(" auto", CLASSES) is None
    assert H.parse_counts("200", CLASSES) == {"melanoma": 200, "nevus": 200}
    assert H.parse_counts("melanoma=5", CLASSES) == {"melanoma": 5, "nevus": 0}
    assert H.parse_counts({"nevus": 3}, CLASSES) == {"melanoma": 0, "nevus": 3}
    for bad in ("x", "-1", "melanoma=1.5", "benign=3", "melanoma"):
        with pytest.raises(ConfigError, match="--n-synthetic"):
            H.parse_counts(bad, CLASSES)
    config = H.HarnessConfig()
    assert (config.seeds, config.epochs, config.batch_size) == ((0, 1, 2), 50, 64)
    assert (config.test_per_class, config.val_fraction, config.split_seed) == (500, 0.2, 42)
    assert config.class_weight == "auto" and config.augment and config.bn_momentum == 0.99
    assert H.HarnessConfig(seeds=[3, "4"]).seeds == (3, 4)
    for kwargs, option in [
        ({"seeds": []}, "--seeds"),
        ({"epochs": 0}, "--epochs"),
        ({"test_per_class": 0}, "--test-per-class"),
        ({"val_fraction": 1.0}, "--val-fraction"),
    ]:
        with pytest.raises(ConfigError, match=option):
            H.HarnessConfig(**kwargs)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--class-weight", "1:2:3"], "error: --class-weight '1:2:3' needs 2 ratios"),
        (["--n-synthetic", "many"], "error: --n-synthetic 'many'"),
        (["--classes", "melanoma,benign"], "error: --classes 'melanoma,benign'"),
        (["--val-fraction", "0"], "error: --val-fraction"),
    ],
)
def test_cli_reports_a_bad_option_in_one_line(tmp_path, capsys, args, message):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_:
        H.main(["run", "--img-size", str(SIZE), "--output-dir", str(out), *args])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(message) and "Traceback" not in "".join(err)
    assert not out.exists()


def test_report_gives_intervals_and_paired_differences(tmp_path):
    data = SimpleNamespace(
        class_names=CLASSES, labels=np.array([0, 0, 1, 1]), ids=list("abcd"), root="x"
    )
    acc = {"real": [0.70, 0.74, 0.72], "real+synthetic": [0.73, 0.78, 0.74]}
    runs = {}
    for arm, values in acc.items():
        runs[arm] = [
            {
                "seed": seed,
                "metrics": {m: v for m in lesion_report.SCALAR_METRICS},
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
    report = H.assemble_report(settings, data, runs, "melanoma", np.array([0, 2]))
    real = report["summary"]["real"]["accuracy"]
    assert real["mean"] == pytest.approx(0.72) and real["low"] < 0.72 < real["high"]
    diff = report["differences"]["real+synthetic - real"]["accuracy"]
    assert diff["mean"] == pytest.approx(0.03)  # mean of the per-seed differences .03, .04, .02
    assert diff["low"] == pytest.approx(0.03 - 4.302653 * 0.01 / np.sqrt(3), abs=1e-5)
    assert diff["better"] == 3 and 0 < diff["p_value"] < 0.05
    lesion_report.write_outputs(report, runs, str(tmp_path))
    table = (tmp_path / "report.md").read_text()
    row = "| accuracy (0.5) | 0.720 [0.670, 0.770] | 0.750 [0.684, 0.816] | +0.030 [0.005, 0.055] |"
    assert row in table
    assert "python -m keras_gans.experiments.lesion_harness split" in table
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["data"]["test_ids"] == ["a", "c"] and "roc" not in saved["runs"]["real"][0]
    assert saved["summary"] == json.loads(json.dumps(report["summary"]))
    for name in ("roc.png", "confusion_real.png", "confusion_real_synthetic.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG", name
    assert not [p.name for p in tmp_path.iterdir() if "tmp" in p.name]  # atomic writes cleaned up


@pytest.mark.slow
def test_cli_runs_end_to_end_on_the_sample(tmp_path):
    """One seed x two arms, one epoch at 24 px: every file, paired runs, the GAN training pool."""
    g1, g2 = _generator(tmp_path / "g_mel", 1), _generator(tmp_path / "g_nev", 2)
    out = tmp_path / "run"
    # fmt: off
    report = H.main([
        "--synthetic", f"melanoma={g1},nevus={g2}", "--n-synthetic", "melanoma=30,nevus=10",
        "--seeds", "1", "--epochs", "1", "--img-size", str(SIZE), "--test-per-class", "40",
        "--batch-size", "32", "--no-augment", "--bn-momentum", "0.9", "--output-dir", str(out),
    ])  # no command: `run` is the default
    # fmt: on
    saved = json.loads((out / "report.json").read_text())
    assert saved["summary"] == json.loads(json.dumps(report["summary"]))
    assert saved["settings"]["seeds"] == [1] and saved["settings"]["img_size"] == SIZE
    assert saved["settings"]["n_synthetic"] == {"melanoma": 30, "nevus": 10}
    assert saved["data"]["test_counts"] == {"melanoma": 40, "nevus": 40}
    acc = saved["summary"]["real"]["accuracy"]
    assert acc["n"] == 1 and acc["low"] is None and 0 <= acc["mean"] <= 1  # one seed: no interval
    assert set(saved["differences"]["real+synthetic - real"]) <= set(lesion_report.REPORTED_METRICS)
    for real, mixed in zip(saved["runs"]["real"], saved["runs"]["real+synthetic"]):
        assert real["seed"] == mixed["seed"] and real["val_counts"] == mixed["val_counts"]
        assert mixed["synthetic_counts"] == {"melanoma": 30, "nevus": 10}
        for c in CLASSES:  # synthetic images join the training split only
            assert mixed["train_counts"][c] == real["train_counts"][c] + (
                30 if c == "melanoma" else 10
            )
        # "auto" weights: the balanced weights of the real training split, the same in both arms
        # even though 30 + 10 synthetic images change the class mix of real+synthetic.
        n, counts = sum(real["train_counts"].values()), real["train_counts"]
        assert real["class_weight"] == pytest.approx({c: n / (2 * counts[c]) for c in counts})
        assert mixed["class_weight"] == real["class_weight"]
        assert real["bn_stats"] == mixed["bn_stats"] == "recompute"  # a few steps an epoch
        for run in (real, mixed):
            assert run["epochs_run"] == run["best_epoch"] == 1
    table = (out / "report.md").read_text()
    assert "| balanced_accuracy (0.5) |" in table and "real+synthetic - real" in table
    assert "| balanced_accuracy (val. threshold) |" in table
    rows = [line.split(" | ")[:2] for line in table.splitlines() if line.startswith("| real")]
    assert rows == [["| real", "1"], ["| real+synthetic", "1"]]  # one row per run
    for name in ("roc.png", "confusion_real.png", "confusion_real_synthetic.png"):
        assert (out / name).stat().st_size > 0, name
    models = sorted(p.name for p in (out / "models").iterdir())
    assert models == ["real_seed1.h5", "real_synthetic_seed1.h5"]
    predictions = np.load(out / "predictions.npz")
    assert predictions["test_ids"].tolist() == saved["data"]["test_ids"]
    assert predictions["real_synthetic_seed1"].shape == (80, 2)
    # The saved model is the one that was scored: reloaded, it predicts the stored probabilities.
    from data_loaders.images import to_uint8
    from data_loaders.isic import load_isic

    data = load_isic(None, SIZE, value_range=(0.0, 1.0))
    index = {image_id: i for i, image_id in enumerate(data.ids)}
    test = [index[i] for i in saved["data"]["test_ids"]]
    assert predictions["y_true"].tolist() == np.asarray(data.labels)[test].tolist()
    model = load_model(out / saved["runs"]["real"][0]["model"])
    probs = C.predict_proba(model, to_uint8(data.images[test], (0.0, 1.0)))
    np.testing.assert_allclose(probs, predictions["real_seed1"], atol=1e-5)

    # `split` writes the GAN training pool: everything but this very test set.
    pool = tmp_path / "pool"
    counts = H.main(
        ["split", "--img-size", str(SIZE), "--test-per-class", "40", "--output", str(pool)]
    )
    written = {p.stem for c in CLASSES for p in (pool / c).iterdir()}
    assert len(written) == sum(counts.values()) == len(data.ids) - 80
    assert not written & set(saved["data"]["test_ids"])
    assert (pool / "test_ids.txt").read_text().split() == saved["data"]["test_ids"]


def _scored_runs(arm_probs, y_test, y_val):
    """Harness-like records from ``{arm: [(test probs, val probs) per seed]}``, scored as the
    harness scores them."""
    runs = {}
    for arm, per_seed in arm_probs.items():
        runs[arm] = []
        for seed, (p_test, p_val) in enumerate(per_seed):
            fpr, tpr, _ = skm.roc_curve(y_test == 0, p_test[:, 0])
            record = {"seed": seed, **lesion_report.score_run(y_test, p_test, y_val, p_val, 0, 2)}
            record.update(train_counts={"melanoma": 4, "nevus": 4}, synthetic_counts={})
            record.update(val_counts={"melanoma": 2, "nevus": 2}, class_weight=None)
            record.update(epochs_run=3, best_epoch=1, bn_stats="moving", roc=(fpr, tpr))
            runs[arm].append(record)
    return runs


def test_degenerate_runs_are_flagged_everywhere(tmp_path, caplog):
    """A classifier that calls every image melanoma is flagged; a working one is not."""
    rng = np.random.default_rng(0)
    y_test, y_val = np.array([0] * 20 + [1] * 20), np.array([0, 0, 1, 1])

    def probs(y, signal, bias):  # p(melanoma): higher for melanoma by `signal`, shifted by `bias`
        p = np.clip(0.5 + bias + signal * (y == 0) - signal / 2 + rng.normal(0, 0.01, len(y)), 0, 1)
        return np.stack([p, 1 - p], 1)

    constant = [(probs(y_test, 0.1, 0.4), probs(y_val, 0.1, 0.4)) for _ in range(3)]
    working = [(probs(y_test, 0.6, 0.0), probs(y_val, 0.6, 0.0)) for _ in range(3)]
    runs = _scored_runs({"real": constant, "real+synthetic": working}, y_test, y_val)
    data = SimpleNamespace(
        class_names=CLASSES, labels=np.r_[y_test, y_val], ids=[str(i) for i in range(44)], root="x"
    )
    settings = {"img_size": 32, "seeds": [0, 1, 2], "epochs": 3, "batch_size": 4}
    settings.update(class_weight="auto", augment=True, synthetic="fakes", bn_stats="moving")
    report = H.assemble_report(settings, data, runs, "melanoma", np.arange(40))
    assert report["degenerate"]["real"]["threshold_0.5"] == [0, 1, 2]
    assert report["degenerate"]["real+synthetic"] == {"threshold_0.5": [], "val_threshold": []}
    real, mixed = report["summary"]["real"], report["summary"]["real+synthetic"]
    assert real["accuracy"]["degenerate_runs"] == 3 and "degenerate_runs" not in real["roc_auc"]
    assert mixed["accuracy"]["degenerate_runs"] == 0
    diff = report["differences"]["real+synthetic - real"]
    assert diff["sensitivity"]["degenerate_runs"] == 3
    # The validation threshold re-centres the constant arm: its scores still rank the images.
    assert real["balanced_accuracy_at_val_threshold"]["mean"] > 0.9
    assert real["accuracy_at_val_threshold"]["degenerate_runs"] == 0
    lesion_report.write_outputs(report, runs, str(tmp_path))
    table = (tmp_path / "report.md").read_text()
    assert "**Warning: 3 degenerate result(s)**" in table
    assert "real, seed 0: at 0.5, 100% of the balanced test set is predicted melanoma" in table
    assert "| accuracy (0.5) | DEGENERATE in 3/3 runs: 0.500 [0.500, 0.500] | 1.000" in table
    assert "| accuracy (val. threshold) | " in table
    rows = [line for line in table.splitlines() if line.startswith("| real | ")]
    assert all("| DEGENERATE (100% melanoma) |" in row for row in rows) and len(rows) == 3
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["runs"]["real"][0]["prediction_check"]["degenerate"] is True
    assert saved["summary"]["real"]["accuracy"]["degenerate_runs"] == 3
    with caplog.at_level(logging.WARNING):
        for line in lesion_report.warning_lines(report):
            logging.getLogger("keras_gans").warning(line)
    assert caplog.text.count("degenerate classifier") == 3


def test_a_seed_reproduces_its_run_with_or_without_the_other_arm():
    """One tiny seed, augmentation on, twice: the real arm's scores match to the last bit, whether
    or not the synthetic arm ran beside it."""
    x = _images_by_brightness(72)
    data = SimpleNamespace(
        images=x[0] / 255.0,
        labels=x[1],
        ids=[f"ISIC_{i:07d}" for i in range(72)],
        lesion_ids=None,
        class_names=CLASSES,
        root="toy",
    )

    class Fakes:  # a synthetic source without generators: seeded random images
        spec = "fakes"

        def sample(self, wanted, size, seed):
            rng = np.random.default_rng(seed)
            y = np.repeat([0, 1], [wanted["melanoma"], wanted["nevus"]])
            return rng.integers(0, 256, (len(y), size, size, 3), dtype=np.uint8), y

    config = H.HarnessConfig(
        seeds=(3,), epochs=2, batch_size=8, test_per_class=12, bn_stats="moving"
    )
    alone = H.run_experiment(data, config)["runs"]["real"][0]
    paired = H.run_experiment(data, config, Fakes())["runs"]["real"][0]
    for key in ("metrics", "val_threshold", "confusion_matrix", "best_epoch", "class_weight"):
        assert alone[key] == paired[key], key


def _pipeline_argv(out, img_size="32"):
    tiny_gan = ["--gan-size", "16", "--gan-steps", "2", "--gan-filters", "4"]
    return [
        "pipeline",
        *("--img-size", img_size, "--test-per-class", "3", "--seeds", "0", "--epochs", "1"),
        *tiny_gan,
        *("--checkpoint-every", "0", "--output-dir", str(out)),
    ]


@pytest.mark.slow
def test_pipeline_trains_a_gan_per_class_on_the_pool_only_and_runs_the_harness(tmp_path):
    out = tmp_path / "pipeline"
    report = C.main(_pipeline_argv(out))
    record = json.loads((out / "pipeline.json").read_text())
    pool = {p.stem for p in (out / "pool").glob("*/*.png")}
    test_ids = set(report["data"]["test_ids"])
    assert len(test_ids) == 6 and pool and not test_ids & pool  # the GANs never saw a test image
    assert {name: run["steps"] for name, run in record["gan"]["runs"].items()} == {
        "melanoma": 2,
        "nevus": 2,
    }
    for name in ("melanoma", "nevus"):
        generator = out / f"dcgan_{name}" / "models" / "generator.h5"
        assert f"{name}={generator}" in record["synthetic"].split(",")
    assert [len(report["runs"][arm]) for arm in ("real", "real+synthetic")] == [1, 1]
    assert (out / "evaluation" / "report.md").exists()


def test_pipeline_refuses_a_classifier_size_before_training_any_gan(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        C.main(_pipeline_argv(tmp_path / "pipeline", img_size="16"))
    assert stop.value.code == 2
    assert "--img-size 16 is too small" in capsys.readouterr().err
    assert not list((tmp_path / "pipeline").glob("dcgan_*"))
