"""AnoGAN: anomaly scores and anomaly maps by a latent search through a DCGAN of normal images.

Schlegl, Seeböck, Waldstein, Schmidt-Erfurth and Langs, "Unsupervised Anomaly Detection with
Generative Adversarial Networks to Guide Marker Discovery", IPMI 2017 (arXiv:1703.05921), as the
fourth report explains it. A DCGAN (:mod:`keras_gans.dcgan`) learns only normal images. For a query
image x, G and D are frozen and a latent z, drawn at random, is moved by gradient descent so that
G(z) matches x; what the generator cannot reproduce is anomalous. Paper, Sec. 2.2 and 2.3:

* residual loss        L_R(z) = sum |x - G(z)|
* discrimination loss  L_D(z) = sum |f(x) - f(G(z))|, f an intermediate layer of D (the paper's
  "improved discrimination loss based on feature matching")
* total loss           L(z) = (1 - lambda) L_R(z) + lambda L_D(z), lambda = 0.1
* anomaly score        A(x) = (1 - lambda) R(x) + lambda D(x), both losses after Gamma = 500 steps
* anomaly map          |x - G(z_Gamma)|, the residual image

Code (vs. paper): ``z`` = z_gamma, ``features`` = f, ``lambda_`` = lambda, ``iterations`` = Gamma.

Faithful: z is a ``keras.Variable`` optimised by Adam through a ``GradientTape`` (the paper's form;
tkwoo/anogan-keras put a trainable Dense + sigmoid in front of G only because a Keras 2 input could
not be trained), L1 sums, lambda = 0.1, 500 iterations, the score is the final total loss. Choices
the paper leaves open, and changes:

* the whole batch of query images is searched at once, one z row per image; the loss is summed over
  the batch, so each row's gradient is its own image's gradient and images never interact (a batch
  mean would only rescale it; Adam is per coordinate). The last chunk is padded, not retraced;
* z starts from the DCGAN's prior N(0, 1) (the paper samples its U(-1, 1) prior); Adam's learning
  rate is our choice, 0.01 (500 steps of at most about 0.01 let each coordinate travel a few units);
* score, reconstruction and map are all taken at z_Gamma (the loss is evaluated once more after the
  last update; tkwoo reports the loss before it);
* the default feature layer f is the deepest convolutional activation of D (the last LeakyReLU with
  a 4-D output, as LeeDoYup/AnoGAN-tf uses ``h3``); tkwoo used the first pooled block. Configurable;
* MNIST runs at 32x32x1 with one digit normal (default 1, tkwoo's choice); the labelled evaluation
  set is balanced (as many normal as anomalous images), split into validation and test halves; the
  threshold maximises F1 (anomalous = positive) on validation and is reported on test;
* the search runs on one device; ``--strategy`` applies to the DCGAN training.

CLI: ``python -m keras_gans.anogan train|score`` (see :func:`main`).
"""

import argparse
import csv
import json
import logging
import os
import sys
import time

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops
from sklearn import metrics as skm
from tqdm.auto import tqdm

from data_loaders.images import NoImagesError, list_images, load_folder, load_images, to_uint8
from data_loaders.mnist import holdout_split, load_mnist
from keras_gans import plotting
from keras_gans.dcgan import DCGAN
from keras_gans.saving import ModelFileError, load_model
from keras_gans.training import add_common_args, runtime_kwargs

log = logging.getLogger(__name__)

# The paper's search settings, and tkwoo/anogan-keras's MNIST setting for the DCGAN.
NORMAL_CLASS = 1  # tkwoo: digit 1 is normal
IMG_SIZE = 32  # MNIST's 28x28 resized to the DCGAN's 32x32x1
LATENT_DIM = 100
GF = DF = 64  # keras_gans.dcgan's filters
BATCH_SIZE = 64  # tkwoo
EPOCHS = 10  # tkwoo: 10 epochs (about 1,000 steps on MNIST's 6,742 ones)
LAMBDA = 0.1  # paper
ITERATIONS = 500  # paper: Gamma = 500
LEARNING_RATE = 0.01  # Adam on z; not given in the paper
SEARCH_BATCH = 64  # images searched together
EVAL_PER_CLASS = 200  # held-out normal and anomalous images each, halved into validation / test
THRESHOLD_RULES = ("f1", "youden")
SCORES = ("anomaly_score", "residual_score", "discrimination_score")


def default_feature_layer(discriminator):
    """Name of D's deepest convolutional activation: the last LeakyReLU with a 4-D output.

    Falls back to the last layer with a 4-D output (a feature map) that is not the input.
    """
    maps = [layer for layer in discriminator.layers[1:] if len(layer.output.shape) == 4]
    lrelus = [layer for layer in maps if isinstance(layer, layers.LeakyReLU)]
    if lrelus or maps:
        return (lrelus or maps)[-1].name
    raise ValueError(
        f"{discriminator.name} has no layer with a feature-map output; pass feature_layer= "
        "the name of an intermediate layer"
    )


class AnoGAN:
    """The latent search and anomaly scoring of Schlegl et al. (2017) with a frozen G and D.

    Args:
        generator: a model z (latent_dim,) -> image, trained on normal images only.
        discriminator: its discriminator; only the ``feature_layer`` output is used.
        feature_layer: name of the intermediate D layer f of the discrimination loss;
            ``None``: :func:`default_feature_layer`.
        lambda_: weight of the discrimination loss (paper: 0.1).
        iterations: Adam steps on z per image (the paper's Gamma = 500).
        learning_rate: Adam's learning rate for z.
        batch_size: images searched together (one z row each; images do not interact).
        z_prior: ``"normal"`` (N(0, 1), the DCGAN's prior) or ``"uniform"`` (U(-1, 1), the paper's).
        jit: compile the search step with XLA.
    """

    def __init__(
        self,
        generator,
        discriminator,
        feature_layer=None,
        lambda_=LAMBDA,
        iterations=ITERATIONS,
        learning_rate=LEARNING_RATE,
        batch_size=SEARCH_BATCH,
        z_prior="normal",
        jit=False,
    ):
        if not 0.0 <= lambda_ <= 1.0:
            raise ValueError(f"lambda_ must lie in [0, 1], got {lambda_}")
        if iterations < 1 or batch_size < 1:
            raise ValueError("iterations and batch_size must be >= 1")
        if z_prior not in ("normal", "uniform"):
            raise ValueError(f"z_prior must be 'normal' or 'uniform', got {z_prior!r}")
        self.generator = generator
        self.discriminator = discriminator
        self.feature_layer = feature_layer or default_feature_layer(discriminator)
        try:
            output = discriminator.get_layer(self.feature_layer).output
        except ValueError as err:
            names = ", ".join(layer.name for layer in discriminator.layers)
            raise ValueError(
                f"{discriminator.name} has no layer {self.feature_layer!r}; its layers: {names}"
            ) from err
        self.features = keras.Model(discriminator.input, output, name="anogan_features")
        self.lambda_ = float(lambda_)
        self.iterations = int(iterations)
        self.learning_rate = float(learning_rate)
        self.batch_size = int(batch_size)
        self.z_prior = z_prior
        self.jit = bool(jit)
        self.latent_dim = int(generator.input_shape[-1])
        self.image_shape = tuple(int(d) for d in generator.output_shape[1:])
        self.z = None

    # --- the search -----------------------------------------------------------------------------
    def sample_z(self, n, seed=None):
        """The starting latents of ``n`` images; row i depends only on ``seed`` and i."""
        rng = np.random.default_rng(seed)
        if self.z_prior == "uniform":
            return rng.uniform(-1.0, 1.0, (n, self.latent_dim)).astype(np.float32)
        return rng.standard_normal((n, self.latent_dim)).astype(np.float32)

    def _build(self, batch):
        """One z variable and one Adam for ``batch`` images; the step is traced once for them."""
        self.z = keras.Variable(np.zeros((batch, self.latent_dim), np.float32), name="z")
        self.optimizer = keras.optimizers.Adam(self.learning_rate)
        self.optimizer.build([self.z])
        # No tensor-dependent Python control flow, so no autograph (it re-reads the source file).
        trace = lambda fn: tf.function(fn, jit_compile=self.jit, autograph=False)
        self._step, self._final = trace(self._search_step), trace(self._losses)
        self._features = trace(lambda x: self.features(x, training=False))

    def _reset(self, z0):
        """Start a new chunk: z at its draw, Adam's moments and step counter at zero."""
        self.z.assign(z0)
        self.optimizer.iterations.assign(0)
        for v in self.optimizer.variables:
            if tuple(v.shape) == tuple(self.z.shape):
                v.assign(ops.zeros_like(v))

    def _losses(self, x, fx):
        gz = ops.cast(self.generator(self.z, training=False), "float32")
        residual = ops.sum(ops.abs(x - gz), axis=(1, 2, 3))  # L_R = sum |x - G(z)|
        fgz = ops.cast(self.features(gz, training=False), "float32")
        diff = ops.reshape(fx - fgz, (ops.shape(fx)[0], -1))
        discrimination = ops.sum(ops.abs(diff), axis=1)  # L_D = sum |f(x) - f(G(z))|
        loss = (1.0 - self.lambda_) * residual + self.lambda_ * discrimination  # L, and A(x)
        return loss, residual, discrimination, gz

    def _search_step(self, x, fx):
        with tf.GradientTape() as tape:
            loss, residual, discrimination, _ = self._losses(x, fx)
            total = ops.sum(loss)  # a sum: d total / d z_i = d L_i / d z_i, rows independent
        grads = tape.gradient(total, [self.z])
        self.optimizer.apply_gradients(zip(grads, [self.z]))  # only z moves; G and D stay fixed
        return loss

    def score(self, images, seed=None, progress=True):
        """Search a latent for every image and score it.

        Args:
            images: float array ``(n, h, w, c)`` in the generator's range ([-1, 1]).
            seed: seeds the starting latents (``None``: random).
            progress: show a tqdm bar over the search steps.

        Returns:
            dict of NumPy arrays: ``anomaly_score``, ``residual_score``, ``discrimination_score``
            (n,), ``reconstruction`` G(z_Gamma) and ``anomaly_map`` |x - G(z_Gamma)| (n, h, w, c),
            ``z`` (n, latent_dim), ``z_init`` (the draws), ``history`` (iterations, n): the total
            loss of every image before each step.
        """
        images = np.asarray(images, dtype=np.float32)
        if images.ndim != 4 or tuple(images.shape[1:]) != self.image_shape:
            raise ValueError(
                f"images must be shaped (n, {', '.join(map(str, self.image_shape))}) to match the "
                f"generator, got {images.shape}"
            )
        n = len(images)
        if n == 0:
            raise ValueError("no images to score")
        z_init = self.sample_z(n, seed)
        batch = min(self.batch_size, n)
        if self.z is None or int(self.z.shape[0]) != batch:
            self._build(batch)
        out = {k: np.zeros(n, np.float32) for k in ("anomaly_score", "residual_score")}
        out["discrimination_score"] = np.zeros(n, np.float32)
        out["reconstruction"] = np.zeros_like(images)
        out["z"] = np.zeros_like(z_init)
        history = np.zeros((self.iterations, n), np.float32)
        chunks = range(0, n, batch)
        bar = tqdm(total=len(chunks) * self.iterations, desc="anogan search", disable=not progress)
        for start in chunks:
            stop = min(start + batch, n)
            pad = batch - (stop - start)  # repeat the last image so the traced shape never changes
            x = np.concatenate([images[start:stop], np.repeat(images[stop - 1 : stop], pad, 0)])
            z0 = np.concatenate([z_init[start:stop], np.zeros((pad, self.latent_dim), np.float32)])
            self._reset(z0)
            x = tf.constant(x)
            fx = ops.cast(self._features(x), "float32")
            losses = []
            for _ in range(self.iterations):
                losses.append(self._step(x, fx))
                bar.update(1)
            history[:, start:stop] = np.stack([np.asarray(v) for v in losses])[:, : stop - start]
            loss, residual, discrimination, gz = (np.asarray(v) for v in self._final(x, fx))
            keep = slice(0, stop - start)
            out["anomaly_score"][start:stop] = loss[keep]
            out["residual_score"][start:stop] = residual[keep]
            out["discrimination_score"][start:stop] = discrimination[keep]
            out["reconstruction"][start:stop] = gz[keep]
            out["z"][start:stop] = np.asarray(self.z.value)[keep]
        bar.close()
        out["anomaly_map"] = np.abs(images - out["reconstruction"])
        out["z_init"] = z_init
        out["history"] = history
        return out


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
    raise ValueError(f"rule must be one of {THRESHOLD_RULES}, got {rule!r}")


def classification_report(labels, scores, threshold):
    """Precision, recall, F1, accuracy and the confusion counts at ``threshold``."""
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


# --- data -----------------------------------------------------------------------------------------
def load_splits(data_dir=None, img_size=IMG_SIZE, channels=1, strict=False, report=None):
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


def class_index(normal_class, classes):
    """The label of ``normal_class`` (a class name such as ``"7"`` or ``"nevus"``, or an index)."""
    if str(normal_class) in classes:
        return classes.index(str(normal_class))
    if str(normal_class).isdigit() and int(normal_class) < len(classes):
        return int(normal_class)
    raise ValueError(f"normal class {normal_class!r} is none of the classes {classes}")


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
        raise ValueError(f"the held-out set has {len(normal_idx)} normal images; need at least 2")
    if n < per_class:
        log.warning(
            "only %d normal held-out images: using %d of each kind, not %d", n, n, per_class
        )
    normal_idx, anomalous_idx = normal_idx[:n], anomalous_idx[:n]
    half = n // 2
    splits = {}
    for name, sel in (("validation", slice(0, half)), ("test", slice(half, n))):
        idx = np.concatenate([normal_idx[sel], anomalous_idx[sel]])
        splits[name] = (x[idx], (y[idx] != normal).astype(np.int64), y[idx])
    return splits


# --- outputs --------------------------------------------------------------------------------------
def _rgb_uint8(images):
    images = to_uint8(images)
    return np.repeat(images, 3, -1) if images.shape[-1] == 1 else images


def save_maps(path, images, result, row_labels, scale=None):
    """Rows of query | reconstruction G(z) | anomaly map |x - G(z)| over the query (jet)."""
    heat = result["anomaly_map"].mean(axis=-1)
    scale = scale or float(np.percentile(heat, 99.5)) or 1.0  # one scale for all rows
    queries, recons = _rgb_uint8(images), _rgb_uint8(result["reconstruction"])
    grid = []
    for i in range(len(images)):
        overlay = plotting.overlay_heatmap(images[i], heat[i] / scale, alpha=0.6)
        grid += [queries[i], recons[i], overlay]
    titles = ["query x", "reconstruction G(z)", "anomaly map |x - G(z)|"]
    return plotting.save_image_grid(np.stack(grid), path, len(images), 3, titles, row_labels)


def _take(result, idx):
    return {k: v[idx] for k, v in result.items() if k != "history"}


def _write_csv(path, rows):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _write_json(path, data):
    with open(path, "w") as f:
        json.dump(data, f, indent=2, default=float)


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
    os.makedirs(output_dir, exist_ok=True)
    _write_csv(os.path.join(output_dir, "scores.csv"), rows)
    title = f"AnoGAN, normal class {classes[normal]}"
    plotting.plot_roc(curves, os.path.join(output_dir, "roc.png"), title)
    shown = np.r_[np.flatnonzero(test_labels == 0)[:4], np.flatnonzero(test_labels == 1)[:4]]
    labels = [f"{classes[int(test_classes[i])]} {test['anomaly_score'][i]:.0f}" for i in shown]
    save_maps(os.path.join(output_dir, "maps.png"), x_test[shown], _take(test, shown), labels)
    _write_json(os.path.join(output_dir, "report.json"), report)
    return report


def score_folder(anogan, folder, output_dir, seed=None, threshold=None, strict=False):
    """Score the unlabelled images of ``folder``: ``scores.csv``, ``maps.png``, ``report.json``."""
    x, paths = load_images(list_images(folder), anogan.image_shape[:2], strict=strict)
    x = x.mean(axis=-1, keepdims=True) if anogan.image_shape[-1] == 1 else x
    result = anogan.score(x, seed=seed)
    os.makedirs(output_dir, exist_ok=True)
    files = [os.path.basename(p) for p in paths]
    _write_csv(os.path.join(output_dir, "scores.csv"), _rows(result, threshold, file=files))
    shown = np.argsort(-result["anomaly_score"])[:8]  # the eight highest scores
    labels = [f"{files[i]} {result['anomaly_score'][i]:.0f}" for i in shown]
    save_maps(os.path.join(output_dir, "maps.png"), x[shown], _take(result, shown), labels)
    report = {"folder": folder, "images": len(x), "threshold": threshold}
    report.update(feature_layer=anogan.feature_layer, iterations=anogan.iterations)
    _write_json(os.path.join(output_dir, "report.json"), report)
    return result


# --- models and CLI -------------------------------------------------------------------------------
def _find_model(folder, stem):
    for ext in (".keras", ".h5"):
        if os.path.isfile(os.path.join(folder, stem + ext)):
            return os.path.join(folder, stem + ext)
    raise ModelFileError(f"no {stem}.keras or {stem}.h5 in {folder}")


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
    return load_model(g_path), load_model(discriminator)


def _search_args(parser):
    add = parser.add_argument
    add("--data-dir", default=None, help="MNIST source or class folders (default: offline digits)")
    add("--normal-class", default=str(NORMAL_CLASS), help=f"default: {NORMAL_CLASS}")
    add("--iterations", type=int, default=ITERATIONS, help=f"Gamma (default: {ITERATIONS})")
    add("--lambda", dest="lambda_", type=float, default=LAMBDA, help=f"default: {LAMBDA}")
    add("--learning-rate", type=float, default=LEARNING_RATE, help="Adam on z (default: 0.01)")
    add("--feature-layer", default=None, help="D layer f (default: the last conv activation)")
    add("--z-prior", default="normal", choices=("normal", "uniform"), help="default: normal")
    add("--eval-per-class", type=int, default=EVAL_PER_CLASS, help="held-out images of each kind")
    add("--threshold-rule", default="f1", choices=THRESHOLD_RULES, help="default: f1")
    return parser


def _anogan(args, generator, discriminator, batch_size):
    return AnoGAN(
        generator,
        discriminator,
        feature_layer=args.feature_layer,
        lambda_=args.lambda_,
        iterations=args.iterations,
        learning_rate=args.learning_rate,
        batch_size=batch_size,
        z_prior=args.z_prior,
        jit=args.jit,
    )


def run_train(args):
    """``train``: a DCGAN on the normal class only, then the evaluation (unless ``--no-score``)."""
    (x, y), test, classes = load_splits(args.data_dir, args.img_size, args.channels, args.strict)
    normal = class_index(args.normal_class, classes)
    x_train = x[y == normal]
    log.info("%d normal training images (class %s)", len(x_train), classes[normal])
    runtime = runtime_kwargs(args)
    name = os.path.basename(os.path.normpath(args.data_dir)) if args.data_dir else "digits"
    default_dir = os.path.join("output", "anogan", f"{name}_{classes[normal]}")
    runtime["output_dir"] = args.output_dir or default_dir
    gan = DCGAN(images=x_train, latent_dim=args.latent_dim, gf=args.gf, df=args.df, **runtime)
    epochs = args.epochs or (None if args.max_steps else EPOCHS)  # --max-steps alone: that many
    summary = gan.train(epochs, args.batch_size, args.sample_interval, args.max_steps)
    if args.no_score or not gan.is_chief:  # the search runs once, on the chief
        return summary
    splits = evaluation_splits(*test, normal, args.eval_per_class, args.seed)
    anogan = _anogan(args, gan.generator, gan.discriminator, args.search_batch_size)
    keys = ("steps", "epochs", "seconds", "batch_size", "img_size")
    gan_info = {"training_images": len(x_train), "gf": args.gf, "df": args.df}
    gan_info.update({k: summary.get(k) for k in keys}, latent_dim=args.latent_dim)
    extra = {"source": args.data_dir or "scikit-learn digits", "gan": gan_info}
    rule, out = args.threshold_rule, gan.output_dir
    return evaluate_and_write(anogan, splits, classes, normal, out, args.seed, rule, extra)


def run_score(args):
    """``score``: a saved G / D pair on the labelled held-out set, or on ``--input`` images."""
    generator, discriminator = load_pair(args.model, args.discriminator)
    anogan = _anogan(args, generator, discriminator, args.batch_size)
    output_dir = args.output_dir or os.path.join("output", "anogan", "score")
    if args.input:
        return score_folder(anogan, args.input, output_dir, args.seed, args.threshold, args.strict)
    size, channels = anogan.image_shape[0], anogan.image_shape[-1]
    _, test, classes = load_splits(args.data_dir, size, channels, args.strict)
    normal = class_index(args.normal_class, classes)
    splits = evaluation_splits(*test, normal, args.eval_per_class, args.seed)
    extra = {"source": args.data_dir or "scikit-learn digits", "model": args.model}
    rule = args.threshold_rule
    return evaluate_and_write(anogan, splits, classes, normal, output_dir, args.seed, rule, extra)


def main(argv=None):
    """``python -m keras_gans.anogan train|score [options]``; ``--help`` on each lists them."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv.pop(0) if argv and argv[0] in ("train", "score") else "train"
    prog = f"python -m keras_gans.anogan {command}"
    parser = _search_args(argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0]))
    add = parser.add_argument
    if command == "score":
        add("--model", required=True, help="a models folder, or a generator .h5 / .keras")
        add("--discriminator", default=None, help="the D file (default: beside --model)")
        add("--input", default=None, help="score this folder of unlabelled images instead")
        add("--threshold", type=float, default=None, help="with --input: flag scores >= this")
        add("--output-dir", default=None, help="default: output/anogan/score")
        add("--batch-size", type=int, default=SEARCH_BATCH, help="images searched together")
        add("--seed", type=int, default=None, help="seeds the held-out draw and the z draws")
        add("--strict", action="store_true", help="fail on an unreadable image")
        add("--jit", action="store_true", help="compile the search step with XLA")
    else:
        add("--img-size", type=int, default=IMG_SIZE, help=f"default: {IMG_SIZE}")
        add("--channels", type=int, default=1, choices=(1, 3), help="default: 1")
        add("--latent-dim", type=int, default=LATENT_DIM, help=f"default: {LATENT_DIM}")
        add("--gf", type=int, default=GF, help=f"DCGAN G filters (default: {GF})")
        add("--df", type=int, default=DF, help=f"DCGAN D filters (default: {DF})")
        add("--search-batch-size", type=int, default=SEARCH_BATCH, help="images searched together")
        add("--no-score", action="store_true", help="train the DCGAN only")
        add_common_args(parser, epochs=None, batch_size=BATCH_SIZE, sample_interval=200)
        parser.epilog = f"Without --epochs: {EPOCHS} epochs, or as many as --max-steps needs."
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    report = (run_score if command == "score" else run_train)(args)
    if isinstance(report, dict) and "auroc_test" in report:
        t = report["test_at_threshold"]
        print(
            f"AUROC test {report['auroc_test']:.3f} (validation {report['auroc_validation']:.3f}); "
            f"threshold {report['threshold']:.4g} ({report['threshold_rule']}): "
            f"precision {t['precision']:.3f}, recall {t['recall']:.3f} on test"
        )
    return report


if __name__ == "__main__":
    main()
