"""MNIST class imbalance: does oversampling a rare digit with GAN images help a small classifier?

The report trained a small CNN on MNIST digits 1, 2 and 3 with 1, 300 and 300 training images,
trained a GAN on the rare digit, added its images and retrained: on 10 test images per digit it went
from 23 to 26 of 30 correct. This module reproduces that and asks the question properly.

* **GANs.** A conditional DCGAN (Mirza and Osindero, "Conditional Generative Adversarial Nets",
  arXiv:1411.1784) trained on the whole imbalanced set, with Keras-GAN ``cgan``'s Adam(2e-4, 0.5),
  BCE, latent 100 and ``train_on_batch`` loop (D on real, D on fake, then the combined model). The
  label is embedded: in G the embedding is concatenated to z (keras-io ``conditional_gan`` does so
  with a one-hot label) and, through a Dense layer, is a channel of the first feature map; in D it
  is a channel of the input image (keras-io) and a projection term ``<embed(y), h>`` on D's features
  (Miyato and Koyama, arXiv:1802.05637). Or, as the report did, an unconditional DCGAN on the rare
  digit alone (the same builders without a label).
* **Classifier.** The report's SmallCNN: Conv(16)-ReLU-MaxPool, Conv(32)-ReLU-MaxPool, Dense 64,
  Dropout 0.3, softmax over the chosen digits (Adam 1e-3; the report did not say how it trained).
* **Experiment.** For every seed each arm uses the same imbalanced draw and the same initial
  classifier weights: ``baseline`` (the imbalanced real set), ``gan`` (plus GAN images of each rare
  digit up to ``target_count``) and ``classic`` (plus augmented duplicates of the rare images:
  shift, rotation, zoom). All are scored on the whole test split of the chosen digits (the report
  used 10 images per digit; that score is kept as ``first10_correct``), as means with 95%
  t-intervals over seeds and paired per-seed differences between arms (``keras_gans.evaluation``).

Deviations: the fakes of a D step are conditioned on the real batch's labels and the G step reuses
them (keras-io), so D cannot spot fakes by label frequency (Keras-GAN ``cgan`` draws uniform labels,
which on a 1:300:300 set shows D a "1" that is nearly always fake); ``balanced_batches`` draws real
batches class-balanced instead. Without the projection term a small cGAN ignored the label for
hundreds of steps (both classes came out as the same digit). D is unfrozen before its own
``train_on_batch`` and frozen before the combined model's (Keras 3 reads ``trainable`` when a train
function is traced); D has no BatchNormalization, since a frozen Keras 3 BN runs in inference mode.
"""

import argparse
import csv
import logging
import os
import sys

import keras
import numpy as np
import tensorflow as tf
from keras import layers
from scipy import ndimage

from data_loaders.images import save_image
from data_loaders.mnist import imbalanced_subset, load_mnist
from keras_gans import distribute, evaluation, plotting
from keras_gans.saving import load_model, save_model
from keras_gans.training import GANTrainer, _atomic_json, add_common_args, runtime_kwargs

log = logging.getLogger(__name__)

# The report's setting.
DIGITS = (1, 2, 3)
COUNTS = {1: 1, 2: 300, 3: 300}
# Keras-GAN cgan settings (latent 100, Adam(2e-4, 0.5), batch 32). It ran 20,000 steps of an MLP;
# 1,000 steps of this DCGAN keep a CPU run short (a step costs ~0.12 CPU-s at 16 filters).
LATENT_DIM = 100
EMBEDDING_DIM = 50
BASE_FILTERS = 32
LEARNING_RATE = 2e-4
BETA_1 = 0.5
GAN_BATCH_SIZE = 32
GAN_STEPS = 1000
SAMPLE_INTERVAL = 200
# The classifier and the experiment.
CLASSIFIER_LR = 1e-3
CLASSIFIER_EPOCHS = 10
CLASSIFIER_BATCH_SIZE = 32
SEEDS = 5
ARMS = ("baseline", "gan", "classic")
REPORT_RESULT = {"baseline": "23/30", "gan": "26/30", "test_images": "10 per digit"}
_SAMPLE_KEY = 2**31 - 1  # rng key of the fixed sample-grid noise


# --- blocks and builders -------------------------------------------------------------------------
def label_embedding(label, n_classes, dim, name):
    """An int label of shape (1,) -> a learned (1, dim) embedding."""
    return layers.Embedding(n_classes, dim, name=f"{name}_embedding")(label)


def label_map(embedding, size, name):
    """An embedding -> Dense(size*size) -> a (size, size, 1) map, concatenated as a channel."""
    e = layers.Dense(size * size, name=f"{name}_dense")(embedding)
    return layers.Reshape((size, size, 1), name=f"{name}_map")(e)


def up_block(x, filters, name):
    """Conv2DTranspose(k4, s2) -> BatchNormalization(0.8) -> LeakyReLU(0.2): doubles H and W."""
    x = layers.Conv2DTranspose(filters, 4, strides=2, padding="same", name=f"{name}_convT")(x)
    x = layers.BatchNormalization(momentum=0.8, name=f"{name}_bn")(x)
    return layers.LeakyReLU(negative_slope=0.2, name=f"{name}_lrelu")(x)


def down_block(x, filters, name):
    """Conv2D(k4, s2) -> LeakyReLU(0.2): halves H and W."""
    x = layers.Conv2D(filters, 4, strides=2, padding="same", name=f"{name}_conv")(x)
    return layers.LeakyReLU(negative_slope=0.2, name=f"{name}_lrelu")(x)


def build_generator(
    latent_dim=LATENT_DIM,
    n_classes=None,
    img_size=28,
    channels=1,
    base_filters=BASE_FILTERS,
    embedding_dim=EMBEDDING_DIM,
    name="generator",
):
    """DCGAN generator: [z (+ label embedding)] -> Dense -> (s/4)^2 x 4f [+ label map] -> up 2f
    -> up f -> Conv(k7, tanh). Inputs ``[z, label]`` (int, shape (1,)) when ``n_classes``, else z.
    """
    if img_size % 4:
        raise ValueError(f"img_size must be a multiple of 4, got {img_size}")
    s = img_size // 4
    z = keras.Input(shape=(latent_dim,), name=f"{name}_z")
    x, inputs = z, z
    if n_classes:
        label = keras.Input(shape=(1,), dtype="int32", name=f"{name}_label")
        inputs = [z, label]
        e = label_embedding(label, n_classes, embedding_dim, f"{name}_label")
        x = layers.Concatenate(name=f"{name}_z_label")([z, layers.Flatten(name=f"{name}_e")(e)])
    x = layers.Dense(s * s * base_filters * 4, name=f"{name}_project")(x)
    x = layers.LeakyReLU(negative_slope=0.2, name=f"{name}_project_lrelu")(x)
    x = layers.Reshape((s, s, base_filters * 4), name=f"{name}_reshape")(x)
    if n_classes:
        x = layers.Concatenate(name=f"{name}_condition")([x, label_map(e, s, f"{name}_label")])
    x = up_block(x, base_filters * 2, f"{name}_up1")
    x = up_block(x, base_filters, f"{name}_up2")
    out = layers.Conv2D(
        channels, 7, padding="same", activation="tanh", dtype="float32", name=f"{name}_out"
    )
    return keras.Model(inputs, out(x), name=name)


def build_discriminator(
    n_classes=None,
    img_size=28,
    channels=1,
    base_filters=BASE_FILTERS,
    embedding_dim=EMBEDDING_DIM,
    name="discriminator",
):
    """DCGAN discriminator: image [+ label map] -> down f -> down 2f -> Dropout(0.4) -> logit
    [+ projection <embed(y), h>] -> sigmoid. Inputs ``[image, label]`` when ``n_classes``.
    """
    img = keras.Input(shape=(img_size, img_size, channels), name=f"{name}_image")
    x, inputs = img, img
    if n_classes:
        label = keras.Input(shape=(1,), dtype="int32", name=f"{name}_label")
        inputs = [img, label]
        e = label_embedding(label, n_classes, embedding_dim, f"{name}_label")
        x = layers.Concatenate(name=f"{name}_condition")(
            [img, label_map(e, img_size, f"{name}_label")]
        )
    x = down_block(x, base_filters, f"{name}_down1")
    x = down_block(x, base_filters * 2, f"{name}_down2")
    h = layers.Flatten(name=f"{name}_flatten")(x)
    h = layers.Dropout(0.4, name=f"{name}_dropout")(h)
    logit = layers.Dense(1, name=f"{name}_logit")(h)
    if n_classes:
        w = label_embedding(label, n_classes, h.shape[-1], f"{name}_projection")
        w = layers.Flatten(name=f"{name}_projection_flat")(w)
        proj = layers.Dot(axes=1, name=f"{name}_projection")([w, h])
        logit = layers.Add(name=f"{name}_logit_projection")([logit, proj])
    validity = layers.Activation("sigmoid", dtype="float32", name=f"{name}_validity")(logit)
    return keras.Model(inputs, validity, name=name)


def build_classifier(n_classes, img_size=28, channels=1, name="classifier"):
    """The report's SmallCNN: 2 x (Conv3-ReLU-MaxPool2; 16, 32 filters), Dense 64, Dropout 0.3."""
    img = keras.Input(shape=(img_size, img_size, channels), name=f"{name}_image")
    x = img
    for i, filters in enumerate((16, 32), 1):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"{name}_conv{i}")(x)
        x = layers.MaxPooling2D(2, name=f"{name}_pool{i}")(x)
    x = layers.Flatten(name=f"{name}_flatten")(x)
    x = layers.Dense(64, activation="relu", name=f"{name}_dense")(x)
    x = layers.Dropout(0.3, name=f"{name}_dropout")(x)
    probs = layers.Dense(n_classes, activation="softmax", dtype="float32", name=f"{name}_probs")(x)
    return keras.Model(img, probs, name=name)


# --- the GAN trainer -----------------------------------------------------------------------------
class DigitGAN(GANTrainer):
    """A DCGAN on digit images, conditional (a cGAN) when ``n_classes`` is given; see the module.

    Args:
        images: float images ``(n, h, w, c)`` in [-1, 1], ``h == w`` a multiple of 4.
        labels: class indices ``0 .. n_classes-1`` (required when conditional).
        n_classes: number of classes; ``None`` trains an unconditional GAN on all of ``images``.
        class_names: names of the classes for the sample grid (e.g. the digits).
        latent_dim, base_filters, embedding_dim: model sizes.
        learning_rate, beta_1: Adam settings of both compiled models.
        balanced_batches: draw real batches class-balanced instead of uniformly from the set.
        output_dir: where images, models, logs and checkpoints go.
        seed: seeds weights, batches and noise.
        **runtime: see :class:`keras_gans.training.GANTrainer`.
    """

    loss_groups = {"discriminator": ["D_loss", "D_acc"], "generator": ["G_loss"]}

    def __init__(
        self,
        images,
        labels=None,
        n_classes=None,
        class_names=None,
        latent_dim=LATENT_DIM,
        base_filters=BASE_FILTERS,
        embedding_dim=EMBEDDING_DIM,
        learning_rate=LEARNING_RATE,
        beta_1=BETA_1,
        balanced_batches=False,
        output_dir=None,
        seed=None,
        **runtime,
    ):
        self.images = np.asarray(images, np.float32)
        if (
            self.images.ndim != 4
            or self.images.shape[1] != self.images.shape[2]
            or not len(self.images)
        ):
            raise ValueError(
                f"images must be a non-empty (n, s, s, c) array, got {self.images.shape}"
            )
        self.n_classes = n_classes
        if n_classes:
            if labels is None or len(labels) != len(self.images):
                raise ValueError("a conditional GAN needs one label per image")
            self.labels = np.asarray(labels, np.int32).reshape(-1, 1)
            if self.labels.min() < 0 or self.labels.max() >= n_classes:
                raise ValueError(f"labels must be class indices in [0, {n_classes})")
        else:
            self.labels = None
        self.class_names = list(class_names) if class_names is not None else None
        self.latent_dim = latent_dim
        self.balanced_batches = balanced_batches
        self.setup_runtime(
            output_dir or os.path.join("output", "mnist_imbalance", "gan"), seed=seed, **runtime
        )
        img_size, channels = self.images.shape[1], self.images.shape[3]
        with self.strategy.scope():
            self.discriminator = build_discriminator(
                n_classes, img_size, channels, base_filters, embedding_dim
            )
            self.discriminator.compile(
                loss="binary_crossentropy",
                optimizer=self.make_optimizer(learning_rate, beta_1=beta_1),
                metrics=["accuracy"],
                jit_compile=self.jit_compile,
            )
            self.generator = build_generator(
                latent_dim, n_classes, img_size, channels, base_filters, embedding_dim
            )
            self.combined = self.build_combined()
            self.combined.compile(
                loss="binary_crossentropy",
                optimizer=self.make_optimizer(learning_rate, beta_1=beta_1),
                jit_compile=self.jit_compile,
            )
        self._generate = tf.function(
            lambda x: self.generator(x, training=False), reduce_retracing=True
        )

    @property
    def conditional(self):
        return bool(self.n_classes)

    def build_combined(self):
        """G trained through the frozen D: the generator's loss -log D(G(z|y)|y) (paper Eq. 2)."""
        z = keras.Input(shape=(self.latent_dim,), name="z")
        inputs = (
            [z, keras.Input(shape=(1,), dtype="int32", name="label")] if self.conditional else z
        )
        img = self.generator(inputs)
        self.set_trainable(self.discriminator, False)
        validity = self.discriminator([img, inputs[1]] if self.conditional else img)
        return keras.Model(inputs, validity, name="combined")

    def checkpoint_objects(self):
        return {
            "generator": self.generator,
            "discriminator": self.discriminator,
            "opt_discriminator": self.discriminator.optimizer,
            "opt_combined": self.combined.optimizer,
        }

    # --- training -------------------------------------------------------------------------------
    def _draw(self, rng, batch_size):
        if self.conditional and self.balanced_batches:
            classes = np.unique(self.labels)
            picked = rng.choice(classes, batch_size)
            return np.array([rng.choice(np.flatnonzero(self.labels[:, 0] == c)) for c in picked])
        return rng.integers(0, len(self.images), batch_size)  # Keras-GAN: randint, with replacement

    def _inputs(self, noise, labels):
        return [noise, labels] if self.conditional else noise

    def generate(self, noise, labels=None):
        """G(z | y) as a NumPy array (inference mode)."""
        x = [tf.constant(noise), tf.constant(labels)] if self.conditional else tf.constant(noise)
        return self._generate(x).numpy()

    def generate_class(self, n, label=None, key=0, batch_size=256):
        """``n`` images of class ``label`` (unused if unconditional); noise keyed by ``key``."""
        noise = self.rng(_SAMPLE_KEY - 1, key).normal(size=(n, self.latent_dim)).astype(np.float32)
        labels = np.full((n, 1), label or 0, np.int32)
        out = [
            self.generate(noise[i : i + batch_size], labels[i : i + batch_size])
            for i in range(0, n, batch_size)
        ]
        return np.concatenate(out) if out else np.zeros((0,) + self.images.shape[1:], np.float32)

    def _fit_batch(self, model, x, y):
        """One ``train_on_batch``, or ``accumulate`` of them on equal slices (one update)."""
        if self.accumulate == 1:
            return self.train_on_batch(model, x, y)
        logs = []
        for part in np.array_split(np.arange(len(y)), self.accumulate):
            xi = [a[part] for a in x] if isinstance(x, list) else x[part]
            logs.append(self.train_on_batch(model, xi, y[part]))
        return {k: float(np.mean([entry[k] for entry in logs])) for k in logs[0]}

    def d_step(self, imgs, labels, noise):
        """D on a real batch, then on G's fakes for the same labels (unfrozen); returns its logs."""
        valid, fake = np.ones((len(imgs), 1), np.float32), np.zeros((len(imgs), 1), np.float32)
        gen_imgs = self.generate(noise, labels)
        self.set_trainable(self.discriminator, True)
        # D maximises log D(x|y) + log(1 - D(G(z|y)|y)), paper Eq. 2; real, fake in separate calls
        d_real = self._fit_batch(self.discriminator, self._inputs(imgs, labels), valid)
        d_fake = self._fit_batch(self.discriminator, self._inputs(gen_imgs, labels), fake)
        return {
            "D_loss": 0.5 * (float(d_real["loss"]) + float(d_fake["loss"])),
            "D_acc": 0.5 * (float(d_real["accuracy"]) + float(d_fake["accuracy"])),
        }

    def g_step(self, noise, labels):
        """G through the frozen D, targets "valid": the non-saturating -log D(G(z|y)|y)."""
        self.set_trainable(self.discriminator, False)
        valid = np.ones((len(noise), 1), np.float32)
        return {
            "G_loss": float(
                self._fit_batch(self.combined, self._inputs(noise, labels), valid)["loss"]
            )
        }

    def train_step(self, imgs, labels, noise):
        """The report's order: D real, D fake, then the combined model; returns the log values."""
        return {**self.d_step(imgs, labels, noise), **self.g_step(noise, labels)}

    def train(self, steps=GAN_STEPS, batch_size=GAN_BATCH_SIZE, sample_interval=SAMPLE_INTERVAL):
        """Keras-GAN's loop: ``steps`` iterations on random batches (drawn with replacement)."""
        self.restore_checkpoint()
        bar = self.progress(
            steps, initial=min(self.step, steps), desc="cgan" if self.conditional else "gan"
        )
        while self.step < steps:
            rng = self.rng(self.step)
            idx = self._draw(rng, batch_size)
            labels = self.labels[idx] if self.conditional else None
            noise = rng.normal(size=(batch_size, self.latent_dim)).astype(np.float32)
            logs = self.train_step(self.images[idx], labels, noise)
            batch_i = self.step
            self.step += 1
            self.epoch = self.step * batch_size // len(self.images)
            logs.update(self.maybe_evaluate())
            if not self.log_step(logs, bar):  # rolled back to the last checkpoint
                bar.n = self.step
                continue
            bar.update(1)
            if sample_interval and batch_i % sample_interval == 0:
                self.sample_images(batch_i)
            self.maybe_checkpoint()
        bar.close()
        self.save_models()
        if self.checkpoint_every:
            self.save_checkpoint()
        self.sample_images(self.step)
        self.plot_losses()
        return self.write_summary(
            conditional=self.conditional,
            classes=self.class_names,
            images=len(self.images),
            batch_size=batch_size,
        )

    def evaluate(self):
        """With ``eval_extractor``: FID and KID of fakes (labels drawn as in the data) vs the data."""
        if not self.eval_extractor:
            return {}
        n = min(len(self.images), 1000)
        rng = self.rng(_SAMPLE_KEY - 2)
        noise = rng.normal(size=(n, self.latent_dim)).astype(np.float32)
        labels = self.labels[rng.integers(0, len(self.images), n)] if self.conditional else None
        fakes = np.concatenate(
            [
                self.generate(noise[i : i + 256], None if labels is None else labels[i : i + 256])
                for i in range(0, n, 256)
            ]
        )
        return {k: v for k, v in self.fid_kid(self.images, fakes).items() if k in ("fid", "kid")}

    # --- outputs --------------------------------------------------------------------------------
    def sample_images(self, step, cols=8):
        """A grid from fixed noise: one row per class (conditional) or 4 rows."""
        if not self.is_chief:
            return None
        rows = self.n_classes if self.conditional else 4
        noise = self.rng(_SAMPLE_KEY).normal(size=(rows * cols, self.latent_dim)).astype(np.float32)
        labels = np.repeat(np.arange(rows, dtype=np.int32), cols)[:, None]
        names = (
            [str(c) for c in self.class_names] if self.conditional and self.class_names else None
        )
        path = os.path.join(self.images_dir, f"{step}.png")
        return plotting.save_image_grid(
            self.generate(noise, labels), path, rows, cols, row_labels=names
        )

    def save_models(self):
        """``models/{generator,discriminator}.h5`` and ``.keras``, with trainable set for reuse."""
        if not self.is_chief:
            return
        for model in (self.generator, self.discriminator):
            was = model.trainable
            self.set_trainable(model, True)
            save_model(model, os.path.join(self.models_dir, model.name))
            self.set_trainable(model, was)


# --- oversampling --------------------------------------------------------------------------------
def augment(images, n, rng, max_shift=2.0, max_rotation=10.0, zoom=0.1, background=-1.0):
    """``n`` augmented copies drawn in turn from ``images``: random shift, rotation and zoom."""
    out = np.empty((n,) + images.shape[1:], np.float32)
    center = (np.array(images.shape[1:3]) - 1) / 2.0
    for i in range(n):
        src = images[i % len(images)]
        angle = np.deg2rad(rng.uniform(-max_rotation, max_rotation))
        scale = rng.uniform(1 - zoom, 1 + zoom)
        shift = rng.uniform(-max_shift, max_shift, 2)
        # affine_transform maps output coordinates to input ones: inverse rotation and zoom
        matrix = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]) / scale
        offset = center - matrix @ (center + shift)
        for c in range(images.shape[-1]):
            out[i, ..., c] = ndimage.affine_transform(
                src[..., c], matrix, offset, order=1, mode="constant", cval=background
            )
    return out


def shortfall(y, n_classes, target_count):
    """``{class index: images missing to reach target_count}`` for the rare classes."""
    counts = np.bincount(y, minlength=n_classes)
    return {c: int(target_count - counts[c]) for c in range(n_classes) if counts[c] < target_count}


def oversample_classic(x, y, missing, seed):
    """Real set plus augmented duplicates of each rare class (the "classic" arm)."""
    rng = np.random.default_rng([seed, 1])
    xs, ys = [x], [y]
    for c, n in missing.items():
        xs.append(augment(x[y == c], n, rng))
        ys.append(np.full(n, c, y.dtype))
    return np.concatenate(xs), np.concatenate(ys)


def gan_images(x, y, missing, gan, class_names, seed, train_args, output_dir, **gan_kwargs):
    """``{class index: GAN images}`` filling ``missing``: one cGAN, or one GAN per rare class."""
    made = {}
    if not missing:
        return made
    if gan == "conditional":
        trainer = DigitGAN(
            x, y, len(class_names), class_names, output_dir=output_dir, seed=seed, **gan_kwargs
        )
        trainer.train(*train_args)
        for c, n in missing.items():
            made[c] = trainer.generate_class(n, c, key=c)
    elif gan == "unconditional":
        for c, n in missing.items():
            trainer = DigitGAN(
                x[y == c],
                output_dir=os.path.join(output_dir, f"digit_{class_names[c]}"),
                seed=seed,
                **gan_kwargs,
            )
            trainer.train(*train_args)
            made[c] = trainer.generate_class(n, key=c)
    else:
        raise ValueError(f"gan must be 'conditional' or 'unconditional', got {gan!r}")
    return made


# --- the classifier experiment -------------------------------------------------------------------
def classification_metrics(y_true, y_pred, class_names, first_n=10):
    """Accuracy, balanced accuracy, macro F1 and per-class recall / precision / F1 (class = digit).

    Per-class accuracy is per-class recall. ``first10_correct`` counts the correct predictions among
    the first ``first_n`` test images of each class, the report's way of scoring.
    """
    k = len(class_names)
    cm = np.zeros((k, k), np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    tp = np.diag(cm).astype(np.float64)
    recall = tp / np.maximum(cm.sum(1), 1)
    precision = tp / np.maximum(cm.sum(0), 1)
    f1 = np.where(
        recall + precision > 0, 2 * recall * precision / np.maximum(recall + precision, 1e-12), 0
    )
    first = np.concatenate([np.flatnonzero(y_true == c)[:first_n] for c in range(k)])
    metrics = {
        "accuracy": float(np.mean(y_true == y_pred)),
        "balanced_accuracy": float(recall.mean()),
        "macro_f1": float(f1.mean()),
        f"first{first_n}_correct": int(np.sum(y_true[first] == y_pred[first])),
    }
    for c, name in enumerate(class_names):
        metrics[f"recall_{name}"] = float(recall[c])
        metrics[f"precision_{name}"] = float(precision[c])
        metrics[f"f1_{name}"] = float(f1[c])
    return metrics, cm.tolist()


def train_classifier(
    x, y, n_classes, seed, epochs=CLASSIFIER_EPOCHS, batch_size=CLASSIFIER_BATCH_SIZE, strategy=None
):
    """The report's classifier trained on ``(x, y)``; same ``seed`` = same initial weights."""
    strategy = strategy or tf.distribute.get_strategy()
    keras.utils.set_random_seed(seed)
    with strategy.scope():
        model = build_classifier(n_classes, x.shape[1], x.shape[3])
        model.compile(
            optimizer=keras.optimizers.Adam(CLASSIFIER_LR),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
    data = (
        tf.data.Dataset.from_tensor_slices((x, y))
        .shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
        .batch(batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )
    model.fit(data, epochs=epochs, verbose=0, shuffle=False)  # tf.data shuffles, seeded
    return model


def predict_classes(model, x, batch_size=512):
    """Arg-max class of every image (direct calls: no per-model ``predict`` function to trace)."""
    chunks = [model(x[i : i + batch_size], training=False) for i in range(0, len(x), batch_size)]
    return np.argmax(np.concatenate([np.asarray(c) for c in chunks]), axis=1)


def run_experiment(
    train,
    test,
    digits=DIGITS,
    counts=None,
    target_count=None,
    arms=ARMS,
    gan="conditional",
    gan_steps=GAN_STEPS,
    gan_batch_size=GAN_BATCH_SIZE,
    sample_interval=SAMPLE_INTERVAL,
    seeds=tuple(range(SEEDS)),
    epochs=CLASSIFIER_EPOCHS,
    classifier_batch_size=CLASSIFIER_BATCH_SIZE,
    output_dir=os.path.join("output", "mnist_imbalance"),
    source=None,
    gan_kwargs=None,
    runtime=None,
):
    """Baseline vs GAN vs classic oversampling over ``seeds``; writes and returns the report.

    ``train`` / ``test`` are ``(x, y)`` with digit labels; ``counts`` maps digit -> training images
    (capped, with a warning, at what ``train`` holds). Writes ``report.json`` (setting, every run,
    means with 95% intervals, paired differences), ``runs.csv``, ``metrics.png``, grids of the added
    images in ``images/`` and each GAN's own outputs in ``gan/seed_<s>/``.
    """
    digits = [int(d) for d in digits]
    counts = {int(d): int(n) for d, n in (counts or COUNTS).items()}
    if any(a not in ARMS for a in arms) or "baseline" not in arms:
        raise ValueError(f"arms must include 'baseline' and come from {ARMS}, got {list(arms)}")
    if gan not in ("conditional", "unconditional"):
        raise ValueError(f"gan must be 'conditional' or 'unconditional', got {gan!r}")
    if not len(seeds):
        raise ValueError("at least one seed is needed")
    runtime = dict(runtime or {})
    strategy = distribute.get_strategy(runtime.pop("strategy", "auto"))
    distribute.set_precision(runtime.get("mixed_precision"))
    names = [str(d) for d in digits]
    index = {d: i for i, d in enumerate(digits)}
    keep = np.isin(test[1], digits)
    x_test, y_test = test[0][keep], np.array([index[d] for d in test[1][keep]], np.int64)
    runs = {arm: [] for arm in arms}
    confusion = {arm: [] for arm in arms}
    for seed in seeds:
        x, y = imbalanced_subset(*train, {d: counts[d] for d in digits}, seed=seed, strict=False)
        y = np.array([index[d] for d in y], np.int64)
        used = dict(zip(names, np.bincount(y, minlength=len(digits)).tolist()))
        target = target_count or max(used.values())
        missing = shortfall(y, len(digits), target)
        if not missing:
            log.warning("no digit has fewer than %d images: the arms will all match", target)
        sets = {"baseline": (x, y)}
        if "classic" in arms:
            sets["classic"] = oversample_classic(x, y, missing, seed)
        if "gan" in arms:
            gan_dir = os.path.join(output_dir, "gan", f"seed_{seed}")
            train_args = (gan_steps, gan_batch_size, sample_interval)
            made = gan_images(
                x, y, missing, gan, names, seed, train_args, gan_dir,
                **(gan_kwargs or {}), **runtime, strategy=strategy,
            )  # fmt: skip
            extra_y = [np.full(len(made[c]), c, np.int64) for c in missing]
            sets["gan"] = (np.concatenate([x, *made.values()]), np.concatenate([y, *extra_y]))
        for arm in arms:
            x_arm, y_arm = sets[arm]
            if len(x_arm) > len(x):
                grid = os.path.join(output_dir, "images", f"{arm}_seed{seed}.png")
                plotting.save_image_grid(x_arm[len(x) :][:32], grid, 4, 8)
            model = train_classifier(
                x_arm, y_arm, len(digits), seed, epochs, classifier_batch_size, strategy
            )
            metrics, cm = classification_metrics(y_test, predict_classes(model, x_test), names)
            runs[arm].append({"seed": int(seed), "train_size": len(y_arm), **metrics})
            confusion[arm].append(cm)
            log.info("seed %d %s: %s", seed, arm, {k: round(v, 4) for k, v in metrics.items()})
    setting = {
        "source": source or "scikit-learn digits (8x8 upscaled to 28x28)",
        "digits": digits,
        "counts_requested": {str(d): counts[d] for d in digits},
        "counts_used": used,
        "target_count": target,
        "arms": list(arms),
        "gan": gan,
        "gan_steps": gan_steps,
        "gan_batch_size": gan_batch_size,
        "gan_sample_interval": sample_interval,
        "gan_kwargs": gan_kwargs or {},
        "seeds": [int(s) for s in seeds],
        "classifier_epochs": epochs,
        "classifier_batch_size": classifier_batch_size,
        "test_images": {n: int(np.sum(y_test == i)) for i, n in enumerate(names)},
        "confidence": evaluation.CONFIDENCE,
    }
    report = build_report(setting, runs, confusion)
    _atomic_json(os.path.join(output_dir, "report.json"), report)
    _write_runs_csv(os.path.join(output_dir, "runs.csv"), runs)
    _plot_summary(report["summary"], names, os.path.join(output_dir, "metrics.png"), len(seeds))
    return report


def build_report(setting, runs, confusion):
    """Setting, per-arm means with intervals, paired differences against baseline (and classic)."""
    scalar = {
        arm: [{k: v for k, v in r.items() if k not in ("seed", "train_size")} for r in records]
        for arm, records in runs.items()
    }
    differences = evaluation.compare(scalar, "baseline")
    if "gan" in scalar and "classic" in scalar:
        pair = {"classic": scalar["classic"], "gan": scalar["gan"]}
        differences.update(evaluation.compare(pair, "classic"))
    return {
        "setting": setting,
        "report_result": REPORT_RESULT,
        "summary": evaluation.summarize(scalar),
        "differences": differences,
        "runs": runs,
        "confusion_matrices": confusion,
    }


def _write_runs_csv(path, runs):
    rows = [{"arm": arm, **r} for arm, records in runs.items() for r in records]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, list(rows[0]))
        writer.writeheader()
        writer.writerows(
            {k: f"{v:.6g}" if isinstance(v, float) else v for k, v in r.items()} for r in rows
        )


def _plot_summary(summary, names, path, n_seeds):
    groups = {f"recall {n}": f"recall_{n}" for n in names}
    groups.update({"accuracy": "accuracy", "balanced acc.": "balanced_accuracy"})
    values = {g: {arm: s[m]["mean"] for arm, s in summary.items()} for g, m in groups.items()}
    errors = {
        g: {arm: s[m]["half_width"] or 0.0 for arm, s in summary.items()} for g, m in groups.items()
    }
    title = f"MNIST imbalance: mean over {n_seeds} seed(s), 95% t-interval"
    return plotting.plot_bars(values, errors, path, title=title, ylabel="test score")


def format_summary(report):
    """Each arm's accuracy and rare-digit recall (mean +/- 95% half-width), and the differences."""
    s = report["setting"]
    rare = [d for d, n in s["counts_used"].items() if n < s["target_count"]] or list(
        s["counts_used"]
    )
    lines = [
        f"digits {s['digits']}, train counts {s['counts_used']} -> {s['target_count']}, "
        f"{len(s['seeds'])} seed(s), test images {s['test_images']}"
    ]

    def fmt(ci):
        half = ci["half_width"]
        return f"{ci['mean']:.3f}" + ("" if half is None else f" +/- {half:.3f}")

    for name, metrics in [*report["summary"].items(), *report["differences"].items()]:
        recalls = ", ".join(f"recall {d} {fmt(metrics[f'recall_{d}'])}" for d in rare)
        lines.append(f"  {name:<18} accuracy {fmt(metrics['accuracy'])}; {recalls}")
    return "\n".join(lines)


# --- command line --------------------------------------------------------------------------------
def parse_counts(text, digits):
    """``"1,300,300"`` (one per digit) or ``"1:1,2:300,3:300"`` -> ``{digit: count}``."""
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    if all(":" in p for p in parts):
        counts = {int(a): int(b) for a, b in (p.split(":") for p in parts)}
    elif len(parts) == len(digits):
        counts = {d: int(p) for d, p in zip(digits, parts)}
    else:
        raise ValueError(f"--counts {text!r}: give one count per digit or digit:count pairs")
    if set(counts) != set(digits):
        raise ValueError(f"--counts {text!r} names digits {sorted(counts)}, --digits {digits}")
    return counts


def generate_files(model_path, output_dir, n=64, label=None, seed=0):
    """Write ``n`` PNGs from a saved generator (class ``label`` if conditional); returns paths."""
    model = load_model(model_path)
    conditional = len(model.inputs) == 2
    if conditional and label is None:
        raise ValueError("this generator is conditional: pass --label (a class index)")
    noise = np.random.default_rng(seed).normal(size=(n, model.inputs[0].shape[-1]))
    noise = noise.astype(np.float32)
    inputs = [noise, np.full((n, 1), label, np.int32)] if conditional else noise
    paths = []
    for i, img in enumerate(np.asarray(model(inputs, training=False))):
        paths.append(os.path.join(output_dir, f"{label if conditional else 'gan'}_{i:04d}.png"))
        save_image(img, paths[-1])
    return paths


def _generate_main(argv):
    parser = argparse.ArgumentParser(
        prog="python -m keras_gans.mnist_imbalance generate",
        description="Write digit images from a saved generator (.h5 or .keras).",
    )
    parser.add_argument("--model", required=True, help="e.g. OUT/gan/seed_0/models/generator.h5")
    parser.add_argument("--output", required=True, help="folder for the PNGs")
    parser.add_argument("-n", type=int, default=64, help="number of images (default: 64)")
    parser.add_argument("--label", type=int, default=None, help="class index (order of --digits)")
    parser.add_argument("--seed", type=int, default=0, help="noise seed (default: 0)")
    args = parser.parse_args(argv)
    paths = generate_files(args.model, args.output, args.n, args.label, args.seed)
    print(f"wrote {len(paths)} image(s) to {args.output}")
    return paths


def main(argv=None):
    """``python -m keras_gans.mnist_imbalance [experiment | generate] ...``"""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv.pop(0) if argv and argv[0] in ("experiment", "generate") else "experiment"
    if command == "generate":
        return _generate_main(argv)
    parser = argparse.ArgumentParser(
        prog="python -m keras_gans.mnist_imbalance",
        description="Imbalanced MNIST digits: real only vs + GAN images vs + augmented copies.",
    )
    add = parser.add_argument
    add(
        "--data-dir",
        default=None,
        help="IDX folder, mnist.npz, PNG digit folders or 'keras' "
        "(default: scikit-learn's digits, offline)",
    )
    add("--digits", default="1,2,3", help="digits to classify (default: 1,2,3)")
    add("--counts", default="1,300,300", help="train images per digit (default: 1,300,300)")
    add("--target-count", type=int, default=None, help="fill rare digits up to (default: max)")
    add("--arms", default=",".join(ARMS), help=f"default: {','.join(ARMS)}")
    add(
        "--gan",
        default="conditional",
        choices=("conditional", "unconditional"),
        help="a cGAN on the whole set (default) or a GAN per rare digit (the report)",
    )
    add("--gan-steps", type=int, default=GAN_STEPS, help=f"default: {GAN_STEPS}")
    add("--base-filters", type=int, default=BASE_FILTERS, help=f"default: {BASE_FILTERS}")
    add("--latent-dim", type=int, default=LATENT_DIM, help=f"default: {LATENT_DIM}")
    add("--balanced-batches", action="store_true", help="class-balanced real batches (cGAN)")
    add("--seeds", type=int, default=SEEDS, help=f"seeds --seed, --seed+1, ... (default: {SEEDS})")
    add("--classifier-batch-size", type=int, default=CLASSIFIER_BATCH_SIZE, help="default: 32")
    add_common_args(parser, CLASSIFIER_EPOCHS, GAN_BATCH_SIZE, SAMPLE_INTERVAL)
    parser.set_defaults(seed=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    digits = [int(d) for d in args.digits.split(",")]
    output_dir = args.output_dir or os.path.join("output", "mnist_imbalance")
    runtime = runtime_kwargs(args)
    for key in ("seed", "output_dir"):
        runtime.pop(key)
    report = run_experiment(
        load_mnist(args.data_dir, "train", strict=args.strict),
        load_mnist(args.data_dir, "test", strict=args.strict),
        digits,
        parse_counts(args.counts, digits),
        args.target_count,
        [a.strip() for a in args.arms.split(",")],
        args.gan,
        min(args.gan_steps, args.max_steps or args.gan_steps),
        args.batch_size,
        args.sample_interval,
        [args.seed + i for i in range(args.seeds)],
        args.epochs,
        args.classifier_batch_size,
        output_dir,
        source=args.data_dir,
        gan_kwargs={
            "base_filters": args.base_filters,
            "latent_dim": args.latent_dim,
            "balanced_batches": args.balanced_batches,
        },
        runtime=runtime,
    )
    print(format_summary(report))
    print(f"report: {os.path.join(output_dir, 'report.json')}")
    return report


if __name__ == "__main__":
    main()
