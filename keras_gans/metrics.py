"""Generative quality metrics: FID, KID, Inception Score, and a domain-translation score.

The formulas are computed in NumPy / SciPy from activations, so any feature extractor can be used:

* FID, Frechet Inception Distance (Heusel et al. 2017, "GANs Trained by a Two Time-Scale Update Rule
  Converge to a Local Nash Equilibrium"): ``||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))``.
* KID, Kernel Inception Distance (Binkowski et al. 2018, "Demystifying MMD GANs"): the unbiased
  estimator of MMD^2 with the cubic polynomial kernel ``k(x, y) = (x.y / d + 1)^3``, averaged over
  random subsets (its standard deviation over the subsets is reported too).
* IS, Inception Score (Salimans et al. 2016, "Improved Techniques for Training GANs"):
  ``exp(E_x KL(p(y|x) || p(y)))``, mean and standard deviation over splits.
* Translation score (for CycleGAN, :mod:`keras_gans.translation_score`): the share of translated
  images that a small A-vs-B classifier, trained on the dataset itself, puts in the target domain.

Feature extractors: ``"inception"`` (Keras InceptionV3, pool_3, 299x299, ImageNet weights from
``weights=FILE``, the Keras cache, or the Keras download), ``"model.h5:layer_name"`` (any saved
Keras model and the named layer), or a ``keras.Model`` object. Images are given in [-1, 1]. Keras'
InceptionV3 is not the reference FID network (TF-GAN's and pytorch-fid's 2015 Inception), so each
FID written is keyed by its network, ``fid_keras_inception_v3`` (:func:`fid_key`): not comparable.

CLI: ``python -m keras_gans.metrics fid|kid|is|translation --real DIR --fake DIR [...]`` prints
the result as JSON (and writes it with ``--output``); missing Inception weights offline, a missing
folder or model file are one line ``error: ...`` (exit code 2). Trainers use
:class:`GenerativeEvaluator` (``--eval-every``).
"""

import functools
import json
import os

import keras
import numpy as np
from scipy.special import softmax, xlogy
from tqdm import tqdm

from data_loaders.download import is_network_error
from data_loaders.images import list_images, load_folder, load_images
from keras_gans import cli, reports
from keras_gans.errors import ConfigError, KerasGansError

# Re-exported: keras_gans.cyclegan imports these two from here.
from keras_gans.translation_score import (  # noqa: F401
    train_domain_classifier,
    translation_score_from_images,
)

METRICS = ("fid", "kid", "is")
FID_NETWORK = "keras_inception_v3"  # the network of "inception", named in every FID key
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


def fid_key(extractor="inception"):
    """The key of an FID by ``extractor`` (a spec, model or extractor): ``fid_<its network>``."""
    spec = getattr(extractor, "spec", extractor)
    name = spec.name if isinstance(spec, keras.Model) else os.path.basename(os.fspath(spec))
    name = FID_NETWORK if spec == "inception" else name
    return "fid_" + "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_")


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
        raise InceptionWeightsError(f"InceptionV3 weights file not found: {weights}")
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
    except Exception as err:  # Keras raises a bare Exception for a failed download
        # Only that, or what Keras and h5py raise for a file that is not these weights, is meant.
        bad_file = isinstance(err, (OSError, ValueError, KeyError))
        if not (is_network_error(err) if source == "imagenet" else bad_file):
            raise
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
        raise ConfigError(f"{path} has no layer {layer!r}; its layers are: {', '.join(names)}")
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


# ----------------------------------------------------------------------------- command line


def _image_args(parser, real=True, extra=()):
    """The options of ``fid``, ``kid`` and ``is``; ``extra``: ``(flag, type, default, help)``."""
    add = parser.add_argument
    if real:
        add("--real", required=True, help="folder of real images")
    add("--fake", required=True, help="folder of generated images")
    add("--extractor", default="inception", help="inception | MODEL.h5:LAYER | MODEL.h5")
    add("--weights", default=None, help="InceptionV3 ImageNet weights .h5 (with top for IS)")
    add("--size", type=cli.positive_int, default=None, help="load size for a free-size model")
    add("--max-images", type=cli.non_negative_int, default=0, help="random subset (0 = all)")
    add("--batch-size", type=cli.positive_int, default=50, help="images per forward pass")
    add("--seed", type=cli.seed, default=0, help="seeds the subsets")
    add("--output", default=None, help="also write the JSON result to this file")
    for flag, kind, default, text in extra:
        add(flag, type=kind, default=default, help=text)


def _translation_args(parser):
    add = parser.add_argument
    add("--real-a", required=True, help="folder of real domain-A images")
    add("--real-b", required=True, help="folder of real domain-B images")
    add("--fake-a", default=None, help="folder of translated B images (B->A)")
    add("--fake-b", default=None, help="folder of translated A images (A->B)")
    add("--size", type=cli.positive_int, default=64, help="classifier image size")
    add("--epochs", type=cli.positive_int, default=10, help="classifier training epochs")
    add("--seed", type=cli.seed, default=0, help="seeds the classifier and its held-out split")
    add("--output", default=None, help="also write the JSON result to this file")


def _report(args, result):
    if args.output:
        reports.write_json(args.output, result)
    print(json.dumps(result, indent=2))
    return result


def _image_metric(args):
    """``fid``, ``kid``, ``is`` on folders: the folders are listed before the network is loaded."""
    is_score = args.command == "is"
    fake = _subsample(list_images(args.fake), args.max_images, args.seed + 1)
    real = None if is_score else _subsample(list_images(args.real), args.max_images, args.seed)
    extractor = FeatureExtractor(
        args.extractor,
        args.weights,
        "probs" if is_score else "features",
        args.batch_size,
        args.size,
        progress=True,
    )
    result = {"metric": args.command, "extractor": args.extractor, "fake": args.fake}
    result["n_fake"] = len(fake)
    if is_score:
        result["is"], result["is_std"] = inception_score(extractor(fake), args.splits)
        return _report(args, result)
    result.update(real=args.real, n_real=len(real))
    real_f, fake_f = extractor(real), extractor(fake)
    if args.command == "fid":
        result[fid_key(args.extractor)] = fid_from_features(real_f, fake_f)
    else:
        result["kid"], result["kid_std"] = kid_from_features(
            real_f, fake_f, args.num_subsets, args.subset_size, args.seed
        )
    return _report(args, result)


def _translation(args):
    dirs = {k: getattr(args, k) for k in ("real_a", "real_b", "fake_a", "fake_b")}
    images = [load_folder(d, args.size) if d else None for d in dirs.values()]
    score = translation_score_from_images(
        *images, epochs=args.epochs, seed=args.seed, size=args.size
    )
    return _report(args, {"metric": "translation", **dirs, "size": args.size, **score})


_KID = (
    ("--num-subsets", cli.positive_int, 100, "random subsets averaged"),
    ("--subset-size", cli.positive_int, 1000, "images per subset (at most the set size)"),
)
_IS = (("--splits", cli.positive_int, 10, "splits of the images; mean and std over them"),)
_kid_args = functools.partial(_image_args, extra=_KID)
_is_args = functools.partial(_image_args, real=False, extra=_IS)
COMMANDS = [
    cli.Command("fid", "FID of --fake against --real.", _image_args, _image_metric),
    cli.Command("kid", "KID of --fake against --real.", _kid_args, _image_metric),
    cli.Command("is", "Inception Score of --fake.", _is_args, _image_metric),
    cli.Command(
        "translation",
        "Domain-classifier score of translated images.",
        _translation_args,
        _translation,
    ),
]


def main(argv=None):
    """``python -m keras_gans.metrics fid|kid|is|translation [options]``; returns the result."""
    return cli.main("python -m keras_gans.metrics", __doc__.partition("\n")[0], COMMANDS, argv)


if __name__ == "__main__":
    main()
