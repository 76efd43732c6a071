"""keras_gans.experiments.mnist_imbalance: the classifier, the oversampling arms, the config and its
command-line options, the report files (measured values apart from the quoted report result), and
keras_gans.evaluation's statistics. The cGAN itself is tests/test_cgan.py's."""

import csv
import json
import os

import numpy as np
import pytest

from keras_gans.errors import ConfigError
from keras_gans.experiments import imbalance_report, oversampling
from keras_gans.experiments import mnist_imbalance as mi

SIZE = 16
GAN_TINY = {"latent_dim": 8, "base_filters": 4, "embedding_dim": 4}


def _data(n=24, n_classes=2, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (n, SIZE, SIZE, 1)).astype(np.float32)
    return x, (np.arange(n) % n_classes).astype(np.int64)


def test_classifier_is_the_reports_small_cnn():
    c = mi.build_classifier(3)
    assert c.output_shape == (None, 3) and c.get_layer("classifier_dropout").rate == 0.3
    assert [c.get_layer(f"classifier_conv{i}").filters for i in (1, 2)] == [16, 32]
    assert c.get_layer("classifier_dense").units == 64


def test_augment_and_classic_oversampling():
    x, y = _data(6, n_classes=3)
    x[:] = -1.0
    x[:, 6:10, 6:10] = 1.0  # a square in the middle
    out = oversampling.augment(x[:2], 5, np.random.default_rng(0))
    assert out.shape == (5, SIZE, SIZE, 1)
    assert not np.allclose(out[0], x[0]) and out[:, 6:10, 6:10].mean() > 0  # moved, still there
    assert oversampling.shortfall(np.array([0, 1, 1, 1, 2, 2]), 3, 3) == {0: 2, 2: 1}
    xo, yo = oversampling.oversample_classic(x, y, {0: 4}, seed=0)
    assert len(xo) == 10 and np.bincount(yo).tolist() == [6, 2, 2]


def test_classification_metrics():
    y_true = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    y_pred = np.array([0, 0, 1, 1, 1, 1, 2, 0])
    m, cm = mi.classification_metrics(y_true, y_pred, ["1", "2", "3"], first_n=2)
    assert cm == [[2, 2, 0], [0, 2, 0], [1, 0, 1]]
    assert m["accuracy"] == pytest.approx(5 / 8)
    assert (m["recall_1"], m["recall_2"], m["recall_3"]) == (0.5, 1.0, 0.5)
    assert m["precision_1"] == pytest.approx(2 / 3)
    assert m["balanced_accuracy"] == pytest.approx(2 / 3)
    assert m["first2_correct"] == 5
    assert [m[f"first2_correct_{d}"] for d in "123"] == [2, 2, 1]  # digit by digit


def test_seed_002_comparison_puts_quoted_and_measured_side_by_side():
    """The report's digit-level result (quoted) beside ours (measured) and the full test set."""
    runs = {
        arm: [
            {"seed": s, "first10_correct": 20 + s + k, "first10_correct_1": s + k,
             "first10_correct_2": 10, "first10_correct_3": 10 - s}
            for s in (0, 2)
        ]
        for k, arm in enumerate(("baseline", "gan"))
    }  # fmt: skip
    ci = lambda mean: {"mean": mean, "half_width": None, "n": 2}
    summary = {
        arm: {"accuracy": ci(0.5 + k / 10), **{f"recall_{d}": ci(k + d / 10) for d in (1, 2, 3)}}
        for k, arm in enumerate(("baseline", "gan"))
    }
    setting = {"counts_used": {"1": 1, "2": 300, "3": 300}, "arms": ["baseline", "gan"],
               "seeds": [0, 2], "test_images": {"1": 1135, "2": 1032, "3": 1010}}  # fmt: skip
    lines = imbalance_report.comparison_table(
        {"setting": setting, "runs": runs, "summary": summary}
    )
    rows = {line.split(" | ")[0]: line.strip("| ").split(" | ") for line in lines[2:]}
    assert "(quoted)" in rows["| digit"][1] and "(measured)" in rows["| digit"][3]
    assert rows["| 1"] == ["1", "4/10", "7/10", "1.0/10 [0-2]", "2.0/10 [1-3]",
                           "0.100 of 1135", "1.100 of 1135"]  # fmt: skip
    assert rows["| 2"][1:5] == ["10/10", "10/10", "10/10", "10/10"]
    assert rows["| 3"][1:3] == ["9/10", "9/10"] and rows["| 3"][3] == "9.0/10 [8-10]"
    assert rows["| all"][:5] == ["all", "23/30", "26/30", "21.0/30 [20-22]", "22.0/30 [21-23]"]
    # Other digits than the report's: nothing quoted.
    setting["counts_used"] = {"1": 1, "2": 300, "3": 300, "4": 300}
    assert "4/10" not in "\n".join(imbalance_report.comparison_table(
        {"setting": {**setting, "test_images": {**setting["test_images"], "4": 982}},
         "runs": {a: [{**r, "first10_correct_4": 9} for r in v] for a, v in runs.items()},
         "summary": {a: {**m, "recall_4": ci(0.9)} for a, m in summary.items()}}
    ))  # fmt: skip


def test_counts_and_config_errors_name_the_option():
    assert mi.parse_counts("1,300,300", [1, 2, 3]) == {1: 1, 2: 300, 3: 300}
    assert mi.parse_counts("3:5, 1:2", [1, 3]) == {1: 2, 3: 5}
    for text, digits in (("1,2", [1, 2, 3]), ("1:2,4:2", [1, 2]), ("a,b", [1, 2])):
        with pytest.raises(ConfigError, match="--counts"):
            mi.parse_counts(text, digits)
    config = mi.ImbalanceConfig()
    assert config.counts == mi.COUNTS and config.seeds == mi.SEEDS
    setting = config.setting()
    assert setting["classifier_epochs"] == mi.CLASSIFIER_EPOCHS and "epochs" not in setting
    assert setting["gan_steps"] == mi.GAN_STEPS and "runtime" not in setting
    bad = {
        "--digits": {"digits": (1, 1)},
        "--counts": {"digits": (1, 2)},
        "--arms": {"arms": ("gan",)},
        "--gan ": {"gan": "wgan"},
        "--balanced-batches": {"gan": "unconditional", "gan_options": {"balanced_batches": True}},
        "--seeds": {"seeds": ()},
        "--gan-steps": {"gan_steps": 0},
        "--batch-size": {"batch_size": 0},
    }
    for option, kwargs in bad.items():
        with pytest.raises(ConfigError, match=option):
            mi.ImbalanceConfig(**kwargs)


def test_cli_options_mean_what_they_mean_elsewhere(monkeypatch, tmp_path):
    """--seeds is a list, --epochs / --batch-size the classifier's, --gan-* the GAN's."""
    seen = {}

    def fake_run(config, train, test, source=None):
        seen["config"], seen["source"] = config, source
        return {}

    monkeypatch.setattr(mi, "run_experiment", fake_run)
    monkeypatch.setattr(mi, "format_summary", lambda report: "")
    mi.main(["--seeds", "3,5", "--epochs", "2", "--batch-size", "16", "--gan-steps", "7",
             "--gan-batch-size", "4", "--digits", "0,1", "--counts", "2,40", "--gan",
             "unconditional", "--arms", "baseline,gan", "--checkpoint-every", "0",
             "--output-dir", str(tmp_path)])  # fmt: skip
    c = seen["config"]
    assert c.seeds == (3, 5) and (c.epochs, c.batch_size) == (2, 16)
    assert (c.gan_steps, c.gan_batch_size) == (7, 4) and c.counts == {0: 2, 1: 40}
    assert c.arms == ("baseline", "gan") and c.gan == "unconditional"
    assert c.runtime["checkpoint_every"] == 0 and c.output_dir == str(tmp_path)
    mi.main(["--seeds", "4", "--output-dir", str(tmp_path)])
    assert seen["config"].seeds == (4,)  # one seed, not four


def test_run_experiment_writes_its_report(tmp_path):
    train, test = _data(40, seed=1), _data(20, seed=2)
    config = mi.ImbalanceConfig(
        digits=(0, 1), counts={0: 2, 1: 12}, gan_steps=2, gan_batch_size=4, sample_interval=0,
        gan_options=GAN_TINY, seeds=(7,), epochs=1, output_dir=str(tmp_path),
        runtime={"checkpoint_every": 0},
    )  # fmt: skip
    report = mi.run_experiment(config, train, test, source="random arrays")
    for name in ("report.json", "runs.csv", "report.md", "metrics.png",
                 "images/gan_seed7.png", "images/classic_seed7.png",
                 "gan/seed_7/models/generator.keras"):  # fmt: skip
        assert os.path.exists(tmp_path / name), name
    saved = json.loads((tmp_path / "report.json").read_text())
    s = saved["setting"]
    assert s["counts_used"] == {"0": 2, "1": 12} and s["target_count"] == 12
    assert s["seeds"] == [7] and s["source"] == "random arrays" and s["classifier_epochs"] == 1
    assert s["test_images"] == {"0": 10, "1": 10}
    assert {arm: [r["train_size"] for r in runs] for arm, runs in saved["runs"].items()} == {
        "baseline": [14],
        "gan": [24],
        "classic": [24],
    }
    for arm in ("baseline", "gan", "classic"):
        accuracy = saved["summary"][arm]["accuracy"]
        assert accuracy["n"] == 1 and accuracy["half_width"] is None  # one seed: no interval
        assert accuracy["mean"] == saved["runs"][arm][0]["accuracy"]
        assert np.sum(saved["confusion_matrices"][arm][0]) == 20
    assert set(saved["differences"]) == {"gan - baseline", "classic - baseline", "gan - classic"}
    # The report's own result is quoted under one key, never beside the measured values.
    assert saved["reported_in_paper"] == imbalance_report.REPORTED_IN_PAPER
    assert saved["reported_in_paper"]["quoted"] is True
    measured = json.dumps({k: v for k, v in saved.items() if k != "reported_in_paper"})
    assert "23/30" not in measured and "26/30" not in measured
    with open(tmp_path / "runs.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["arm"], r["seed"]) for r in rows] == [
        ("baseline", "7"),
        ("gan", "7"),
        ("classic", "7"),
    ]
    markdown = (tmp_path / "report.md").read_text()
    assert "| gan - baseline |" in markdown and "23/30" not in markdown
    printed = mi.format_summary(report)
    assert "recall 0" in printed and "first 10 (measured)" in printed and "(quoted)" in printed
    assert "| 0 | - | - |" in printed  # digits 0, 1: the report's quoted figures do not apply


@pytest.mark.slow
def test_cli_two_seeds_one_gan_per_rare_digit(tmp_path):
    """The report's variant end to end on the offline digits: an unconditional GAN on the single
    rare image (fewer than a batch), two seeds, and the saved generator through ``generate``."""
    out = tmp_path / "exp"
    report = mi.main(["--digits", "0,1", "--counts", "1,40", "--gan", "unconditional",
                      "--gan-steps", "2", "--gan-batch-size", "8", "--base-filters", "4",
                      "--latent-dim", "8", "--seeds", "0,1", "--epochs", "1",
                      "--sample-interval", "0", "--checkpoint-every", "0",
                      "--output-dir", str(out)])  # fmt: skip
    assert report["setting"]["seeds"] == [0, 1]
    assert report["setting"]["test_images"] == {"0": 53, "1": 55}
    for arm in ("baseline", "gan", "classic"):
        assert [r["train_size"] for r in report["runs"][arm]] == [
            41 if arm == "baseline" else 80
        ] * 2
        ci = report["summary"][arm]["recall_0"]
        assert ci["n"] == 2 and ci["half_width"] is not None
    model = out / "gan" / "seed_1" / "digit_0" / "models" / "generator.h5"
    paths = mi.main(
        ["generate", "--model", str(model), "--n", "2", "--output", str(tmp_path / "png")]
    )
    assert len(paths) == 2 and all(os.path.exists(p) for p in paths)


def test_a_classifier_answering_one_digit_is_flagged():
    """A baseline that calls every image "2" is flagged in report.json, report.md and the printed
    summary; a working arm is not, and a difference built on the flagged arm says so."""
    from keras_gans.evaluation import prediction_check

    y = np.repeat([0, 1, 2], 12)
    names = ["1", "2", "3"]
    predictions = {"baseline": np.ones_like(y), "gan": np.where(np.arange(36) % 6 == 0, 1, y)}
    runs, confusion, checks = {}, {}, {}
    for arm, pred in predictions.items():
        runs[arm], confusion[arm], checks[arm] = [], [], []
        for seed in (0, 1):
            metrics, cm = mi.classification_metrics(y, pred, names)
            runs[arm].append({"seed": seed, "train_size": 30, **metrics})
            confusion[arm].append(cm)
            checks[arm].append({"seed": seed, **prediction_check(y, pred, 3)})
    setting = {"source": "toy", "digits": [1, 2, 3], "counts_used": {"1": 1, "2": 10, "3": 10},
               "target_count": 10, "gan": "conditional", "gan_steps": 1, "classifier_epochs": 1,
               "seeds": [0, 1], "test_images": {"1": 12, "2": 12, "3": 12}, "confidence": 0.95,
               "arms": ["baseline", "gan"]}  # fmt: skip
    report = imbalance_report.build_report(setting, runs, confusion, checks)
    assert report["degenerate"] == {"baseline": [0, 1], "gan": []}
    assert report["summary"]["baseline"]["accuracy"]["degenerate_runs"] == 2
    assert report["summary"]["gan"]["accuracy"]["degenerate_runs"] == 0
    assert report["differences"]["gan - baseline"]["recall_1"]["degenerate_runs"] == 2
    markdown = imbalance_report.format_markdown(report)
    assert "| baseline | DEGENERATE in 2 run(s): 0.333 +/- 0.000 |" in markdown
    assert "| gan | 0.889 +/- 0.000 |" in markdown  # 4 of 36 wrong
    printed = imbalance_report.format_summary(report)
    assert printed.count("a degenerate classifier") == 2 and "seed 1: 100%" in printed
    assert json.loads(json.dumps(report))["prediction_checks"]["gan"][0]["degenerate"] is False
