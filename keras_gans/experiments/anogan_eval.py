"""AnoGAN's evaluation: labelled splits, the threshold, the report, the scores and the maps.

Schlegl et al. (IPMI 2017, Sec. 3) score images by A(x) (:mod:`keras_gans.anogan`) and report ROC
curves on labelled normal and anomalous images. The paper leaves the split and the operating point
open, and the report does not describe it; here (our choices):

* :func:`load_splits` reads MNIST (tkwoo/anogan-keras's setting) or any folder of class folders;
* :func:`evaluation_splits` draws a balanced held-out set (as many anomalous images, from all other
  classes, as normal ones), halved into validation and test;
* the threshold is chosen on validation (:func:`choose_threshold`: maximum F1 with anomalous as
  positive, or Youden's J) and reported on test (:func:`classification_report`);
* :func:`evaluate_and_write` writes ``scores.csv``, ``report.json``, ``roc.png`` and ``maps.png``
  (query, reconstruction G(z_Gamma), anomaly map |x - G(z_Gamma)|); :func:`score_folder` does the same
  for a folder of unlabelled images. Report files are written atomically (:mod:`keras_gans.reports`).

Every function takes the search as an object with the interface of :class:`keras_gans.anogan.AnoGAN`.
"""

import logging
import os
import time

import numpy as np
from sklearn import metrics as skm

from data_loaders.images import NoImagesError, list_images, load_folder, load_images, to_uint8
from data_loaders.mnist import holdout_split, load_mnist
from keras_gans import evaluation, plotting, reports, sampling
from keras_gans.errors import ConfigError
from keras_gans.saving import ModelFileError, load_model

log = logging.getLogger(__name__)

EVAL_PER_CLASS = 200  # held-out normal and anomalous images each, halved into validation / test
THRESHOLD_RULES = ("f1", "youden")
SCORES = ("anomaly_score", "residual_score", "discrimination_score")


# --- data -----------------------------------------------------------------------------------------
def load_splits(data_dir, img_size, channels=1, strict=False, report=None):
    """``(train (x, y), test (x, y), class names)`` of a labelled image set.

    ``data_dir``: ``None`` (the offline default of :func:`data_loaders.mnist.load_mnist`), any MNIST
    source it reads (IDX files, ``mnist.npz``, digit sub-folders, ``"keras"``), or any folder with
    one image sub-folder per class (read by :func:`data_loaders.images.load_folder`, split per
    class by :func:`data_loaders.mnist.holdout_split`: 30% test).
    """
    try:
        train = load_mnist(data_dir, "train", size=img_size, strict=strict, report=report)
        test = load_mnist(data_dir, "test", size=img_size, strict=strict, report=report)
        if channels != 1:
            train, test = [(np.repeat(x, channels, -1), y) for x, y in (train, test)]
        return train, test, [str(d) for d in range(10)]
    except NoImagesError:  # not MNIST: a folder of class sub-folders
        if data_dir is None or not os.path.isdir(os.fspath(data_dir)):
            raise
    names = sorted(d for d in os.listdir(data_dir) if os.path.isdir(os.path.join(data_dir, d)))
    if len(names) < 2:
        raise NoImagesError(f"{data_dir}: expected one image sub-folder per class, found {names}")
    xs = [
        load_folder(os.path.join(data_dir, n), img_size, strict=strict, report=report)
        for n in names
    ]
    x = np.concatenate([v.mean(-1, keepdims=True) if channels == 1 else v for v in xs])
    y = np.concatenate([np.full(len(v), i, np.int64) for i, v in enumerate(xs)])
    train, test = holdout_split(y, "train"), holdout_split(y, "test")
    return (x[train], y[train]), (x[test], y[test]), names


def class_index(normal_class, classes, option="--normal-class"):
    """The label of ``normal_class`` (a class name such as ``"7"`` or ``"nevus"``, or an index);
    ``option`` names it in the error."""
    if str(normal_class) in classes:
        return classes.index(str(normal_class))
    if str(normal_class).isdigit() and int(normal_class) < len(classes):
        return int(normal_class)
    raise ConfigError(f"{option} {normal_class!r} is none of the classes {classes}")


def evaluation_splits(x, y, normal, per_class=EVAL_PER_CLASS, seed=None):
    """A balanced labelled set from held-out images, halved into validation and test.

    ``per_class`` normal images and as many anomalous ones (drawn uniformly from all other classes),
    seeded; each half holds half of both. Returns ``{"validation"|"test": (x, labels, classes)}``
    with label 1 = anomalous.
    """
    rng = np.random.default_rng([0 if seed is None else seed, 7])
    normal_idx = rng.permutation(np.flatnonzero(y == normal))
    anomalous_idx = rng.permutation(np.flatnonzero(y != normal))
    n = min(per_class, len(normal_idx), len(anomalous_idx))
    if n < 2:
        raise ConfigError(
            f"the held-out set has {len(normal_idx)} normal and {len(anomalous_idx)} anomalous "
            "images; the evaluation needs at least 2 of each"
        )
    if n < per_class:
        log.warning(
            "only %d held-out images of one kind: using %d of each, not %d", n, n, per_class
        )
    normal_idx, anomalous_idx = normal_idx[:n], anomalous_idx[:n]
    half = n // 2
    splits = {}
    for name, sel in (("validation", slice(0, half)), ("test", slice(half, n))):
        idx = np.concatenate([normal_idx[sel], anomalous_idx[sel]])
        splits[name] = (x[idx], (y[idx] != normal).astype(np.int64), y[idx])
    return splits


# --- evaluation -----------------------------------------------------------------------------------
def choose_threshold(labels, scores, rule="f1"):
    """A score threshold from a labelled (validation) set; anomalous (label 1) is positive.

    ``rule="f1"``: the threshold with the highest F1; ``"youden"``: the ROC point with the highest
    Youden's J = TPR - FPR. An image is called anomalous when its score is >= the threshold.
    """
    labels, scores = np.asarray(labels), np.asarray(scores)
    if rule == "f1":
        precision, recall, thresholds = skm.precision_recall_curve(labels, scores)
        f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
        return float(thresholds[int(np.argmax(f1[:-1]))])
    if rule == "youden":
        fpr, tpr, thresholds = skm.roc_curve(labels, scores)
        best = int(np.argmax(tpr - fpr))
        return float(min(thresholds[best], np.max(scores)))  # roc_curve's first threshold is inf
    raise ConfigError(f"the threshold rule must be one of {THRESHOLD_RULES}, got {rule!r}")


def classification_report(labels, scores, threshold):
    """Precision, recall, F1, accuracy, the confusion counts at ``threshold``, and whether nearly
    every image falls on one side of it (:func:`keras_gans.evaluation.prediction_check`)."""
    labels = np.asarray(labels).astype(int)
    predicted = (np.asarray(scores) >= threshold).astype(int)
    tn, fp, fn, tp = skm.confusion_matrix(labels, predicted, labels=[0, 1]).ravel()
    return {
        "precision": float(skm.precision_score(labels, predicted, zero_division=0)),
        "recall": float(skm.recall_score(labels, predicted, zero_division=0)),
        "f1": float(skm.f1_score(labels, predicted, zero_division=0)),
        "accuracy": float(skm.accuracy_score(labels, predicted)),
        "tn": int(tn),
        "fp": int(fp),
        "fn": int(fn),
        "tp": int(tp),
        "prediction_check": evaluation.prediction_check(labels, predicted, 2),
    }


def evaluate(val_labels, val_scores, test_labels, test_scores, rule="f1"):
    """AUROC on both splits, the validation threshold, and the test metrics at that threshold."""
    threshold = choose_threshold(val_labels, val_scores, rule)
    return {
        "auroc_validation": float(skm.roc_auc_score(val_labels, val_scores)),
        "auroc_test": float(skm.roc_auc_score(test_labels, test_scores)),
        "threshold": threshold,
        "threshold_rule": {"f1": "max F1", "youden": "max Youden's J"}[rule] + " on validation",
        "test_at_threshold": classification_report(test_labels, test_scores, threshold),
    }


# --- outputs --------------------------------------------------------------------------------------
def _rgb_uint8(images):
    images = to_uint8(images)
    return np.repeat(images, 3, -1) if images.shape[-1] == 1 else images


def save_maps(path, images, result, row_labels, scale=None, titles=None):
    """Rows of query | reconstruction G(z) | anomaly map |x - G(z)| over the query (jet);
    ``titles``: other column titles (another model's reconstruction)."""
    heat = result["anomaly_map"].mean(axis=-1)
    scale = scale or float(np.percentile(heat, 99.5)) or 1.0  # one scale for all rows
    queries, recons = _rgb_uint8(images), _rgb_uint8(result["reconstruction"])
    grid = []
    for i in range(len(images)):
        overlay = plotting.overlay_heatmap(images[i], heat[i] / scale, alpha=0.6)
        grid += [queries[i], recons[i], overlay]
    titles = titles or ["query x", "reconstruction G(z)", "anomaly map |x - G(z)|"]
    return plotting.save_image_grid(np.stack(grid), path, len(images), 3, titles, row_labels)


def _take(result, idx):
    return {k: v[idx] for k, v in result.items() if k != "history"}


def _rows(result, threshold, **columns):
    """``scores.csv`` rows: ``columns`` (lists), the three scores, the call at ``threshold``."""
    rows = []
    for i in range(len(result["anomaly_score"])):
        row = {k: v[i] for k, v in columns.items()}
        row.update({k: f"{float(result[k][i]):.6g}" for k in SCORES})
        if threshold is not None:
            row["predicted"] = ("normal", "anomalous")[int(result["anomaly_score"][i] >= threshold)]
        rows.append(row)
    return rows


def evaluate_and_write(
    anogan, splits, classes, normal, output_dir, seed=None, rule="f1", extra=None
):
    """Score the validation and test splits, choose the threshold, write every artifact.

    Writes ``scores.csv`` (one row per image), ``report.json`` (settings, AUROC, threshold, test
    precision / recall), ``roc.png`` and ``maps.png`` (four normal and four anomalous test images)
    into ``output_dir``; returns the report dict.
    """
    started = time.time()
    result = anogan.score(np.concatenate([splits[s][0] for s in splits]), seed=seed)
    seconds = time.time() - started
    ends = np.cumsum([len(splits[s][0]) for s in splits])
    parts = {s: _take(result, slice(e - len(splits[s][0]), e)) for s, e in zip(splits, ends)}
    (_, val_labels, _), (x_test, test_labels, test_classes) = splits["validation"], splits["test"]
    val, test = parts["validation"], parts["test"]
    report = evaluate(val_labels, val["anomaly_score"], test_labels, test["anomaly_score"], rule)
    curves = {}
    for label, labels, scores in (
        ("test", test_labels, test["anomaly_score"]),
        ("validation", val_labels, val["anomaly_score"]),
        ("test, residual only", test_labels, test["residual_score"]),
        ("test, discrimination only", test_labels, test["discrimination_score"]),
    ):
        fpr, tpr, _ = skm.roc_curve(labels, scores)
        curves[label] = (fpr, tpr, float(skm.roc_auc_score(labels, scores)))
    history = result["history"].mean(axis=1)
    report.update(
        auroc_test_residual_only=curves["test, residual only"][2],
        auroc_test_discrimination_only=curves["test, discrimination only"][2],
        normal_class=classes[normal],
        counts={
            s: {"normal": int((v[1] == 0).sum()), "anomalous": int(v[1].sum())}
            for s, v in splits.items()
        },
        search={
            "lambda": anogan.lambda_,
            "iterations": anogan.iterations,
            "learning_rate": anogan.learning_rate,
            "feature_layer": anogan.feature_layer,
            "z_prior": anogan.z_prior,
            "batch_size": anogan.batch_size,
            "seed": seed,
            "seconds": round(seconds, 1),
            "mean_loss_first_step": float(history[0]),
            "mean_loss_last_step": float(history[-1]),
        },
        **(extra or {}),
    )
    rows = []
    for s, (_, labels, cls) in splits.items():
        rows += _rows(
            parts[s],
            report["threshold"],
            split=[s] * len(labels),
            index=list(range(len(labels))),
            **{"class": [classes[int(c)] for c in cls]},
            label=[("normal", "anomalous")[int(v)] for v in labels],
        )
    reports.write_csv(os.path.join(output_dir, "scores.csv"), rows)
    title = f"AnoGAN, normal class {classes[normal]}"
    plotting.plot_roc(curves, os.path.join(output_dir, "roc.png"), title)
    shown = np.r_[np.flatnonzero(test_labels == 0)[:4], np.flatnonzero(test_labels == 1)[:4]]
    labels = [f"{classes[int(test_classes[i])]} {test['anomaly_score'][i]:.0f}" for i in shown]
    save_maps(os.path.join(output_dir, "maps.png"), x_test[shown], _take(test, shown), labels)
    reports.write_json(os.path.join(output_dir, "report.json"), report)
    return report


def trained_prior(model):
    """The ``z_prior`` in ``summary.json`` of the run that saved ``model`` (a models folder or a
    file in one); ``"normal"`` when there is none (runs before the option, foreign models)."""
    folder = model if os.path.isdir(model) else os.path.dirname(os.path.abspath(model))
    path = os.path.join(os.path.dirname(os.path.abspath(folder)), "summary.json")
    config = reports.read_json(path).get("config", {}) if os.path.isfile(path) else {}
    return config.get("z_prior", "normal")


def _find_model(folder, stem):
    for ext in (".keras", ".h5"):
        if os.path.isfile(os.path.join(folder, stem + ext)):
            return os.path.join(folder, stem + ext)
    raise ModelFileError(f"no {stem}.keras or .h5 in {folder}")


def run_models(output_dir):
    """The ``models/`` folder of the train run in ``output_dir``; one line if there is none."""
    folder = os.path.join(output_dir, "models")
    if not os.path.isdir(folder):
        raise ModelFileError(
            f"no --model given and {output_dir} holds no trained models (no models/ folder): "
            f"run `python -m keras_gans.anogan train --output-dir {output_dir}` first, or pass --model"
        )
    return folder


def load_pair(model, discriminator=None):
    """``(generator, discriminator)`` from a models folder, or a generator file and a D file.

    ``model``: a folder holding ``generator`` and ``discriminator`` (``.keras`` or ``.h5``, as
    :class:`keras_gans.dcgan.DCGAN` saves them) or a generator file; ``discriminator``: the D file
    (default: ``discriminator`` beside the generator file, in the same format if there is one).
    """
    folder = model if os.path.isdir(model) else os.path.dirname(os.path.abspath(model))
    g_path = _find_model(model, "generator") if os.path.isdir(model) else model
    if discriminator is None:
        same = os.path.join(folder, "discriminator" + os.path.splitext(g_path)[1])
        discriminator = same if os.path.isfile(same) else _find_model(folder, "discriminator")
    log.info("generator %s, discriminator %s", g_path, discriminator)
    generator, critic = load_model(g_path), load_model(discriminator)
    sampling.check_generator(generator, g_path, conditional=False)
    shape = tuple(generator.outputs[0].shape[1:])
    if len(critic.inputs) != 1 or tuple(critic.inputs[0].shape[1:]) != shape:
        raise ConfigError(f"{discriminator} is not a discriminator of {shape} images")
    return generator, critic


def score_folder(anogan, folder, output_dir, seed=None, threshold=None, strict=False):
    """Score the unlabelled images of ``folder``: ``scores.csv``, ``maps.png``, ``report.json``."""
    x, paths = load_images(list_images(folder), anogan.image_shape[:2], strict=strict)
    x = x.mean(axis=-1, keepdims=True) if anogan.image_shape[-1] == 1 else x
    result = anogan.score(x, seed=seed)
    files = [os.path.basename(p) for p in paths]
    reports.write_csv(os.path.join(output_dir, "scores.csv"), _rows(result, threshold, file=files))
    shown = np.argsort(-result["anomaly_score"])[:8]  # the eight highest scores
    labels = [f"{files[i]} {result['anomaly_score'][i]:.0f}" for i in shown]
    save_maps(os.path.join(output_dir, "maps.png"), x[shown], _take(result, shown), labels)
    report = {"folder": folder, "images": len(x), "threshold": threshold}
    report.update(feature_layer=anogan.feature_layer, iterations=anogan.iterations)
    report.update(z_prior=anogan.z_prior)
    reports.write_json(os.path.join(output_dir, "report.json"), report)
    return result
