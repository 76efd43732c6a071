"""Autoencoders (keras_gans.autoencoder): the networks, the denoising corruption, the grid, the
reconstruction-error scores on a toy one-class task, and the CLI on AnoGAN's split."""

import csv
import os

import numpy as np
import pytest
from sklearn import metrics as skm

from keras_gans import autoencoder, reports
from keras_gans.autoencoder import Autoencoder, ReconstructionScorer, build_decoder, build_encoder
from keras_gans.experiments import anogan_eval

SIZE = 16


def _bars(n, seed, vertical=False):
    """A bright 3-pixel bar on black at a random place: horizontal (normal) or vertical."""
    rng = np.random.default_rng(seed)
    x = np.full((n, SIZE, SIZE, 1), -1.0, np.float32)
    for i, at in enumerate(rng.integers(2, SIZE - 5, n)):
        if vertical:
            x[i, 2:-2, at : at + 3] = 1.0
        else:
            x[i, at : at + 3, 2:-2] = 1.0
    return x


def test_networks_mirror_each_other_and_refuse_a_bad_size():
    enc = build_encoder(SIZE, 1, filters=4, code_dim=8)
    dec = build_decoder(SIZE, 1, filters=4, code_dim=8)
    assert enc.output_shape == (None, 8) and dec.output_shape == (None, SIZE, SIZE, 1)
    assert enc.get_layer("encoder_conv1").filters == dec.get_layer("decoder_conv2").filters == 4
    assert enc.get_layer("encoder_conv2").filters == 8 == dec.get_layer("decoder_conv1").filters
    assert [layer.name for layer in enc.layers if "pool" in layer.name] == [
        "encoder_pool1",
        "encoder_pool2",
    ]
    with pytest.raises(ValueError, match="--img-size must be a power of two"):
        build_encoder(24)


@pytest.mark.parametrize("noise_std", [0.0, 0.3])
def test_the_update_gets_corrupted_inputs_and_clean_targets(tmp_path, noise_std):
    """Vincent et al.: x~ in, x as the target; the same step draws the same noise (resume)."""
    images = _bars(8, 0)
    ae = Autoencoder(images, filters=4, code_dim=8, noise_std=noise_std, output_dir=str(tmp_path))
    calls = []
    ae.update = lambda model, x, y: calls.append((model, x, y)) or {"loss": 0.0}
    batch = next(iter(ae.batches(4, 0, 0)))
    ae.train_step(batch)
    ((model, x, y),) = calls
    assert model is ae.autoencoder and np.array_equal(y, batch)
    if noise_std:
        diff = x - batch
        assert 0.1 < diff[np.abs(x) < 1].std() < 0.5 and x.min() >= -1 and x.max() <= 1
        np.testing.assert_array_equal(x, ae.corrupt(batch, 1, ae.step))
    else:
        assert x is batch


def test_the_grid_shows_originals_over_reconstructions(tmp_path):
    images = _bars(10, 1)
    for noise, rows in (
        (0.0, ["original", "reconstruction"]),
        (0.3, ["original", "corrupted", "reconstruction"]),
    ):
        ae = Autoencoder(
            images, filters=4, code_dim=8, noise_std=noise, output_dir=str(tmp_path / str(noise))
        )
        grid = ae.sample_grid()
        assert grid["rows"] == len(rows) and grid["row_labels"] == rows and grid["cols"] == 8
        np.testing.assert_array_equal(grid["images"][:8], images[:8])
        recon = np.asarray(ae.autoencoder(ae.corrupt(images[:8], 2), training=False))
        np.testing.assert_allclose(grid["images"][-8:], recon, atol=1e-6)


def test_trained_on_horizontal_bars_it_scores_vertical_bars_higher(tmp_path):
    """The reconstruction error separates a class it never saw (AUROC near 1); untrained, it
    does not (the two kinds have the same number of bright pixels)."""
    normal, anomalous = _bars(128, 2), _bars(32, 3, vertical=True)
    test = np.concatenate([_bars(32, 4), anomalous])
    labels = np.r_[np.zeros(32), np.ones(32)]
    ae = Autoencoder(
        normal,
        filters=8,
        code_dim=8,
        output_dir=str(tmp_path),
        seed=0,
        checkpoint_every=0,
        run_eagerly=False,
    )
    scorer = ReconstructionScorer(ae.encoder, ae.decoder, batch_size=20)
    before = skm.roc_auc_score(labels, scorer.score(test)["anomaly_score"])
    ae.run(max_steps=150, batch_size=16, sample_interval=0)
    result = scorer.score(test)
    after = skm.roc_auc_score(labels, result["anomaly_score"])
    assert after > 0.95 and after > before + 0.2, (before, after)
    np.testing.assert_allclose(result["anomaly_map"], np.abs(test - result["reconstruction"]))
    np.testing.assert_allclose(
        result["anomaly_score"], (result["anomaly_map"] ** 2).mean((1, 2, 3)), rtol=1e-5
    )
    whole = ReconstructionScorer(ae.encoder, ae.decoder).score(test)["reconstruction"]
    np.testing.assert_allclose(result["reconstruction"], whole, atol=1e-5)  # batches independent


def test_cli_train_and_score_on_anogans_split(tmp_path):
    """``train`` evaluates on exactly the held-out set AnoGAN draws with the same seed; ``score``
    on the saved models gives the same report."""
    out = str(tmp_path / "run")
    common = ["--eval-per-class", "12", "--seed", "3", "--normal-class", "7"]
    report = autoencoder.main(
        ["train", *common, "--img-size", "16", "--filters", "4", "--code-dim", "8"]
        + ["--noise-std", "0.2", "--max-steps", "3", "--batch-size", "8", "--output-dir", out]
    )
    for name in ("scores.csv", "report.json", "roc.png", "maps.png", "models/encoder.h5"):
        assert os.path.getsize(os.path.join(out, name)) > 0, name
    assert report["counts"]["test"] == {"normal": 6, "anomalous": 6}
    assert report["autoencoder"]["noise_std"] == 0.2 and report["normal_class"] == "7"
    _, test, classes = anogan_eval.load_splits(None, 16)
    expected = anogan_eval.evaluation_splits(*test, 7, 12, 3)
    with open(os.path.join(out, "scores.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    for split in ("validation", "test"):
        got = [int(r["class"]) for r in rows if r["split"] == split]
        assert got == expected[split][2].tolist()
    test_rows = [r for r in rows if r["split"] == "test"]
    labels = [r["label"] == "anomalous" for r in test_rows]
    auroc = skm.roc_auc_score(labels, [float(r["anomaly_score"]) for r in test_rows])
    assert report["auroc_test"] == pytest.approx(auroc, abs=1e-4)
    again = autoencoder.main(["score", *common, "--output-dir", out])
    assert again["auroc_test"] == pytest.approx(report["auroc_test"])
    assert reports.read_json(os.path.join(out, "report.json"))["model"].endswith("models")


def test_cli_score_without_a_train_run_is_one_error_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        autoencoder.main(["score", "--output-dir", str(tmp_path / "none")])
    assert exit_.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "no encoder.keras or .h5 in" in lines[0], lines
