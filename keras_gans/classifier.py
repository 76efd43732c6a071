"""The skin-lesion report's melanoma / nevus CNN: model, augmentation, class weights, training.

The skin-lesion report (SNU GAN project, s-seo/SNU-GAN-project ``engine/CNN``) judged its DCGAN and
BigGAN with a small CNN that tells melanoma from nevus. This module is that CNN;
:mod:`keras_gans.experiments.lesion_harness` trains it on real and on real + GAN images over seeds.

As the report states (Sec. 3.5): 128x128 RGB scaled by 1/255; augmentation of rotation 15
degrees, shear 0.1, zoom 0.2, horizontal flip, width / height shift 0.1; early stopping and
learning-rate scheduling. From the report's repository, not stated in the report: 3 x
[Conv(32/64/128, 3, relu, valid) -> BN -> MaxPool 2 -> Dropout .25] -> Flatten -> Dense 512 relu ->
BN -> Dropout .5 -> Dense 2 softmax; RMSprop(1e-3), categorical cross-entropy, batch 64, up to 50
epochs; EarlyStopping(val_loss, patience 10); ReduceLROnPlateau(val_accuracy, factor 0.5,
patience 2, min_lr 1e-5) (the notebook's monitor); ``fill_mode="nearest"`` (ImageDataGenerator's
default).

Changed, and why:

* augmentation uses Keras preprocessing layers in the ``tf.data`` pipeline (training batches only),
  not the deprecated ImageDataGenerator. ImageDataGenerator's ``shear_range`` is an angle in
  *degrees*, so the report's 0.1 sheared by at most 0.1 degrees; ``RandomShear`` gets the same
  shear, ``sin(0.1 deg)``, on the x axis. Zoom is drawn per axis, as ImageDataGenerator did;
* EarlyStopping restores the best epoch's weights (the notebook kept the last ones);
* class weights: the report states 1:14 (the notebook stored 1:8); :func:`class_weights` computes
  them from the training split by default (scikit-learn's "balanced"), and ``"1:14"`` means
  majority : minority class weight, in the report's notation;
* one seed drives the initial weights, the shuffling and the augmentation, and the same seed
  gives the same run (augmented batches are mapped one at a time, see :func:`make_dataset`);
* BatchNorm statistics: with ``bn_stats="auto"`` (the default) a training set that gives an epoch
  fewer steps than momentum 0.99 averages over has its statistics recomputed on the training
  images before each validation pass (:func:`recompute_bn_statistics`); at the report's size the
  report's moving averages are kept. With moving averages from a few steps the CNN answered one
  class for nearly every image (issue 22, ``benchmarks/lesion_degenerate.py``).
"""

import math

import keras
import numpy as np
import tensorflow as tf
from keras import layers
from sklearn.utils.class_weight import compute_class_weight

from keras_gans.errors import ConfigError

# The report's settings (SNU-GAN-project engine/CNN notebooks).
IMG_SIZE = 128
FILTERS = (32, 64, 128)
DENSE = 512
LEARNING_RATE = 1e-3
BATCH_SIZE = 64
EPOCHS = 50
BN_MOMENTUM = 0.99  # Keras's default: the report's repository sets none
BN_STATS_CHOICES = ("auto", "recompute", "moving")
BN_STATS = "auto"  # see resolve_bn_stats
ES_PATIENCE = 10  # EarlyStopping on val_loss
LR_MONITOR = "val_accuracy"
LR_FACTOR, LR_PATIENCE, MIN_LR = 0.5, 2, 1e-5
ROTATION = 15.0  # degrees
SHEAR = 0.1  # degrees: ImageDataGenerator's shear_range is an angle
ZOOM = 0.2
SHIFT = 0.1


def conv_block(x, filters, name, dropout=0.25, bn_momentum=BN_MOMENTUM):
    """Conv(3, relu, valid) -> BatchNorm -> MaxPool 2 -> Dropout, the report's repeated block."""
    x = layers.Conv2D(filters, 3, activation="relu", name=f"{name}_conv")(x)
    x = layers.BatchNormalization(momentum=bn_momentum, name=f"{name}_bn")(x)
    x = layers.MaxPooling2D(2, name=f"{name}_pool")(x)
    return layers.Dropout(dropout, name=f"{name}_dropout")(x)


def check_img_size(img_size, filters=FILTERS):
    """Refuse an image side too small for the CNN's unpadded conv + pool blocks."""
    side = img_size
    for _ in filters:
        side = (side - 2) // 2
    if side < 1:
        raise ConfigError(
            f"--img-size {img_size} is too small for {len(filters)} valid conv blocks"
        )


def build_classifier(
    img_size=IMG_SIZE,
    channels=3,
    n_classes=2,
    filters=FILTERS,
    dense=DENSE,
    bn_momentum=BN_MOMENTUM,
):
    """The report's CNN as a named functional model; inputs in [0, 1], softmax outputs."""
    check_img_size(img_size, filters)
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
    A spec that cannot work raises :class:`~keras_gans.errors.ConfigError` naming ``--class-weight``.
    """
    text = spec
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
            name, _, value = item.partition("=")
            if name.strip() not in names:
                raise ConfigError(
                    f"--class-weight names {name.strip()!r}; classes are {class_names}"
                )
            out[names.index(name.strip())] = _weight(value, text)
        return out
    values = [_weight(v, text) for v in spec.split(":")]
    if len(values) != n_classes:
        raise ConfigError(
            f"--class-weight {text!r} needs {n_classes} ratios (most to least frequent), "
            "'auto', 'none' or 'melanoma=14,nevus=1'"
        )
    ref = np.asarray(labels if reference_labels is None else reference_labels)
    counts = np.bincount(ref, minlength=n_classes)
    order = sorted(range(n_classes), key=lambda c: (-counts[c], c))  # most frequent first
    return {c: values[rank] for rank, c in enumerate(order)}


def _weight(value, spec):
    try:
        weight = float(value)
    except ValueError:
        weight = float("nan")
    if not weight >= 0 or math.isinf(weight):
        raise ConfigError(
            f"--class-weight {spec!r}: {value.strip()!r} is not a weight >= 0; use 'auto', "
            "'none', 'MAJ:MIN' such as '1:14' or 'melanoma=14,nevus=1'"
        )
    return weight


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

    # Keras's random layers read, then advance, one seed state: parallel calls race for it and a
    # seed would draw other augmentations on every run, so augmented batches map one at a time.
    parallel = tf.data.AUTOTUNE if augment is None else None
    return ds.map(prepare, num_parallel_calls=parallel).prefetch(tf.data.AUTOTUNE)


def resolve_bn_stats(bn_stats, n_train, batch_size=BATCH_SIZE, bn_momentum=BN_MOMENTUM):
    """``"auto"`` -> ``"recompute"`` when an epoch has fewer steps than the moving averages span
    (``1 / (1 - momentum)``: 100 at 0.99), else ``"moving"``; other choices pass through.

    At the report's size (about 15,000 training images, 240 steps of 64 an epoch) the moving
    statistics have caught up by the end of the first epoch, as the report relied on; with a few
    hundred images an epoch is a few steps and, after the early epoch that early stopping keeps,
    they still hold mostly their initial 0 / 1 (``benchmarks/lesion_degenerate.py``).
    """
    if bn_stats not in BN_STATS_CHOICES:
        raise ConfigError(f"--bn-stats {bn_stats!r}: choose from {', '.join(BN_STATS_CHOICES)}")
    if bn_stats != "auto":
        return bn_stats
    steps = math.ceil(n_train / batch_size)
    return "recompute" if steps * (1.0 - bn_momentum) < 1.0 else "moving"


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
    bn_stats=BN_STATS,
):
    """Train the report's CNN on ``train = (uint8 images, labels)``, select on ``val``.

    ``bn_stats``: ``"recompute"`` sets the BatchNorm statistics from the (unaugmented) training
    images before every validation pass (:class:`RecomputeBatchNorm`); ``"moving"`` keeps the
    moving averages, as the report's code did; ``"auto"`` picks one by :func:`resolve_bn_stats`.
    Returns ``(model, history dict)``; the model holds the weights of the lowest ``val_loss``.
    """
    bn_stats = resolve_bn_stats(bn_stats, len(train[1]), batch_size, bn_momentum)
    (x_train, y_train), (x_val, y_val) = train, val
    if len(y_val) == 0:
        raise ConfigError("the validation split is empty: add images or raise --val-fraction")
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
    if bn_stats == "recompute":
        callbacks.insert(0, RecomputeBatchNorm(x_train, batch_size))
    history = model.fit(
        train_ds,
        validation_data=val_ds,
        epochs=epochs,
        callbacks=callbacks,
        shuffle=False,  # the pipeline reshuffles every epoch itself
        verbose=verbose,
    )
    return model, {k: [float(v) for v in vals] for k, vals in history.history.items()}


def recompute_bn_statistics(model, images, batch_size=BATCH_SIZE):
    """Set every BatchNormalization layer's moving mean and variance to the exact statistics of its
    inputs over ``images`` (uint8), in inference mode, layer after layer.

    With a few steps per epoch, momentum 0.99 leaves the moving statistics near their initial
    0 / 1 when early stopping keeps an early epoch, and they lag behind the weights at any size.
    Recomputed statistics belong to the weights that are kept, and, taken with dropout off, they
    also remove the variance shift dropout causes between training and inference. Earlier layers
    are recomputed first, because they feed the later ones. Returns the number of layers set.
    """
    norms = [layer for layer in model.layers if isinstance(layer, layers.BatchNormalization)]
    for norm in norms:
        probe = keras.Model(model.input, norm.input)
        total, total_sq, count = 0.0, 0.0, 0
        for i in range(0, len(images), batch_size):
            x = np.asarray(probe(images[i : i + batch_size].astype(np.float32) / 255.0))
            x = np.moveaxis(x, norm.axis, -1)
            x = x.reshape(-1, x.shape[-1]).astype(np.float64)
            total, total_sq, count = total + x.sum(0), total_sq + (x * x).sum(0), count + len(x)
        mean = total / count
        norm.moving_mean.assign(mean.astype(np.float32))
        norm.moving_variance.assign(np.maximum(total_sq / count - mean**2, 0.0).astype(np.float32))
    return len(norms)


class RecomputeBatchNorm(keras.callbacks.Callback):
    """Recompute BatchNorm statistics on the training images before every validation pass.

    ``fit`` calls ``on_test_begin`` before it scores the validation split, so ``val_loss`` (what
    early stopping selects on), ``val_accuracy`` (what the learning rate follows) and the weights
    early stopping keeps all use the statistics of the weights at that epoch.
    """

    def __init__(self, images, batch_size=BATCH_SIZE):
        super().__init__()
        self.images, self.batch_size = images, batch_size

    def on_test_begin(self, logs=None):
        recompute_bn_statistics(self.model, self.images, self.batch_size)


def predict_proba(model, images, batch_size=BATCH_SIZE):
    """Class probabilities for uint8 images (inference mode, batch by batch, nothing traced)."""
    batches = [
        model(images[i : i + batch_size].astype(np.float32) / 255.0, training=False)
        for i in range(0, len(images), batch_size)
    ]
    return np.concatenate([np.asarray(b) for b in batches])


def main(argv=None):
    """``python -m keras_gans.classifier``: the lesion experiment, ``pipeline`` (the default: split,
    GAN training, harness in one command), ``run`` and ``split`` (the step-by-step recipe)."""
    from keras_gans import cli
    from keras_gans.experiments import lesion_harness

    commands = sorted(lesion_harness.COMMANDS, key=lambda c: c.name != "pipeline")
    return cli.main("python -m keras_gans.classifier", lesion_harness.DESCRIPTION, commands, argv)


if __name__ == "__main__":
    main()
