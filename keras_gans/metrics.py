"""Generative quality metrics: FID, KID, Inception Score, and a domain-translation score.

The formulas are computed in NumPy / SciPy from activations, so any feature extractor can be used:

* FID, Frechet Inception Distance (Heusel et al. 2017, "GANs Trained by a Two Time-Scale Update Rule
  Converge to a Local Nash Equilibrium"): ``||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))``.
* KID, Kernel Inception Distance (Binkowski et al. 2018, "Demystifying MMD GANs"): the unbiased
  estimator of MMD^2 with the cubic polynomial kernel ``k(x, y) = (x.y / d + 1)^3``, averaged over
  random subsets (its standard deviation over the subsets is reported too).
* IS, Inception Score (Salimans et al. 2016, "Improved Techniques for Training GANs"):
  ``exp(E_x KL(p(y|x) || p(y)))``, mean and standard deviation over splits.
* Translation score (for CycleGAN): a small CNN is trained on real A (label 0) vs real B (label 1)
  from the dataset itself (so it works offline); the score is the share of translated A images it
  calls B, and of translated B images it calls A.

Feature extractors: ``"inception"`` (Keras InceptionV3, pool_3, 299x299, ImageNet weights from
``weights=FILE``, the Keras cache, or the Keras download), ``"model.h5:layer_name"`` (any saved
Keras model and the named layer), or a ``keras.Model`` object. Images are given in [-1, 1].

CLI: ``python -m keras_gans.metrics fid|kid|is|translation --real DIR --fake DIR [...]``.
Trainers use :class:`GenerativeEvaluator` (``--eval-every``).
"""

import argparse
import json
import os
import sys

import keras
import numpy as np
from scipy.special import softmax, xlogy
from tqdm import tqdm

from data_loaders.images import list_images, load_folder, load_images
from keras_gans.errors import KerasGansError

METRICS = ("fid", "kid", "is")
KID_PRECOMPUTE_MAX = 3000  # up to this many rows per set, KID computes the kernel matrices once
INCEPTION_URL = "https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/"
INCEPTION_FILES = {
    "features": "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5",
    "probs": "inception_v3_weights_tf_dim_ordering_tf_kernels.h5",
}


# ----------------------------------------------------------------------------- formulas


def feature_statistics(features):
    """Mean and covariance (rows are samples) of a feature array, in float64."""
    f = np.asarray(features, dtype=np.float64)
    return f.mean(axis=0), np.atleast_2d(np.cov(f, rowvar=False))


def frechet_distance(mu1, sigma1, mu2, sigma2):
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2) (Heusel et al. 2017)."""
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    s1, s2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    if mu1.shape != mu2.shape or s1.shape != s2.shape:
        raise ValueError(f"shape mismatch: {mu1.shape}, {s1.shape} vs {mu2.shape}, {s2.shape}")
    diff = mu1 - mu2
    # Tr((S1 S2)^(1/2)) = Tr((S1^(1/2) S2 S1^(1/2))^(1/2)): the latter is symmetric PSD, so an
    # eigen-decomposition gives it exactly and stably (no complex parts as with sqrtm(S1 S2)).
    w, v = np.linalg.eigh(s1)
    sqrt_s1 = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T
    m = sqrt_s1 @ s2 @ sqrt_s1
    tr_covmean = np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2.0), 0.0, None)).sum()
    return max(float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean), 0.0)


def fid_from_features(a, b):
    """FID between two feature sets ``(n, d)``."""
    return frechet_distance(*feature_statistics(a), *feature_statistics(b))


def polynomial_kernel(x, y):
    """The KID kernel ``k(x, y) = (x.y / d + 1)^3`` between the rows of ``x`` and ``y``."""
    k = x @ y.T / x.shape[1] + 1.0
    return k * k * k


def _mmd2(kxx, kyy, kxy):
    m, n = len(kxx), len(kyy)
    return (
        (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
        + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
        - 2.0 * kxy.sum() / (m * n)
    )


def mmd2_unbiased(x, y):
    """Unbiased estimator of MMD^2 with :func:`polynomial_kernel` (Binkowski et al. 2018)."""
    return _mmd2(polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y))


def kid_from_features(a, b, num_subsets=100, subset_size=1000, seed=0):
    """KID between two feature sets: (mean, std) of :func:`mmd2_unbiased` over ``num_subsets``
    random subsets (without replacement) of ``subset_size`` rows of each set."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    m = min(subset_size, len(a), len(b))
    if m < 2:
        raise ValueError(f"KID needs at least 2 samples per set (got {len(a)} and {len(b)})")
    if m == len(a) == len(b):  # every subset is the whole set
        return float(mmd2_unbiased(a, b)), 0.0
    if max(len(a), len(b)) <= KID_PRECOMPUTE_MAX:  # kernels once, subsets by indexing
        kaa, kbb, kab = polynomial_kernel(a, a), polynomial_kernel(b, b), polynomial_kernel(a, b)
        mmd = lambda i, j: _mmd2(kaa[np.ix_(i, i)], kbb[np.ix_(j, j)], kab[np.ix_(i, j)])
    else:
        mmd = lambda i, j: mmd2_unbiased(a[i], b[j])
    rng = np.random.default_rng(seed)
    pick = lambda x: rng.choice(len(x), m, replace=False)
    values = [mmd(pick(a), pick(b)) for _ in range(num_subsets)]
    return float(np.mean(values)), float(np.std(values))


def inception_score(probs, splits=10):
    """Inception Score of class probabilities ``(n, classes)``: (mean, std) over ``splits``."""
    p = np.asarray(probs, dtype=np.float64)
    scores = []
    for part in np.array_split(p, max(1, min(splits, len(p)))):
        marginal = part.mean(axis=0, keepdims=True)
        kl = (xlogy(part, part) - xlogy(part, marginal)).sum(axis=1).mean()
        scores.append(np.exp(kl))
    return float(np.mean(scores)), float(np.std(scores))


# ----------------------------------------------------------------------------- feature extractors


class InceptionWeightsError(KerasGansError, RuntimeError):
    """The InceptionV3 ImageNet weights are neither given, cached, nor downloadable."""


def _keras_cache_models():
    home = os.environ.get("KERAS_HOME") or os.path.expanduser(os.path.join("~", ".keras"))
    return [os.path.join(home, "models"), os.path.join("/tmp", ".keras", "models")]


def inception_model(output="features", weights=None):
    """InceptionV3 at 299x299: pool_3 features (2048-d, ``output="features"``) or probabilities.

    ``weights``: a local ImageNet weights file; the with-top file serves both outputs, the notop
    one only features. Without it, the Keras cache (``~/.keras/models``) or the Keras download.
    """
    apps, fname, shape = keras.applications, INCEPTION_FILES[output], (299, 299, 3)
    if weights is not None and not os.path.isfile(weights):
        raise FileNotFoundError(f"InceptionV3 weights file not found: {weights}")
    cached = [
        p for p in (os.path.join(d, fname) for d in _keras_cache_models()) if os.path.isfile(p)
    ]
    source = weights or (cached[0] if cached else "imagenet")
    try:
        if output == "probs":
            return apps.InceptionV3(include_top=True, weights=source, input_shape=shape)
        try:
            return apps.InceptionV3(
                include_top=False, weights=source, input_shape=shape, pooling="avg"
            )
        except ValueError:
            if source == "imagenet":
                raise
            # A with-top weights file also holds everything up to pool_3.
            full = apps.InceptionV3(include_top=True, weights=source, input_shape=shape)
            return keras.Model(full.input, full.get_layer("avg_pool").output)
    except Exception as err:
        where = f"from {source}" if source != "imagenet" else "(download failed; offline?)"
        raise InceptionWeightsError(
            f"cannot load the InceptionV3 ImageNet weights {where}: {err}\n"
            f"Download {INCEPTION_URL}{fname} on a machine with internet and either pass it with "
            f"--weights FILE (weights=FILE) or place it at {_keras_cache_models()[0]}/{fname}"
        ) from err


def _model_from_spec(spec, weights=None):
    """``"model.h5:layer_name"`` (or just ``"model.h5"``) -> a Keras model outputting that layer."""
    from keras_gans import load_model

    path, layer = spec, None
    head, _, tail = spec.rpartition(":")
    if head and len(head) > 1 and tail and "/" not in tail and "\\" not in tail:
        path, layer = head, tail
    model = load_model(path)
    if weights is not None:
        model.load_weights(weights)
    if layer is None:
        return model
    names = [lyr.name for lyr in model.layers]
    if layer not in names:
        raise ValueError(f"{path} has no layer {layer!r}; its layers are: {', '.join(names)}")
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    return keras.Model(inputs, model.get_layer(layer).output)


def _resize(x, size):
    if size is None or tuple(x.shape[1:3]) == tuple(size):
        return x
    out = keras.ops.image.resize(x, tuple(size), interpolation="bilinear", antialias=True)
    return keras.ops.convert_to_numpy(out)


def _as_probabilities(x):
    if x.min() >= 0.0 and np.allclose(x.sum(axis=1), 1.0, atol=1e-3):
        return x
    return softmax(x, axis=1)


class FeatureExtractor:
    """Images in [-1, 1] (an array, or a list of file paths) -> activations ``(n, d)``, batched.

    ``spec``: ``"inception"``, ``"model.h5:layer_name"``, or a ``keras.Model``. ``output="probs"``
    gives class probabilities for the Inception Score (a user model's outputs are softmaxed unless
    they already are probabilities). Spatial feature maps are averaged over space. Images are
    resized to the model input size, gray ones tiled to RGB; files are loaded at ``size``.
    """

    def __init__(
        self,
        spec="inception",
        weights=None,
        output="features",
        batch_size=50,
        size=None,
        progress=False,
    ):
        if output not in INCEPTION_FILES:
            raise ValueError(f"output must be 'features' or 'probs', not {output!r}")
        self.spec, self.weights, self.output = spec, weights, output
        self.batch_size, self.progress, self.preprocess = batch_size, progress, None
        if isinstance(spec, keras.Model):
            self.model = spec
        elif spec == "inception":
            self.model = inception_model(output, weights)
            self.preprocess = keras.applications.inception_v3.preprocess_input
        elif isinstance(spec, str | os.PathLike):
            self.model = _model_from_spec(os.fspath(spec), weights)
        else:
            raise TypeError(f"extractor: 'inception', 'model.h5:layer' or a keras.Model: {spec!r}")
        shape = self.model.input_shape
        self.input_size = tuple(shape[1:3]) if None not in shape[1:3] else None
        self.channels = shape[-1]
        self.size = size or self.input_size

    def _batch(self, x):
        x = _resize(np.asarray(x, dtype=np.float32), self.input_size)
        if x.shape[-1] == 1 and self.channels == 3:
            x = np.repeat(x, 3, axis=-1)
        elif x.shape[-1] == 3 and self.channels == 1:
            x = x.mean(axis=-1, keepdims=True)
        if self.preprocess is not None:  # Inception's own preprocessing, from [0, 255]
            x = self.preprocess((x + 1.0) * 127.5)
        out = keras.ops.convert_to_numpy(self.model(x, training=False)).astype(np.float64)
        return out.reshape(len(out), -1, out.shape[-1]).mean(axis=1) if out.ndim > 2 else out

    def __call__(self, images):
        is_paths = isinstance(images, list | tuple) and isinstance(images[0], str | os.PathLike)
        if is_paths and self.size is None:
            raise ValueError("the model takes any image size: give size= (--size) to load files")
        outs = []
        starts = range(0, len(images), self.batch_size)
        for i in tqdm(starts, desc="features", unit="batch", disable=not self.progress):
            batch = images[i : i + self.batch_size]
            outs.append(self._batch(load_images(batch, self.size)[0] if is_paths else batch))
        out = np.concatenate(outs)
        return _as_probabilities(out) if self.output == "probs" else out


def _subsample(items, max_images, seed):
    if not max_images or len(items) <= max_images:
        return items
    idx = np.sort(np.random.default_rng(seed).choice(len(items), max_images, replace=False))
    return [items[i] for i in idx] if isinstance(items, list) else np.asarray(items)[idx]


class GenerativeEvaluator:
    """Real features computed once; ``evaluator(fake_images)`` -> ``{"fid", "kid", "kid_std"}``.

    ``extractor``: as :class:`FeatureExtractor` (or one); ``metrics`` from ``("fid", "kid", "is")``
    (IS adds ``"is"``, ``"is_std"``); at most ``max_images`` real and fake images are used.
    """

    def __init__(
        self,
        real_images,
        extractor="inception",
        metrics=("fid", "kid"),
        max_images=1000,
        weights=None,
    ):
        self.metrics = tuple(m.lower() for m in metrics)
        unknown = set(self.metrics) - set(METRICS)
        if unknown:
            raise ValueError(f"unknown metrics {sorted(unknown)}; choose from {METRICS}")
        self.max_images = max_images
        spec = extractor
        if isinstance(extractor, FeatureExtractor):
            spec, weights = extractor.spec, weights or extractor.weights
        self.extractor = self.prob_extractor = self.real_features = None
        if {"fid", "kid"} & set(self.metrics):
            given = isinstance(extractor, FeatureExtractor)
            self.extractor = extractor if given else FeatureExtractor(spec, weights)
            self.real_features = self.extractor(_subsample(real_images, max_images, seed=0))
            self.real_stats = feature_statistics(self.real_features)
        if "is" in self.metrics:
            self.prob_extractor = FeatureExtractor(spec, weights, output="probs")

    def __call__(self, fake_images):
        fake = _subsample(fake_images, self.max_images, seed=1)
        result = {}
        if self.extractor is not None:
            feats = self.extractor(fake)
            if "fid" in self.metrics:
                result["fid"] = frechet_distance(*self.real_stats, *feature_statistics(feats))
            if "kid" in self.metrics:
                result["kid"], result["kid_std"] = kid_from_features(self.real_features, feats)
        if self.prob_extractor is not None:
            result["is"], result["is_std"] = inception_score(self.prob_extractor(fake))
        return result


# ----------------------------------------------------------------------------- translation score


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


def _apply_batched(fn, images, batch_size=32):
    outs = [fn(images[i : i + batch_size]) for i in range(0, len(images), batch_size)]
    return np.concatenate([keras.ops.convert_to_numpy(o) for o in outs])


def train_domain_classifier(real_A, real_B, epochs=10, seed=0, size=64, holdout=0.2, batch_size=32):
    """Train :func:`domain_classifier` on real A (0) vs real B (1), resized to ``size``.

    A ``holdout`` share of each domain is kept out of training. Returns ``(is_b, accuracy)``:
    ``is_b(images)`` -> bool array, and the accuracy on the held-out images (None if too few).
    """
    rng = np.random.default_rng(seed)
    prep = lambda x: _resize(np.asarray(x, dtype=np.float32), (size, size))
    train, held = [], []
    for x, label in ((prep(real_A), 0.0), (prep(real_B), 1.0)):
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
    is_b = lambda x: _apply_batched(clf, prep(x), 128)[:, 0] > 0.5
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


# ----------------------------------------------------------------------------- command line


def _parser():
    description = __doc__.partition("\n")[0]
    parser = argparse.ArgumentParser("python -m keras_gans.metrics", description=description)
    sub = parser.add_subparsers(dest="metric", required=True)
    for name in METRICS:
        p = sub.add_parser(name, help=f"{name.upper()} of the images in --fake")
        if name != "is":
            p.add_argument("--real", required=True, help="folder of real images")
        p.add_argument("--fake", required=True, help="folder of generated images")
        p.add_argument("--extractor", default="inception", help="inception | model.h5:layer")
        p.add_argument("--weights", help="InceptionV3 ImageNet weights .h5 (with top for IS)")
        p.add_argument("--size", type=int, help="load size for models with free input size")
        p.add_argument("--max-images", type=int, default=0, help="random subset (0 = all)")
        p.add_argument("--batch-size", type=int, default=50)
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--output", help="write the JSON result here")
        if name == "kid":
            p.add_argument("--num-subsets", type=int, default=100)
            p.add_argument("--subset-size", type=int, default=1000)
        if name == "is":
            p.add_argument("--splits", type=int, default=10)
    p = sub.add_parser("translation", help="domain-classifier score of translated images")
    for flag in ("--real-a", "--real-b"):
        p.add_argument(flag, required=True, help="folder of real images of that domain")
    p.add_argument("--fake-a", help="folder of translated B images (B->A)")
    p.add_argument("--fake-b", help="folder of translated A images (A->B)")
    p.add_argument("--size", type=int, default=64, help="classifier image size")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output", help="write the JSON result here")
    return parser


def main(argv=None):
    args = _parser().parse_args(argv)
    result = {"metric": args.metric}
    if args.metric == "translation":
        dirs = {k: getattr(args, k) for k in ("real_a", "real_b", "fake_a", "fake_b")}
        images = [load_folder(d, args.size) if d else None for d in dirs.values()]
        kw = dict(epochs=args.epochs, seed=args.seed, size=args.size)
        score = translation_score_from_images(*images, **kw)
        result.update(dirs, size=args.size, **score)
    else:
        output = "probs" if args.metric == "is" else "features"
        extractor = FeatureExtractor(
            args.extractor, args.weights, output, args.batch_size, args.size, progress=True
        )
        fake = _subsample(list_images(args.fake), args.max_images, args.seed + 1)
        result.update(extractor=args.extractor, fake=args.fake, n_fake=len(fake))
        if args.metric == "is":
            result["is"], result["is_std"] = inception_score(extractor(fake), args.splits)
        else:
            real = _subsample(list_images(args.real), args.max_images, args.seed)
            result.update(real=args.real, n_real=len(real))
            real_f, fake_f = extractor(real), extractor(fake)
            if args.metric == "fid":
                result["fid"] = fid_from_features(real_f, fake_f)
            else:
                result["kid"], result["kid_std"] = kid_from_features(
                    real_f, fake_f, args.num_subsets, args.subset_size, args.seed
                )
    text = json.dumps(result, indent=2)
    if args.output:
        os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
        with open(args.output, "w") as f:
            f.write(text + "\n")
    print(text)
    return result


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
