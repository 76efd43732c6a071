"""CNN evaluation harness: do GAN-made images help a melanoma / nevus classifier?

The skin-lesion report (SNU GAN project, s-seo/SNU-GAN-project ``engine/CNN``) judged its DCGAN and
BigGAN by one question: does a small CNN that tells melanoma from nevus get better when GAN images
join the real training images? This module answers it for two arms, ``real`` and
``real+synthetic``, trained from the same seeds and scored on the same held-out test set, repeated
over seeds, with a mean and 95% t-interval per metric and the paired per-seed difference between
the arms (the report compared single runs, which cannot tell a gain from noise).

Faithful to the report: 128x128 RGB scaled by 1/255; 3 x [Conv(32/64/128, 3, relu, valid) -> BN ->
MaxPool 2 -> Dropout .25] -> Flatten -> Dense 512 relu -> BN -> Dropout .5 -> Dense 2 softmax;
RMSprop(1e-3), categorical cross-entropy, batch 64, up to 50 epochs; EarlyStopping(val_loss,
patience 10); ReduceLROnPlateau(val_accuracy, factor 0.5, patience 2, min_lr 1e-5) (the notebook's
monitor; the issue names no monitor); augmentation of rotation 15 degrees, shear 0.1, zoom 0.2,
horizontal flip, width / height shift 0.1 with ``fill_mode="nearest"`` (ImageDataGenerator's
default); a balanced 500 + 500 test set chosen first; a stratified 20% validation split of the rest.

Changed, and why:

* augmentation uses Keras preprocessing layers in the ``tf.data`` pipeline (training batches only),
  not the deprecated ImageDataGenerator. ImageDataGenerator's ``shear_range`` is an angle in
  *degrees*, so the report's 0.1 sheared by at most 0.1 degrees; ``RandomShear`` gets the same
  shear, ``sin(0.1 deg)``, on the x axis. Zoom is drawn per axis, as ImageDataGenerator did;
* EarlyStopping restores the best epoch's weights (the notebook kept the last ones);
* class weights: the report states 1:14 (the notebook stored 1:8); the default here is computed
  from each arm's own training split (scikit-learn's "balanced"), and ``"1:14"`` means
  majority : minority class weight, in the report's notation;
* the test set is chosen by whole groups of images that share a lesion id or identical pixels, so
  no lesion and no duplicate image sits on both sides (ISIC holds both); the ROC AUC comes from
  probabilities (the notebook used hard labels);
* one seed drives the validation split, the initial weights, the augmentation and the synthetic
  draw; both arms share it, so the per-seed difference is a paired comparison.

A GAN that saw the test images would leak them into ``real+synthetic``; ``split`` writes the images
outside the test set for GAN training::

    python -m keras_gans.classifier split --data-dir ISIC --img-size 64 --output pool
    python -m keras_gans.dcgan --data-dir pool --class melanoma --img-size 64 --output-dir g_mel
    python -m keras_gans.dcgan --data-dir pool --class nevus --img-size 64 --output-dir g_nev
    python -m keras_gans.classifier --data-dir ISIC --img-size 64 \\
        --synthetic melanoma=g_mel/models/generator.h5,nevus=g_nev/models/generator.h5
"""

import argparse
import hashlib
import json
import logging
import math
import os
import sys

import keras
import numpy as np
import tensorflow as tf
from keras import layers
from sklearn.metrics import roc_curve
from sklearn.utils.class_weight import compute_class_weight
from tqdm import tqdm

from data_loaders.images import SkipReport, list_images, load_images, save_image, to_uint8
from keras_gans import evaluation, plotting
from keras_gans.saving import load_model, save_model

log = logging.getLogger(__name__)

# The report's settings (SNU-GAN-project engine/CNN notebooks).
IMG_SIZE = 128
FILTERS = (32, 64, 128)
DENSE = 512
LEARNING_RATE = 1e-3
BATCH_SIZE = 64
EPOCHS = 50
BN_MOMENTUM = 0.99  # Keras's default, as in the report; lower it when an epoch is a few steps
ES_PATIENCE = 10  # EarlyStopping on val_loss
LR_MONITOR = "val_accuracy"
LR_FACTOR, LR_PATIENCE, MIN_LR = 0.5, 2, 1e-5
ROTATION = 15.0  # degrees
SHEAR = 0.1  # degrees: ImageDataGenerator's shear_range is an angle
ZOOM = 0.2
SHIFT = 0.1
TEST_PER_CLASS = 500
VAL_FRACTION = 0.2
SPLIT_SEED = 42
SEEDS = (0, 1, 2)
POSITIVE = "melanoma"
ARMS = ("real", "real+synthetic")
SCALAR_METRICS = ("accuracy", "balanced_accuracy", "sensitivity", "specificity", "roc_auc")


def conv_block(x, filters, name, dropout=0.25, bn_momentum=BN_MOMENTUM):
    """Conv(3, relu, valid) -> BatchNorm -> MaxPool 2 -> Dropout, the report's repeated block."""
    x = layers.Conv2D(filters, 3, activation="relu", name=f"{name}_conv")(x)
    x = layers.BatchNormalization(momentum=bn_momentum, name=f"{name}_bn")(x)
    x = layers.MaxPooling2D(2, name=f"{name}_pool")(x)
    return layers.Dropout(dropout, name=f"{name}_dropout")(x)


def build_classifier(
    img_size=IMG_SIZE,
    channels=3,
    n_classes=2,
    filters=FILTERS,
    dense=DENSE,
    bn_momentum=BN_MOMENTUM,
):
    """The report's CNN as a named functional model; inputs in [0, 1], softmax outputs."""
    side = img_size
    for _ in filters:
        side = (side - 2) // 2
    if side < 1:
        raise ValueError(f"img_size {img_size} is too small for {len(filters)} valid conv blocks")
    inputs = keras.Input((img_size, img_size, channels), name="image")
    x = inputs
    for i, f in enumerate(filters, start=1):
        x = conv_block(x, f, f"block{i}", bn_momentum=bn_momentum)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(dense, activation="relu", name="fc")(x)
    x = layers.BatchNormalization(momentum=bn_momentum, name="fc_bn")(x)
    x = layers.Dropout(0.5, name="fc_dropout")(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="probs", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="lesion_cnn")


def build_augmentation(seed=None, rotation=ROTATION, shear=SHEAR, zoom=ZOOM, shift=SHIFT):
    """The report's ImageDataGenerator settings as Keras preprocessing layers (angles: degrees)."""
    fill = {"fill_mode": "nearest"}
    shear_factor = math.sin(math.radians(shear))
    return keras.Sequential(
        [
            layers.RandomRotation(rotation / 360.0, seed=seed, **fill, name="rotation"),
            layers.RandomShear(shear_factor, 0.0, seed=seed, **fill, name="shear"),
            layers.RandomZoom((-zoom, zoom), (-zoom, zoom), seed=seed, **fill, name="zoom"),
            layers.RandomFlip("horizontal", seed=seed, name="flip"),
            layers.RandomTranslation(shift, shift, seed=seed, **fill, name="shift"),
        ],
        name="augmentation",
    )


def class_weights(labels, n_classes, spec="auto", reference_labels=None, class_names=None):
    """``{class index: weight}`` for ``model.fit``, or ``None`` for ``spec="none"``.

    ``spec``: ``"auto"`` = scikit-learn's balanced weights ``n / (k * count)`` from ``labels`` (the
    arm's training split); ``"1:14"`` = weights from the most to the least frequent class of
    ``reference_labels`` (default ``labels``; the harness passes the real training split so both
    arms get the same weights); ``"melanoma=14,nevus=1"`` = explicit weights by class name.
    """
    spec = str(spec).strip().lower()
    if spec == "none":
        return None
    labels = np.asarray(labels)
    if spec == "auto":
        present = np.unique(labels)
        weights = compute_class_weight("balanced", classes=present, y=labels)
        out = {c: 1.0 for c in range(n_classes)}
        out.update({int(c): float(w) for c, w in zip(present, weights)})
        return out
    if "=" in spec:
        names = [n.lower() for n in (class_names or [])]
        out = {c: 1.0 for c in range(n_classes)}
        for item in spec.split(","):
            name, value = item.split("=")
            if name.strip() not in names:
                raise ValueError(f"--class-weight names {name!r}; classes are {class_names}")
            out[names.index(name.strip())] = float(value)
        return out
    values = [float(v) for v in spec.split(":")]
    if len(values) != n_classes:
        raise ValueError(f"class weight {spec!r} needs {n_classes} ratios (most to least frequent)")
    ref = np.asarray(labels if reference_labels is None else reference_labels)
    counts = np.bincount(ref, minlength=n_classes)
    order = sorted(range(n_classes), key=lambda c: (-counts[c], c))  # most frequent first
    return {c: values[rank] for rank, c in enumerate(order)}


def make_dataset(images, labels, n_classes, batch_size, weights=None, augment=None, shuffle=None):
    """A ``tf.data`` pipeline of uint8 images -> [0, 1] floats, one-hot labels, optional weights.

    ``augment`` (a Keras layer, for training batches only) is applied after batching; ``shuffle``
    (a seed) reshuffles every epoch.
    """
    onehot = np.eye(n_classes, dtype=np.float32)[np.asarray(labels)]
    tensors = (images, onehot) if weights is None else (images, onehot, weights.astype(np.float32))
    ds = tf.data.Dataset.from_tensor_slices(tensors)
    if shuffle is not None:
        ds = ds.shuffle(len(onehot), seed=shuffle, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)

    def prepare(x, *rest):
        x = tf.cast(x, tf.float32) / 255.0
        if augment is not None:
            x = augment(x, training=True)
        return (x, *rest)

    return ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def train_classifier(
    train,
    val,
    n_classes=2,
    class_weight=None,
    seed=0,
    epochs=EPOCHS,
    batch_size=BATCH_SIZE,
    augment=True,
    learning_rate=LEARNING_RATE,
    bn_momentum=BN_MOMENTUM,
    verbose=0,
):
    """Train the report's CNN on ``train = (uint8 images, labels)``, select on ``val``.

    Returns ``(model, history dict)``; the model holds the weights of the lowest ``val_loss``.
    """
    (x_train, y_train), (x_val, y_val) = train, val
    if len(y_val) == 0:
        raise ValueError("the validation split is empty: add images or raise --val-fraction")
    keras.utils.set_random_seed(seed)
    model = build_classifier(
        x_train.shape[1], x_train.shape[-1], n_classes, bn_momentum=bn_momentum
    )
    model.compile(
        optimizer=keras.optimizers.RMSprop(learning_rate),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
    )
    weights = None
    if class_weight is not None:
        weights = np.array([class_weight[int(c)] for c in y_train], dtype=np.float32)
    aug = build_augmentation(seed) if augment else None
    train_ds = make_dataset(x_train, y_train, n_classes, batch_size, weights, aug, shuffle=seed)
    val_ds = make_dataset(x_val, y_val, n_classes, batch_size)
    callbacks = [
        keras.callbacks.EarlyStopping("val_loss", patience=ES_PATIENCE, restore_best_weights=True),
        keras.callbacks.ReduceLROnPlateau(
            LR_MONITOR, factor=LR_FACTOR, patience=LR_PATIENCE, min_lr=MIN_LR
        ),
    ]
    history = model.fit(
        train_ds,
        validation_data=val_ds,
        epochs=epochs,
        callbacks=callbacks,
        shuffle=False,  # the pipeline reshuffles every epoch itself
        verbose=verbose,
    )
    return model, {k: [float(v) for v in vals] for k, vals in history.history.items()}


def predict_proba(model, images, batch_size=BATCH_SIZE):
    """Class probabilities for uint8 images (inference mode, batch by batch, nothing traced)."""
    batches = [
        model(images[i : i + batch_size].astype(np.float32) / 255.0, training=False)
        for i in range(0, len(images), batch_size)
    ]
    return np.concatenate([np.asarray(b) for b in batches])


# --- splits ---------------------------------------------------------------------------------------
def leakage_groups(images_u8, lesion_ids=None):
    """A group id per image: images sharing a lesion id or identical pixels share a group.

    Splits move whole groups, so no lesion and no duplicate picture sits on both sides.
    """
    n = len(images_u8)
    parent = np.arange(n)

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first = {}
    for i in range(n):
        keys = [("pixels", hashlib.sha1(np.ascontiguousarray(images_u8[i]).tobytes()).digest())]
        if lesion_ids is not None and lesion_ids[i]:
            keys.append(("lesion", lesion_ids[i]))
        for key in keys:
            if key in first:
                parent[find(i)] = find(first[key])
            else:
                first[key] = i
    return np.array([find(i) for i in range(n)])


def _take_groups(candidates, groups, n, rng):
    """Indices of whole groups from ``candidates``, in random group order, up to ``n`` images."""
    members = {}
    for i in candidates:
        members.setdefault(groups[i], []).append(i)
    keys = list(members)
    taken = []
    for k in rng.permutation(len(keys)):
        group = members[keys[k]]
        if len(taken) + len(group) <= n:
            taken += group
        if len(taken) == n:
            break
    return np.array(sorted(taken), dtype=np.int64)


def split_indices(
    labels,
    groups=None,
    test_per_class=TEST_PER_CLASS,
    val_fraction=VAL_FRACTION,
    split_seed=SPLIT_SEED,
    seed=0,
):
    """``{"train", "val", "test"}`` index arrays: a balanced test set, then a stratified val split.

    The test set depends only on ``split_seed`` (the same for every seed and arm); it takes
    ``test_per_class`` images of each class, capped with a warning at half of the rarest class.
    ``val_fraction`` of each class's remainder goes to validation, drawn with ``seed``. Groups
    (:func:`leakage_groups`) never straddle two splits.
    """
    labels = np.asarray(labels)
    groups = np.arange(len(labels)) if groups is None else np.asarray(groups)
    classes = np.unique(labels)
    owner = {}  # a group belongs to the class of its first image
    for i in range(len(labels)):
        owner.setdefault(groups[i], labels[i])
    by_class = {c: [i for i in range(len(labels)) if owner[groups[i]] == c] for c in classes}
    cap = min(len(v) for v in by_class.values()) // 2
    n_test = min(test_per_class, cap)
    if n_test < test_per_class:
        log.warning(
            "test set capped at %d per class (asked for %d): the rarest class has %d images and "
            "at least half of each class stays for training",
            n_test,
            test_per_class,
            2 * cap,
        )
    test_rng, val_rng = np.random.default_rng(split_seed), np.random.default_rng([split_seed, seed])
    test, val = [], []
    for c in classes:
        chosen = _take_groups(by_class[c], groups, n_test, test_rng)
        test.append(chosen)
        rest = sorted(set(by_class[c]) - set(chosen.tolist()))
        val.append(_take_groups(rest, groups, int(round(val_fraction * len(rest))), val_rng))
    test, val = np.concatenate(test), np.concatenate(val)
    train = np.setdiff1d(np.arange(len(labels)), np.concatenate([test, val]))
    return {"train": train, "val": np.sort(val), "test": np.sort(test)}


# --- synthetic images -----------------------------------------------------------------------------
class SyntheticSource:
    """Where the ``real+synthetic`` arm's extra images come from.

    ``spec`` is one of: a folder with one sub-folder per class (``melanoma/``, ``nevus/``);
    per-class unconditional generators ``"melanoma=G_mel.h5,nevus=G_nev.h5"`` (DCGAN, sampled with
    :func:`keras_gans.dcgan.generate_images`); or one conditional generator file with two inputs,
    z and class (BigGAN, sampled with :func:`keras_gans.biggan.generate_images`; its class order
    comes from ``classes.json`` beside it, see :func:`keras_gans.biggan.model_classes`). Images are
    resized to the classifier's size and returned as uint8.
    """

    def __init__(self, spec, class_names, truncation=None, strict=False, report=None):
        self.spec, self.class_names, self.truncation = spec, tuple(class_names), truncation
        self.strict, self.report = strict, report if report is not None else SkipReport()
        self.models = {}
        if "=" in spec:
            self.kind = "generators"
            self.paths = dict(item.split("=", 1) for item in spec.split(","))
            unknown = set(self.paths) - set(self.class_names)
            if unknown:
                raise ValueError(f"--synthetic names {sorted(unknown)}; classes {class_names}")
            self.models = {c: load_model(path) for c, path in self.paths.items()}
        elif os.path.isdir(spec):
            self.kind = "folder"
            folders = {c: os.path.join(spec, c) for c in self.class_names}
            self.paths = {c: list_images(f) for c, f in folders.items() if os.path.isdir(f)}
            if not self.paths:
                raise ValueError(f"{spec}: no class sub-folder ({', '.join(self.class_names)})")
        else:
            from keras_gans.biggan import model_classes

            self.kind, generator = "conditional", load_model(spec)
            if len(generator.inputs) != 2:
                raise ValueError(
                    f"{spec} is not a conditional generator (z and class inputs); give "
                    "unconditional ones per class: melanoma=G1.h5,nevus=G2.h5"
                )
            names = model_classes(generator, spec)
            self.models = {c: (generator, names.index(c)) for c in self.class_names if c in names}

    def classes(self):
        """The classes this source can supply."""
        return tuple(
            c
            for c in self.class_names
            if c in (self.paths if self.kind == "folder" else self.models)
        )

    def sample(self, n_per_class, img_size, seed=0):
        """``(uint8 images, labels)`` with up to ``n_per_class[c]`` images of each class ``c``."""
        images, labels = [], []
        rng = np.random.default_rng([seed, 7])
        for c, name in enumerate(self.class_names):
            n = int(n_per_class.get(name, 0))
            if n <= 0 or name not in self.classes():
                continue
            if self.kind == "folder":
                paths = self.paths[name]
                if n > len(paths):
                    log.warning("%s/%s: %d images, not %d", self.spec, name, len(paths), n)
                chosen = sorted(rng.choice(len(paths), min(n, len(paths)), replace=False))
                x, _ = load_images(
                    [paths[i] for i in chosen], img_size, (0.0, 1.0), self.strict, self.report
                )
                x = to_uint8(x, (0.0, 1.0))
            elif self.kind == "generators":
                from keras_gans import dcgan

                x = _resize_u8(
                    dcgan.generate_images(self.models[name], n, seed=seed * 1000 + c), img_size
                )
            else:
                from keras_gans import biggan

                generator, index = self.models[name]
                x = biggan.generate_images(generator, n, index, self.truncation, seed=seed)
                x = _resize_u8(x, img_size)
            images.append(x)
            labels.append(np.full(len(x), c, np.int64))
        if not images:
            return np.zeros((0, img_size, img_size, 3), np.uint8), np.zeros(0, np.int64)
        return np.concatenate(images), np.concatenate(labels)


def _resize_u8(images, img_size):
    """Generator outputs in [-1, 1] -> uint8 at ``img_size`` (bilinear, antialiased)."""
    x = np.asarray(images, np.float32)
    if x.shape[-1] == 1:
        x = np.repeat(x, 3, axis=-1)
    if x.shape[1:3] != (img_size, img_size):
        x = tf.image.resize(x, (img_size, img_size), "bilinear", antialias=True).numpy()
    return to_uint8(x, (-1.0, 1.0))


def parse_counts(spec, class_names):
    """``--n-synthetic``: ``None`` (match each class's real training count), ``"200"`` or
    ``"melanoma=500,nevus=0"`` -> ``{class: n}`` or ``None``."""
    if spec in (None, "", "auto"):
        return None
    spec = str(spec)
    if "=" not in spec:
        return {c: int(spec) for c in class_names}
    counts = {c: 0 for c in class_names}
    for item in spec.split(","):
        name, value = item.split("=")
        if name.strip() not in counts:
            raise ValueError(f"--n-synthetic names {name!r}; classes are {class_names}")
        counts[name.strip()] = int(value)
    return counts


# --- the experiment -------------------------------------------------------------------------------
def _slug(arm):
    return arm.replace("+", "_")


def run_experiment(
    data,
    synthetic=None,
    seeds=SEEDS,
    epochs=EPOCHS,
    batch_size=BATCH_SIZE,
    class_weight="auto",
    test_per_class=TEST_PER_CLASS,
    val_fraction=VAL_FRACTION,
    split_seed=SPLIT_SEED,
    n_synthetic=None,
    augment=True,
    positive=POSITIVE,
    learning_rate=LEARNING_RATE,
    bn_momentum=BN_MOMENTUM,
    output_dir=None,
):
    """Train and score every arm for every seed; returns the report dictionary.

    ``data``: an :class:`data_loaders.isic.IsicData` (or anything with ``images`` in [0, 1],
    ``labels``, ``ids``, ``lesion_ids``, ``class_names``). ``synthetic``: a
    :class:`SyntheticSource` (or ``None``: the ``real`` arm only). ``n_synthetic``: ``{class: n}``
    or ``None`` for as many as each class has real training images. Models (``.h5``) and test
    predictions go to ``output_dir`` when given.
    """
    names = tuple(data.class_names)
    k = len(names)
    if positive not in names:
        log.warning("positive class %r is not among %s; using %r", positive, names, names[0])
    pos = names.index(positive) if positive in names else 0
    if not seeds:
        raise ValueError("give at least one seed")
    images = to_uint8(data.images, (0.0, 1.0))
    labels = np.asarray(data.labels, np.int64)
    groups = leakage_groups(images, data.lesion_ids)
    arms = list(ARMS if synthetic is not None else ARMS[:1])
    runs = {arm: [] for arm in arms}
    predictions = {}
    bar = tqdm(total=len(seeds) * len(arms), desc="seeds x arms", unit="run")
    for seed in seeds:
        split = split_indices(labels, groups, test_per_class, val_fraction, split_seed, seed)
        tr, va, te = split["train"], split["val"], split["test"]
        real_counts = np.bincount(labels[tr], minlength=k)
        for arm in arms:
            x_train, y_train = images[tr], labels[tr]
            n_added = {}
            if arm != "real":
                wanted = n_synthetic or {c: int(real_counts[i]) for i, c in enumerate(names)}
                x_syn, y_syn = synthetic.sample(wanted, images.shape[1], seed)
                x_train = np.concatenate([x_train, x_syn])
                y_train = np.concatenate([y_train, y_syn])
                n_added = {c: int(np.sum(y_syn == i)) for i, c in enumerate(names)}
            weights = class_weights(y_train, k, class_weight, labels[tr], names)
            bar.set_postfix(seed=seed, arm=arm)
            model, history = train_classifier(
                (x_train, y_train),
                (images[va], labels[va]),
                k,
                weights,
                seed,
                epochs,
                batch_size,
                augment,
                learning_rate,
                bn_momentum,
            )
            probs = predict_proba(model, images[te], batch_size)
            metrics = evaluation.classification_metrics(labels[te], probs, pos, k)
            fpr, tpr, _ = roc_curve(labels[te] == pos, probs[:, pos])
            record = {
                "seed": int(seed),
                "metrics": {m: metrics[m] for m in SCALAR_METRICS},
                "confusion_matrix": metrics["confusion_matrix"],
                "train_counts": {c: int(np.sum(y_train == i)) for i, c in enumerate(names)},
                "synthetic_counts": n_added,
                "val_counts": {c: int(np.sum(labels[va] == i)) for i, c in enumerate(names)},
                "class_weight": {names[c]: w for c, w in weights.items()} if weights else None,
                "epochs_run": len(history["loss"]),
                "best_epoch": int(np.argmin(history["val_loss"])) + 1,
                "roc": (fpr, tpr),
            }
            if output_dir:
                stem = os.path.join(output_dir, "models", f"{_slug(arm)}_seed{seed}")
                path = save_model(model, stem, formats=("h5",))[0]
                record["model"] = os.path.relpath(path, output_dir)
            predictions[f"{_slug(arm)}_seed{seed}"] = probs
            runs[arm].append(record)
            keras.backend.clear_session()
            bar.update(1)
    bar.close()
    settings = {
        "img_size": int(images.shape[1]),
        "seeds": [int(s) for s in seeds],
        "epochs": epochs,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "bn_momentum": bn_momentum,
        "class_weight": class_weight,
        "test_per_class": test_per_class,
        "val_fraction": val_fraction,
        "split_seed": split_seed,
        "augment": augment,
        "synthetic": None if synthetic is None else synthetic.spec,
        "n_synthetic": n_synthetic,
        "lr_monitor": LR_MONITOR,
    }
    report = assemble_report(settings, data, runs, names[pos], te)
    if output_dir:
        test_ids = np.array([str(data.ids[i]) for i in te])
        np.savez(
            os.path.join(output_dir, "predictions.npz"),
            test_ids=test_ids,
            y_true=labels[te],
            **predictions,
        )
        write_outputs(report, runs, output_dir)
    return report


def assemble_report(settings, data, runs, positive, test_idx):
    """The JSON-ready report: settings, data, per-run records, summaries and paired differences."""
    names = tuple(data.class_names)
    scalar = {arm: [r["metrics"] for r in records] for arm, records in runs.items()}
    defined = [
        m for m in SCALAR_METRICS if all(r[m] is not None for v in scalar.values() for r in v)
    ]
    scalar = {arm: [{m: r[m] for m in defined} for r in v] for arm, v in scalar.items()}
    test_labels = np.asarray(data.labels)[test_idx]
    return {
        "settings": settings,
        "data": {
            "root": getattr(data, "root", ""),
            "class_names": list(names),
            "positive": positive,
            "counts": {c: int(np.sum(np.asarray(data.labels) == i)) for i, c in enumerate(names)},
            "test_counts": {c: int(np.sum(test_labels == i)) for i, c in enumerate(names)},
            "test_ids": [str(data.ids[i]) for i in test_idx],
        },
        "runs": {
            arm: [{k: v for k, v in r.items() if k != "roc"} for r in rs]
            for arm, rs in runs.items()
        },
        "summary": evaluation.summarize(scalar),
        "differences": evaluation.compare(scalar, "real") if len(scalar) > 1 else {},
    }


# --- outputs --------------------------------------------------------------------------------------
def _fmt(stat, signed=False):
    if stat is None:
        return "n/a"
    mean = f"{stat['mean']:+.3f}" if signed else f"{stat['mean']:.3f}"
    if stat.get("low") is None:
        return mean
    return f"{mean} [{stat['low']:.3f}, {stat['high']:.3f}]"


def markdown_report(report):
    """``report.md``: settings, the summary table with paired differences, and every run."""
    s, d, summary = report["settings"], report["data"], report["summary"]
    arms = list(summary)
    counts = ", ".join(f"{c} {n}" for c, n in d["counts"].items())
    test = ", ".join(f"{c} {n}" for c, n in d["test_counts"].items())
    lines = [
        "# Does adding GAN images help the lesion classifier?",
        "",
        f"- data: `{d['root']}` ({counts}); positive class: {d['positive']}",
        f"- test set (held out, the same for every run): {test}",
        f"- {s['img_size']} px, seeds {', '.join(map(str, s['seeds']))}, "
        f"up to {s['epochs']} epochs, "
        f"batch {s['batch_size']}, class weight `{s['class_weight']}`, augmentation "
        f"{'on' if s['augment'] else 'off'}, synthetic: `{s['synthetic']}`",
        "- a GAN must not have seen the test images: train it on the output of "
        "`python -m keras_gans.classifier split` (same size, test size and split seed)",
        "",
    ]
    diff_key = next(iter(report["differences"]), None)
    header = "| metric | " + " | ".join(arms) + (f" | {diff_key} | p |" if diff_key else " |")
    lines += [header, "|" + "---|" * (header.count("|") - 1)]
    for m in SCALAR_METRICS:
        row = [m] + [_fmt(summary[a].get(m)) for a in arms]
        if diff_key:
            diff = report["differences"][diff_key].get(m)
            p = diff.get("p_value") if diff else None
            row += [_fmt(diff, signed=True), "n/a" if p is None else f"{p:.3g}"]
        lines.append("| " + " | ".join(row) + " |")
    n, n_test = len(s["seeds"]), sum(d["test_counts"].values())
    lines += [
        "",
        f"Mean over {n} seed(s) with a 95% t-interval over seeds; the difference column is the "
        "paired per-seed difference (same seed = same validation split, initial weights and "
        "augmentation) with a paired t-test p-value; an interval that contains 0 is no evidence "
        f"of a difference. The intervals cover training variation on this one test set of {n_test} "
        "images, not the test set's own sampling error (for an accuracy near 0.5 up to "
        f"+-{1.96 * math.sqrt(0.25 / max(n_test, 1)):.3f}).",
        "",
        "| arm | seed | accuracy | balanced acc. | sensitivity | specificity | ROC AUC | "
        "epochs (best) | training images |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for arm, records in report["runs"].items():
        for r in records:
            m = {k: ("n/a" if v is None else f"{v:.3f}") for k, v in r["metrics"].items()}
            train = ", ".join(f"{c} {v}" for c, v in r["train_counts"].items())
            lines.append(
                f"| {arm} | {r['seed']} | {m['accuracy']} | {m['balanced_accuracy']} | "
                f"{m['sensitivity']} | {m['specificity']} | {m['roc_auc']} | "
                f"{r['epochs_run']} ({r['best_epoch']}) | {train} |"
            )
    return "\n".join(lines) + "\n"


def write_outputs(report, runs, output_dir):
    """Write ``report.json``, ``report.md``, ``roc.png`` (mean per arm), ``confusion_*.png``."""
    os.makedirs(output_dir, exist_ok=True)
    tmp = os.path.join(output_dir, "report.json.tmp")
    with open(tmp, "w") as f:
        json.dump(report, f, indent=2)
    os.replace(tmp, os.path.join(output_dir, "report.json"))
    with open(os.path.join(output_dir, "report.md"), "w") as f:
        f.write(markdown_report(report))
    grid = np.linspace(0.0, 1.0, 201)
    curves = {}
    for arm, records in runs.items():
        tprs = [np.interp(grid, *r["roc"]) for r in records]
        aucs = [r["metrics"]["roc_auc"] for r in records if r["metrics"]["roc_auc"] is not None]
        label = f"{arm}, mean of {len(records)} seed(s)"
        curves[label] = (
            grid,
            np.mean(tprs, axis=0),
            float(np.mean(aucs)) if aucs else float("nan"),
        )
    plotting.plot_roc(curves, os.path.join(output_dir, "roc.png"), title="ROC on the test set")
    names = report["data"]["class_names"]
    for arm, records in runs.items():
        total = np.sum([r["confusion_matrix"] for r in records], axis=0)
        plotting.plot_confusion(
            total,
            names,
            os.path.join(output_dir, f"confusion_{_slug(arm)}.png"),
            title=f"{arm}: summed over {len(records)} seed(s)",
        )


# --- command line ---------------------------------------------------------------------------------
def _seeds(text):
    return [int(s) for s in text.replace(",", " ").split()]


def export_training_pool(data, output, test_per_class=TEST_PER_CLASS, split_seed=SPLIT_SEED):
    """Write every image outside the test set to ``output/<class>/<id>.png`` for GAN training.

    A GAN trained on test images would leak them into the ``real+synthetic`` arm; train it on this
    folder instead (same ``--img-size``, ``--test-per-class`` and ``--split-seed`` as the
    evaluation). The test ids go to ``output/test_ids.txt``. Returns ``{class: images written}``.
    """
    images = to_uint8(data.images, (0.0, 1.0))
    labels = np.asarray(data.labels)
    groups = leakage_groups(images, data.lesion_ids)
    split = split_indices(labels, groups, test_per_class, 0.0, split_seed)
    for i in split["train"]:
        name = os.path.basename(str(data.ids[i]))
        save_image(images[i], os.path.join(output, data.class_names[labels[i]], f"{name}.png"))
    with open(os.path.join(output, "test_ids.txt"), "w") as f:
        f.write("\n".join(str(data.ids[i]) for i in split["test"]) + "\n")
    return {c: int(np.sum(labels[split["train"]] == i)) for i, c in enumerate(data.class_names)}


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv.pop(0) if argv and argv[0] in ("evaluate", "split") else "evaluate"
    parser = argparse.ArgumentParser(
        prog=f"python -m keras_gans.classifier {command}",
        description="Train the report's melanoma / nevus CNN on real images and on real + GAN "
        "images over seeds; report test metrics with 95% intervals and paired differences."
        if command == "evaluate"
        else "Write the images outside the held-out test set as OUTPUT/<class>/, for GAN training.",
        epilog="Subcommands: evaluate (default) and split (the GAN training pool without the test "
        "set; see the module docstring).",
    )
    parser.add_argument("--data-dir", default=None, help="ISIC folder (default: built-in sample)")
    parser.add_argument("--img-size", type=int, default=IMG_SIZE, help=f"default: {IMG_SIZE}")
    parser.add_argument(
        "--test-per-class", type=int, default=TEST_PER_CLASS, help=f"default: {TEST_PER_CLASS}"
    )
    parser.add_argument(
        "--split-seed", type=int, default=SPLIT_SEED, help="picks the test set (default: 42)"
    )
    parser.add_argument("--classes", default="melanoma,nevus", help="default: melanoma,nevus")
    parser.add_argument("--strict", action="store_true", help="stop at an unreadable image")
    if command == "split":
        parser.add_argument("--output", required=True, help="folder for <class>/<id>.png")
        args = parser.parse_args(argv)
        data = _load_data(args)
        counts = export_training_pool(data, args.output, args.test_per_class, args.split_seed)
        print(f"wrote {counts} to {args.output} (test ids in test_ids.txt)")
        return counts
    parser.add_argument(
        "--synthetic",
        default=None,
        help="GAN images for the real+synthetic arm: a folder with melanoma/ and nevus/, "
        "'melanoma=G_mel.h5,nevus=G_nev.h5' (DCGANs) or one conditional BigGAN G.h5",
    )
    parser.add_argument(
        "--n-synthetic",
        default=None,
        help="synthetic images per class: N or 'melanoma=500,nevus=0' (default: as many as the "
        "class has real training images)",
    )
    parser.add_argument("--truncation", type=float, default=None, help="BigGAN truncation")
    parser.add_argument("--seeds", type=_seeds, default=list(SEEDS), help="e.g. '0,1,2' (default)")
    parser.add_argument("--epochs", type=int, default=EPOCHS, help=f"default: {EPOCHS}")
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE, help=f"default: {BATCH_SIZE}")
    parser.add_argument(
        "--class-weight",
        default="auto",
        help="'auto' (balanced, from the training split), 'none', 'MAJ:MIN' such as the "
        "report's '1:14', or 'melanoma=14,nevus=1' (default: auto)",
    )
    parser.add_argument(
        "--val-fraction", type=float, default=VAL_FRACTION, help=f"default: {VAL_FRACTION}"
    )
    parser.add_argument("--positive", default=POSITIVE, help="class whose recall is sensitivity")
    parser.add_argument(
        "--bn-momentum",
        type=float,
        default=BN_MOMENTUM,
        help=f"BatchNorm momentum (default: {BN_MOMENTUM}; try 0.9 when an epoch is a few steps)",
    )
    parser.add_argument("--no-augment", action="store_true", help="train without augmentation")
    parser.add_argument("--output-dir", default=None, help="default: output/classifier/<data>")
    args = parser.parse_args(argv)
    data = _load_data(args)
    classes = tuple(data.class_names)
    name = os.path.basename(os.path.normpath(args.data_dir)) if args.data_dir else "sample"
    output_dir = args.output_dir or os.path.join("output", "classifier", name)
    synthetic = None
    if args.synthetic:
        synthetic = SyntheticSource(args.synthetic, classes, args.truncation, args.strict)
    report = run_experiment(
        data,
        synthetic,
        seeds=args.seeds,
        epochs=args.epochs,
        batch_size=args.batch_size,
        class_weight=args.class_weight,
        test_per_class=args.test_per_class,
        val_fraction=args.val_fraction,
        split_seed=args.split_seed,
        n_synthetic=parse_counts(args.n_synthetic, classes),
        augment=not args.no_augment,
        positive=args.positive,
        bn_momentum=args.bn_momentum,
        output_dir=output_dir,
    )
    print(markdown_report(report))
    print(f"outputs in {os.path.abspath(output_dir)}")
    return report


def _load_data(args):
    """The ISIC images of the command line, scaled to [0, 1] like the report's ``rescale=1/255``."""
    from data_loaders.isic import load_isic

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    classes = tuple(c.strip() for c in args.classes.split(","))
    return load_isic(args.data_dir, args.img_size, classes, (0.0, 1.0), args.strict)


if __name__ == "__main__":
    main()
