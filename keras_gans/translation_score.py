"""A domain-translation score for CycleGAN: a classifier of the two domains judges the translations.

A small CNN is trained on real A (label 0) vs real B (label 1) from the dataset itself, so the score
needs no pretrained network and works offline. The score of a translator is the share of translated
A images the classifier calls B (``a_to_b``) and of translated B images it calls A (``b_to_a``).
It measures how well the target domain's look is produced, not the quality of the images (FID and
KID in :mod:`keras_gans.metrics` do that).

CLI: ``python -m keras_gans.metrics translation --real-a DIR --real-b DIR --fake-a DIR --fake-b DIR``.
"""

import keras
import numpy as np


def _prepare(images, size):
    """Images as float32, resized to ``size`` x ``size`` (bilinear, antialiased) if they differ."""
    x = np.asarray(images, dtype=np.float32)
    if tuple(x.shape[1:3]) == (size, size):
        return x
    out = keras.ops.image.resize(x, (size, size), interpolation="bilinear", antialias=True)
    return keras.ops.convert_to_numpy(out)


def _apply_batched(fn, images, batch_size=32):
    outs = [fn(images[i : i + batch_size]) for i in range(0, len(images), batch_size)]
    return np.concatenate([keras.ops.convert_to_numpy(o) for o in outs])


def domain_classifier(input_shape, seed=0):
    """A small CNN: image in [-1, 1] -> P(domain B)."""
    init = lambda i: keras.initializers.HeNormal(seed=seed + i)
    inputs = keras.Input(input_shape)
    x = inputs
    for i, filters in enumerate((16, 32, 64)):
        x = keras.layers.Conv2D(
            filters, 3, strides=2, padding="same", activation="relu", kernel_initializer=init(i)
        )(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(1, activation="sigmoid", kernel_initializer=init(9))(x)
    model = keras.Model(inputs, outputs, name="domain_classifier")
    model.compile(keras.optimizers.Adam(1e-3), "binary_crossentropy", metrics=["accuracy"])
    return model


def train_domain_classifier(real_A, real_B, epochs=10, seed=0, size=64, holdout=0.2, batch_size=32):
    """Train :func:`domain_classifier` on real A (0) vs real B (1), resized to ``size``.

    A ``holdout`` share of each domain is kept out of training. Returns ``(is_b, accuracy)``:
    ``is_b(images)`` -> bool array, and the accuracy on the held-out images (None if too few).
    """
    rng = np.random.default_rng(seed)
    train, held = [], []
    for x, label in ((_prepare(real_A, size), 0.0), (_prepare(real_B, size), 1.0)):
        idx = rng.permutation(len(x))
        n_held = int(len(x) * holdout) if len(x) >= 5 else 0
        held.append(x[idx[:n_held]])
        train.append((x[idx[n_held:]], np.full(len(x) - n_held, label)))
    x_train, y_train = (np.concatenate(t) for t in zip(*train))
    weights = len(y_train) / (2.0 * np.bincount(y_train.astype(int)))  # balance the domains
    clf, bs = domain_classifier(x_train.shape[1:], seed), min(batch_size, len(x_train))
    for _ in range(epochs):  # equal-size batches keep one traced train step
        p = rng.permutation(len(x_train))
        for i in range(0, len(p) - bs + 1, bs):
            j = p[i : i + bs]
            clf.train_on_batch(
                x_train[j], y_train[j], sample_weight=weights[y_train[j].astype(int)]
            )
    is_b = lambda x: _apply_batched(clf, _prepare(x, size), 128)[:, 0] > 0.5
    return is_b, _domain_accuracy(is_b, *held)


def _domain_accuracy(is_b, images_A, images_B):
    hits = [is_b(x) == bool(label) for label, x in enumerate((images_A, images_B)) if len(x)]
    return float(np.mean(np.concatenate(hits))) if hits else None


def translation_score_from_images(
    real_A, real_B, fake_A=None, fake_B=None, test_A=None, test_B=None, classifier=None, **train_kw
):
    """Train the A-vs-B classifier on real images and score already translated images.

    ``fake_B`` are translated A images, ``fake_A`` translated B images. Returns ``a_to_b`` (share of
    fake_B called B), ``b_to_a`` (share of fake_A called A), their mean ``translation_score``, the
    classifier's held-out ``classifier_accuracy``, and its ``test_accuracy`` on real ``test_A`` /
    ``test_B`` when given. ``train_kw`` go to :func:`train_domain_classifier`; or pass its result
    as ``classifier`` to reuse one classifier across evaluations (as trainers do).
    """
    is_b, accuracy = classifier or train_domain_classifier(real_A, real_B, **train_kw)
    result = {"classifier_accuracy": accuracy}
    if test_A is not None and test_B is not None:
        result["test_accuracy"] = _domain_accuracy(is_b, test_A, test_B)
    if fake_B is not None:
        result["a_to_b"] = float(np.mean(is_b(fake_B)))
    if fake_A is not None:
        result["b_to_a"] = float(np.mean(~is_b(fake_A)))
    scores = [result[k] for k in ("a_to_b", "b_to_a") if k in result]
    result["translation_score"] = float(np.mean(scores)) if scores else None
    return result


def translation_score(
    translate_fn_AB, translate_fn_BA, real_A, real_B, test_A, test_B, epochs=10, seed=0, **train_kw
):
    """Domain-classifier score of a translator pair: ``translate_fn_AB`` maps a batch of A images in
    [-1, 1] to B images (and the reverse); either may be None. See
    :func:`translation_score_from_images`; ``train_kw`` go to :func:`train_domain_classifier`."""
    fake_B = _apply_batched(translate_fn_AB, test_A) if translate_fn_AB is not None else None
    fake_A = _apply_batched(translate_fn_BA, test_B) if translate_fn_BA is not None else None
    return translation_score_from_images(
        real_A, real_B, fake_A, fake_B, test_A, test_B, epochs=epochs, seed=seed, **train_kw
    )
