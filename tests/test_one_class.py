"""The one-class experiment (keras_gans.experiments.one_class): AnoGAN's split for every model, the
AUROCs behind the table, the mean over digits per seed, the cache, the quoted numbers kept apart."""

import csv
import os
import shutil

import numpy as np
import pytest
from sklearn import metrics as skm

from keras_gans import reports
from keras_gans.experiments import anogan_eval, one_class
from keras_gans.experiments.one_class import OneClassConfig

TINY = dict(
    img_size=16,
    eval_per_class=8,
    gan_steps=2,
    gan_batch_size=8,
    latent_dim=8,
    gf=4,
    df=4,
    iterations=2,
    ae_steps=2,
    ae_batch_size=8,
    filters=4,
    code_dim=4,
)


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """Two normal digits of scikit-learn's digits, AnoGAN and the denoising autoencoder (the
    plain one is the same trainer without noise), one seed, a few steps."""
    out = str(tmp_path_factory.mktemp("one_class"))
    models = ("anogan", "dae")
    config = OneClassConfig(digits=("0", "1"), models=models, seeds=(5,), output_dir=out, **TINY)
    train, test, classes = anogan_eval.load_splits(None, 16)
    return config, one_class.run_experiment(config, train, test, classes), (test, classes)


def test_every_run_scores_anogans_test_half_and_its_auroc_is_the_scores(toy):
    config, report, (test, classes) = toy
    assert set(report["runs"]) == {"anogan", "dae"}
    for model, records in report["runs"].items():
        assert [(r["digit"], r["seed"]) for r in records] == [("0", 5), ("1", 5)]
        for r in records:
            folder = os.path.join(config.output_dir, "runs", model, f"digit{r['digit']}_seed5")
            with open(os.path.join(folder, "scores.csv"), newline="") as f:
                rows = list(csv.DictReader(f))
            _, labels, cls = anogan_eval.evaluation_splits(*test, int(r["digit"]), 8, 5)["test"]
            assert [int(row["class"]) for row in rows] == cls.tolist()  # AnoGAN's test half
            scores = [float(row["anomaly_score"]) for row in rows]
            assert r["auroc"] == pytest.approx(skm.roc_auc_score(labels, scores), abs=1e-4)
            assert (r["test_normal"], r["test_anomalous"]) == (4, 4)
            assert r["steps"] == 2
    anogan_run = report["runs"]["anogan"][0]
    assert {"auroc_residual_only", "auroc_discrimination_only"} <= set(anogan_run)
    summary = report["summary"]["dae"]
    aurocs = [r["auroc"] for r in report["runs"]["dae"]]
    assert summary["per_digit"]["1"]["mean"] == aurocs[1]
    assert summary["mean_over_digits"]["mean"] == pytest.approx(np.mean(aurocs))


def test_the_report_keeps_the_quoted_numbers_apart_and_labelled(toy):
    config, report, _ = toy
    assert report["quoted"]["mean_auroc"]["AnoGAN"] == 0.913
    assert "quoted" not in report["summary"]
    check = report["anogan_vs_quoted"]
    assert check["measured"] == report["summary"]["anogan"]["mean_over_digits"]["mean"]
    assert not check["all_ten_digits"]
    text = open(os.path.join(config.output_dir, "report.md")).read()
    assert "| AnoGAN | 0.913 (quoted) |" in text and "| VAE | 0.970 (quoted) | not run |" in text
    assert "not all ten digits run" in text and "| 1 |" in text
    for name in ("report.json", "runs.csv", "auroc.png"):
        assert os.path.getsize(os.path.join(config.output_dir, name)) > 0


def test_a_rerun_reads_the_cached_runs_and_a_changed_setting_does_not(toy, monkeypatch):
    config, report, (test, classes) = toy
    train = anogan_eval.load_splits(None, 16)[0]

    def no_training(*args):
        raise AssertionError("trained again")

    monkeypatch.setattr(one_class, "run_one", no_training)
    again = one_class.run_experiment(config, train, test, classes)
    assert again["runs"] == reports.jsonable(report["runs"])
    stored = reports.read_json(
        os.path.join(config.output_dir, "runs/anogan/digit0_seed5/result.json")
    )
    assert "half" not in stored["setting"]  # runs saved before --half are still read
    changed = OneClassConfig(**{**config.__dict__, "models": ("dae",), "code_dim": 5})
    with pytest.raises(AssertionError, match="trained again"):
        one_class.run_experiment(changed, train, test, classes)


def _copied(toy, tmp_path):
    """The toy run's config, a copy of its output folder, the training and held-out splits."""
    config, _, held_out = toy
    out = str(tmp_path / "copy")
    shutil.copytree(config.output_dir, out)
    return config, out, anogan_eval.load_splits(None, 16)[0], held_out


def test_a_changed_search_reuses_the_trained_dcgan_and_a_changed_dcgan_does_not(
    toy, tmp_path, monkeypatch
):
    config, out, train, (test, classes) = _copied(toy, tmp_path)
    trained = []
    original = one_class.anogan.NormalDCGAN
    monkeypatch.setattr(
        one_class.anogan, "NormalDCGAN", lambda *a, **k: trained.append(1) or original(*a, **k)
    )
    base = {**config.__dict__, "models": ("anogan",), "output_dir": out}
    searched = one_class.run_experiment(
        OneClassConfig(**{**base, "search_learning_rate": 0.5}), train, test, classes
    )
    assert not trained  # the saved G and D were searched again
    assert len(searched["runs"]["anogan"]) == 2
    scores = lambda root: [
        row["anomaly_score"]
        for row in csv.DictReader(
            open(os.path.join(root, "runs", "anogan", "digit0_seed5", "scores.csv"))
        )
    ]
    assert scores(out) != scores(config.output_dir)  # searched at the new rate
    stored = reports.read_json(os.path.join(out, "runs", "anogan", "digit0_seed5", "result.json"))
    assert stored["setting"]["search_learning_rate"] == 0.5 and stored["steps"] == 2
    one_class.run_experiment(OneClassConfig(**{**base, "gan_steps": 3}), train, test, classes)
    assert len(trained) == 2  # one DCGAN per digit


def test_the_validation_half_is_scored_with_the_test_runs_models_in_folders_of_its_own(
    toy, tmp_path, monkeypatch
):
    config, out, train, (test, classes) = _copied(toy, tmp_path)
    report = toy[1]
    monkeypatch.setattr(one_class.anogan, "NormalDCGAN", None)  # training would raise
    monkeypatch.setattr(one_class.autoencoder, "Autoencoder", None)
    validation = OneClassConfig(**{**config.__dict__, "output_dir": out, "half": "validation"})
    checked = one_class.run_experiment(validation, train, test, classes)
    halves = anogan_eval.evaluation_splits(*test, 1, 8, 5)
    _, labels, cls = halves["validation"]
    for model in ("anogan", "dae"):
        folder = os.path.join(out, "runs", model, "digit1_seed5_validation")
        rows = list(csv.DictReader(open(os.path.join(folder, "scores.csv"))))
        assert [int(r["class"]) for r in rows] == cls.tolist() != halves["test"][2].tolist()
        auroc = skm.roc_auc_score(labels, [float(r["anomaly_score"]) for r in rows])
        assert checked["runs"][model][1]["auroc"] == pytest.approx(auroc, abs=1e-4)
        assert checked["runs"][model][1]["steps"] == 2  # the test run's models
    assert checked["anogan_vs_quoted"] is None and checked["setting"]["half"] == "validation"
    text = open(os.path.join(out, "validation", "report.md")).read()
    assert "AnoGAN's validation half" in text and "(quoted)" not in text
    assert reports.read_json(os.path.join(out, "report.json")) == reports.jsonable(report)
    test_result = os.path.join(out, "runs", "anogan", "digit1_seed5", "result.json")
    assert reports.read_json(test_result)["auroc"] == report["runs"]["anogan"][1]["auroc"]
    with pytest.raises(one_class.ConfigError, match="--half must be"):
        OneClassConfig(half="train")


def test_an_unknown_normal_digit_is_named_by_its_option(tmp_path, capsys):
    with pytest.raises(SystemExit):
        one_class.main(["--normal-digit", "12", "--output-dir", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: --normal-digit '12' is none of the classes ['0', "), err


def test_the_mean_over_digits_is_taken_per_seed_then_over_seeds():
    config = OneClassConfig(digits=("0", "1"), seeds=(0, 1), models=("cae",))
    runs = {
        "cae": [
            {"digit": "0", "seed": 0, "auroc": 0.8},
            {"digit": "1", "seed": 0, "auroc": 1.0},
            {"digit": "0", "seed": 1, "auroc": 0.6},
            {"digit": "1", "seed": 1, "auroc": 0.8},
        ]
    }
    summary = one_class.build_report(config, runs, ["0", "1"])["summary"]["cae"]
    assert summary["per_digit"]["0"]["mean"] == pytest.approx(0.7)
    assert summary["mean_over_digits"]["values"] == pytest.approx([0.9, 0.7])
    assert summary["mean_over_digits"]["half_width"] == pytest.approx(12.706 * 0.1, rel=1e-3)


def test_cli_needs_all_digits_or_one_and_known_models(capsys):
    for argv, expected in (
        ([], "one of the arguments --all-digits --normal-digit is required"),
        (["--all-digits", "--normal-digit", "3"], "not allowed with argument"),
        (["--normal-digit", "3", "--models", "cae,vae"], "--models must be some of"),
    ):
        with pytest.raises(SystemExit) as exit_:
            one_class.main(argv)
        assert exit_.value.code == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0], lines
