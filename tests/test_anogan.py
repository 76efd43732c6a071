"""AnoGAN: the latent search (only z moves, scores fall, images independent), the evaluation
(keras_gans.experiments.anogan_eval), and the CLI (train, score, one-line errors)."""

import csv
import json
import os

import numpy as np
import pytest
from PIL import Image

from keras_gans import anogan, reports
from keras_gans.anogan import AnoGAN
from keras_gans.dcgan import build_discriminator, build_generator
from keras_gans.experiments import anogan_eval
from keras_gans.saving import save_model
from tests.helpers import assert_weights_unchanged, snapshot

LATENT = 8


@pytest.fixture(scope="module")
def pair():
    """A tiny untrained DCGAN pair at 16x16x1 (the search does not care whether G is trained)."""
    g = build_generator(latent_dim=LATENT, img_size=16, channels=1, base_filters=4)
    d = build_discriminator(img_size=16, channels=1, base_filters=4)
    return g, d


def _images(n, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (n, 16, 16, 1)).astype(np.float32)


def test_search_moves_z_only_and_the_score_falls(pair):
    g, d = pair
    before = snapshot(g, d)
    search = AnoGAN(g, d, iterations=25, learning_rate=0.05, batch_size=4)
    result = search.score(_images(6), seed=3, progress=False)
    assert_weights_unchanged(before, [g, d])  # G, D (and BN moving statistics) fixed
    np.testing.assert_array_equal(result["z_init"], search.sample_z(6, seed=3))
    assert np.all(np.abs(result["z"] - result["z_init"]).max(axis=1) > 1e-3)  # every z moved
    history = result["history"]
    assert history.shape == (25, 6)
    assert np.all(history[-1] < history[0])  # every image's loss fell
    assert np.all(result["anomaly_score"] <= history[0])
    assert np.mean(np.diff(history, axis=0) <= 1e-3) > 0.9  # and mostly step by step


def test_outputs_are_consistent(pair):
    g, d = pair
    search = AnoGAN(g, d, lambda_=0.1, iterations=3)
    x = _images(3)
    r = search.score(x, seed=0, progress=False)
    assert search.feature_layer == "discriminator_lrelu2"  # the deepest conv activation
    assert r["reconstruction"].shape == r["anomaly_map"].shape == x.shape
    np.testing.assert_allclose(r["anomaly_map"], np.abs(x - r["reconstruction"]), atol=1e-6)
    np.testing.assert_allclose(r["residual_score"], r["anomaly_map"].sum(axis=(1, 2, 3)), rtol=1e-4)
    # A(x) = (1 - lambda) R(x) + lambda D(x), taken at z_Gamma (the z returned)
    expected = 0.9 * r["residual_score"] + 0.1 * r["discrimination_score"]
    np.testing.assert_allclose(r["anomaly_score"], expected, rtol=1e-5)
    np.testing.assert_allclose(g(r["z"], training=False), r["reconstruction"], atol=1e-5)
    f = search.features
    direct = np.abs(np.asarray(f(x)) - np.asarray(f(r["reconstruction"]))).sum(axis=(1, 2, 3))
    np.testing.assert_allclose(r["discrimination_score"], direct, rtol=1e-4)


def test_images_do_not_interact(pair):
    """A batch of 5 in chunks of 2 (the last one padded) scores as each image alone would."""
    g, d = pair
    x = _images(5, seed=1)
    chunked = AnoGAN(g, d, iterations=10, batch_size=2).score(x, seed=7, progress=False)
    whole = AnoGAN(g, d, iterations=10, batch_size=5).score(x, seed=7, progress=False)
    alone = AnoGAN(g, d, iterations=10).score(x[:1], seed=7, progress=False)
    for key in ("anomaly_score", "residual_score", "discrimination_score"):
        np.testing.assert_allclose(chunked[key], whole[key], rtol=1e-4)
    np.testing.assert_allclose(alone["anomaly_score"], whole["anomaly_score"][:1], rtol=1e-4)


def test_feature_layer_by_name_and_bad_inputs(pair):
    g, d = pair
    assert AnoGAN(g, d, feature_layer="discriminator_lrelu1").features.output.shape[1:] == (8, 8, 4)
    with pytest.raises(ValueError, match="no layer 'nope'.*discriminator_lrelu1"):
        AnoGAN(g, d, feature_layer="nope")
    with pytest.raises(ValueError, match="lambda_"):
        AnoGAN(g, d, lambda_=1.5)
    with pytest.raises(ValueError, match=r"\(n, 16, 16, 1\)"):
        AnoGAN(g, d, iterations=1).score(np.zeros((2, 32, 32, 1), np.float32))


def test_threshold_and_metrics():
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    scores = np.array([1.0, 2.0, 3.0, 6.0, 4.0, 5.0, 7.0, 8.0])
    assert anogan_eval.choose_threshold(labels, scores, "f1") == 4.0  # F1 8/9 at >= 4
    assert anogan_eval.choose_threshold(labels, scores, "youden") == 4.0  # J = 1 - 0.25
    report = anogan_eval.evaluate(labels, scores, labels, scores)
    assert report["auroc_test"] == pytest.approx(14 / 16)
    t = report["test_at_threshold"]
    assert (t["tp"], t["fp"], t["fn"], t["tn"]) == (4, 1, 0, 3)
    assert t["precision"] == pytest.approx(0.8) and t["recall"] == 1.0
    with pytest.raises(ValueError, match="rule"):  # a ConfigError, which is a ValueError
        anogan_eval.choose_threshold(labels, scores, "best")


def test_evaluation_splits_are_balanced_disjoint_and_seeded():
    y = np.repeat(np.arange(10), 30)
    x = np.arange(len(y), dtype=np.float32).reshape(-1, 1, 1, 1)
    splits = anogan_eval.evaluation_splits(x, y, normal=3, per_class=20, seed=0)
    val_x, val_labels, val_classes = splits["validation"]
    test_x, test_labels, _ = splits["test"]
    assert (val_labels == 0).sum() == (val_labels == 1).sum() == 10 == (test_labels == 1).sum()
    assert np.array_equal(val_labels, (val_classes != 3).astype(int))
    assert not set(val_x.ravel()) & set(test_x.ravel())
    again = anogan_eval.evaluation_splits(x, y, normal=3, per_class=20, seed=0)
    np.testing.assert_array_equal(again["test"][0], test_x)


def _toy_folder(root, n_normal=300, n_anomalous=40):
    """Normal: a bright bar on black; anomalous: its negative (plainly different)."""
    rng = np.random.default_rng(0)
    for name, n in (("normal", n_normal), ("anomalous", n_anomalous)):
        os.makedirs(os.path.join(root, name))
        for i in range(n):
            img = np.zeros((32, 32), np.uint8)
            row = rng.integers(6, 22)
            img[row : row + 4, 4:28] = 255
            img = 255 - img if name == "anomalous" else img
            Image.fromarray(img).save(os.path.join(root, name, f"{i:03d}.png"))
    return str(root)


@pytest.fixture
def saved_pair(pair, tmp_path):
    g, d = pair
    folder = tmp_path / "models"
    save_model(g, folder / "generator", formats=("keras",))
    save_model(d, folder / "discriminator", formats=("keras",))
    return str(folder)


def test_cli_scores_a_folder_with_a_saved_pair(saved_pair, tmp_path, capsys):
    images = tmp_path / "unlabelled"
    images.mkdir()
    for i in range(3):  # 20x20 RGB files, loaded at the generator's 16x16x1
        pixels = np.random.default_rng(i).integers(0, 256, (20, 20, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(images / f"{i}.png")
    out = tmp_path / "out"
    argv = ["score", "--model", saved_pair, "--input", str(images), "--iterations", "2"]
    result = anogan.main(argv + ["--threshold", "0", "--output-dir", str(out), "--seed", "1"])
    assert sorted(os.listdir(out)) == ["maps.png", "report.json", "scores.csv"]  # no temp files
    with open(out / "scores.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["file"] for r in rows] == ["0.png", "1.png", "2.png"]
    assert [float(r["anomaly_score"]) for r in rows] == pytest.approx(result["anomaly_score"], 1e-5)
    assert {r["predicted"] for r in rows} == {"anomalous"}  # every score >= threshold 0
    report = reports.read_json(out / "report.json")
    assert report["images"] == 3 and report["iterations"] == 2
    assert report["feature_layer"] == "discriminator_lrelu2"
    assert capsys.readouterr().err.count("error:") == 0


def test_score_without_model_uses_the_train_runs_models(saved_pair, tmp_path):
    """``score --output-dir RUN`` scores with RUN/models/, where ``train --output-dir RUN`` saved
    G and D, and writes its report there."""
    run = os.path.dirname(saved_pair)  # the fixture's models/ folder sits in tmp_path
    images = tmp_path / "unlabelled"
    images.mkdir()
    Image.fromarray(np.full((16, 16), 200, np.uint8)).save(images / "0.png")
    argv = ["score", "--output-dir", run, "--input", str(images), "--iterations", "1"]
    result = anogan.main(argv + ["--seed", "1"])
    assert result["anomaly_score"].shape == (1,)
    assert reports.read_json(os.path.join(run, "report.json"))["images"] == 1


def test_z_prior_is_the_same_in_training_and_search(saved_pair, tmp_path):
    """--z-prior uniform: the DCGAN's training noise is U(-1, 1), and ``score`` searches from the
    prior recorded in the run's summary.json (N(0, 1) when none is recorded)."""
    tiny = {"images": _images(8), "latent_dim": LATENT, "gf": 4, "df": 4, "checkpoint_every": 0}
    runs = {p: anogan.NormalDCGAN(output_dir=str(tmp_path / p), z_prior=p, **tiny) for p in ("normal", "uniform")}  # fmt: skip
    z = {p: gan.noise(2000, 0, 1) for p, gan in runs.items()}
    assert np.abs(z["uniform"]).max() <= 1.0 and z["uniform"].std() == pytest.approx(0.577, 0.05)
    assert np.abs(z["normal"]).max() > 2.0 and runs["uniform"].config()["z_prior"] == "uniform"
    assert anogan.trained_prior(saved_pair) == "normal"
    reports.write_json(tmp_path / "summary.json", {"config": {"z_prior": "uniform"}})
    assert anogan.trained_prior(os.path.join(saved_pair, "generator.keras")) == "uniform"
    images = tmp_path / "unlabelled"
    images.mkdir()
    Image.fromarray(np.full((16, 16), 9, np.uint8)).save(images / "0.png")
    out = tmp_path / "out"
    argv = ["score", "--model", saved_pair, "--input", str(images), "--iterations", "1"]
    result = anogan.main(argv + ["--output-dir", str(out), "--seed", "1"])
    assert reports.read_json(out / "report.json")["z_prior"] == "uniform"
    assert np.abs(result["z_init"]).max() <= 1.0
    with pytest.raises(ValueError, match="--z-prior"):
        anogan.NormalDCGAN(z_prior="cauchy", **tiny)


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--model", "{tmp}/nowhere/generator.keras"], "no discriminator.keras or .h5 in"),
        (["--model", "{models}", "--lambda", "1.5"], "--lambda (lambda_) must lie in [0, 1]"),
        (["--model", "{models}", "--feature-layer", "nope"], "has no layer 'nope'"),
        (["--iterations", "1"], "no --model given and {tmp}/out holds no trained models"),
    ],
    ids=["no-model", "lambda", "feature-layer", "no-train-run"],
)
def test_cli_known_failures_are_one_error_line_and_exit_2(
    saved_pair, tmp_path, capsys, args, expected
):
    argv = ["score", *[a.format(tmp=tmp_path, models=saved_pair) for a in args]]
    with pytest.raises(SystemExit) as exit_:
        anogan.main(argv + ["--output-dir", str(tmp_path / "out")])
    assert exit_.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    expected = expected.format(tmp=tmp_path)
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], lines
    assert not os.path.exists(tmp_path / "out")


def test_cli_train_uses_the_dcgan_trainer_with_tkwoos_defaults(tmp_path):
    """``train --no-score``: the core's loop on the normal digits only; batch 64 (tkwoo)."""
    out = tmp_path / "run"
    anogan.main(
        ["train", "--no-score", "--img-size", "16", "--gf", "4", "--df", "4", "--latent-dim", "8"]
        + ["--max-steps", "2", "--checkpoint-every", "0", "--output-dir", str(out), "--seed", "0"]
        + ["--z-prior", "uniform"]
    )
    summary = reports.read_json(out / "summary.json")
    assert summary["steps"] == 2 and summary["batch_size"] == anogan.BATCH_SIZE == 64
    assert summary["config"]["img_size"] == 16 and summary["config"]["channels"] == 1
    assert summary["config"]["z_prior"] == "uniform" == anogan.trained_prior(str(out / "models"))
    assert os.path.getsize(out / "models" / "generator.h5") > 0
    assert not os.path.exists(out / "report.json")  # --no-score: no search


@pytest.mark.slow
def test_cli_trains_scores_a_toy_set_and_rescores_from_saved_models(tmp_path, monkeypatch):
    """One short DCGAN training on normal images only; the negatives score high (AUROC ~ 1).

    With an untrained G (output ~0) both kinds would be about as far from G(z); it is the training
    on dark normal images that separates them.
    """
    monkeypatch.setenv("KERAS_GANS_RUN_EAGERLY", "0")  # 80 steps: tracing once is cheaper
    data = _toy_folder(tmp_path / "toy")
    out = str(tmp_path / "run")
    common = ["--data-dir", data, "--normal-class", "normal", "--iterations", "20"]
    common += ["--learning-rate", "0.05", "--eval-per-class", "12", "--seed", "0"]
    report = anogan.main(
        ["train", *common, "--output-dir", out, "--max-steps", "80", "--batch-size", "16"]
        + ["--gf", "8", "--df", "8", "--latent-dim", "16", "--checkpoint-every", "0"]
        + ["--sample-interval", "0"]
    )
    for name in ("scores.csv", "report.json", "roc.png", "maps.png", "models/generator.h5"):
        assert os.path.getsize(os.path.join(out, name)) > 0, name
    assert report["auroc_test"] > 0.9 and report["auroc_validation"] > 0.9
    assert report["counts"]["test"] == {"normal": 6, "anomalous": 6}
    assert report["search"]["mean_loss_last_step"] < report["search"]["mean_loss_first_step"]
    assert set(report["test_at_threshold"]) >= {"precision", "recall", "tp", "fp"}
    with open(os.path.join(out, "report.json")) as f:
        assert json.load(f)["normal_class"] == "normal"
    with open(os.path.join(out, "scores.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 24 and {r["split"] for r in rows} == {"validation", "test"}

    rescored = str(tmp_path / "rescored")
    again = anogan.main(
        ["score", *common, "--model", os.path.join(out, "models")] + ["--output-dir", rescored]
    )
    assert again["auroc_test"] == pytest.approx(report["auroc_test"])
    assert again["threshold"] == pytest.approx(report["threshold"], rel=1e-3)
    assert os.path.getsize(os.path.join(rescored, "maps.png")) > 0

    unlabelled = str(tmp_path / "unlabelled")
    anogan.main(
        ["score", "--model", os.path.join(out, "models", "generator.h5"), "--iterations", "2"]
        + ["--input", os.path.join(data, "anomalous"), "--output-dir", unlabelled]
        + ["--threshold", str(report["threshold"])]
    )
    with open(os.path.join(unlabelled, "scores.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 40 and rows[0]["file"] == "000.png" and "predicted" in rows[0]


@pytest.mark.parametrize("command", ["train", "score"])
def test_help_documents_the_paper_defaults(command, capsys):
    with pytest.raises(SystemExit):
        anogan.main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for option in ("--normal-class", "--iterations", "--lambda", "--data-dir", "--output-dir"):
        assert option in text
    assert "Gamma (default: 500)" in text and "L_D, in [0, 1] (default: 0.1)" in text
    assert ("--strategy" in text) == (command == "train")
    assert ("--model" in text) == (command == "score")


def test_a_threshold_that_calls_everything_anomalous_is_flagged():
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    scores = np.array([1.0, 2.0, 3.0, 6.0, 4.0, 5.0, 7.0, 8.0])
    assert anogan_eval.classification_report(labels, scores, 0.5)["prediction_check"]["degenerate"]
    working = anogan_eval.classification_report(labels, scores, 4.0)["prediction_check"]
    assert not working["degenerate"] and working["shares"] == pytest.approx([0.375, 0.625])
