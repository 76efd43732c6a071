"""AnoGAN: anomaly scores and anomaly maps by a latent search through a DCGAN of normal images.

Schlegl, Seeböck, Waldstein, Schmidt-Erfurth and Langs, "Unsupervised Anomaly Detection with
Generative Adversarial Networks to Guide Marker Discovery", IPMI 2017 (arXiv:1703.05921), as the
fourth report explains it. A DCGAN (:mod:`keras_gans.dcgan`) learns only normal images. For a query
image x, G and D are frozen and a latent z, drawn at random, is moved by gradient descent so that
G(z) matches x; what the generator cannot reproduce is anomalous. Paper, Sec. 2.2 and 2.3 (the
losses are :mod:`keras_gans.losses`'s ``anogan_*``):

* residual loss        L_R(z) = sum |x - G(z)|                                     (Eq. 2)
* discrimination loss  L_D(z) = sum |f(x) - f(G(z))|, f an intermediate layer of D (Eq. 4, the
  paper's "improved discrimination loss based on feature matching")
* total loss           L(z) = (1 - lambda) L_R(z) + lambda L_D(z), lambda = 0.1   (Eq. 5)
* anomaly score        A(x) = (1 - lambda) R(x) + lambda D(x), R and D the two losses after
  Gamma = 500 steps                                                                (Eq. 6)
* anomaly map          |x - G(z_Gamma)|, the residual image (Sec. 2.3)

Code (vs. paper): ``z`` = z_gamma, ``features`` = f, ``lambda_`` = lambda, ``iterations`` = Gamma.

Faithful: z is a ``keras.Variable`` optimised by Adam through a ``GradientTape`` (the paper's form;
tkwoo/anogan-keras put a trainable Dense + sigmoid in front of G only because a Keras 2 input could
not be trained), L1 sums, lambda = 0.1, 500 iterations, the score is the final total loss. Choices
the paper leaves open, and changes:

* the whole batch of query images is searched at once, one z row per image; the loss is summed over
  the batch, so each row's gradient is its own image's gradient and images never interact (a batch
  mean would only rescale it; Adam is per coordinate). The last chunk is padded, not retraced;
* z ~ N(0, 1) by default (our choice), in training and search alike; ``--z-prior uniform``
  (U(-1, 1); the fourth report: z is drawn "from P_z, a uniform distribution") trains the DCGAN on
  it and starts the search from it; ``score`` reads the prior from the run's ``summary.json``.
  Adam's learning rate is our choice, 0.003, picked on the *validation* halves of the one-class
  protocol (:mod:`keras_gans.experiments.one_class`) on the full MNIST, one seed, over 0.01 (mean
  AUROC over the ten digits 0.915 against 0.892; the test halves were scored only after) and 0.001
  (lower on each of digits 0-5, by 0.006 to 0.061): a longer step lets z reach images the DCGAN was
  not trained on, so anomalies reconstruct well too. On the same validation halves, starting from
  the best of 16 draws (by L) moved the mean by -0.001 and the uniform prior by -0.013, so z
  starts from one draw, as in the paper, and N(0, 1) stays; a 256-d z (Deep SVDD's AnoGAN) was
  lower on digits 2, 5 and 7 by 0.03 to 0.07, so tkwoo's 100 stays;
* score, reconstruction and map are all taken at z_Gamma (the loss is evaluated once more after the
  last update; tkwoo reports the loss before it);
* the default feature layer f is the deepest convolutional activation of D (the last LeakyReLU with
  a 4-D output, as LeeDoYup/AnoGAN-tf uses ``h3``); tkwoo used the first pooled block. Configurable;
  on the one-class validation halves (seed 0) the three activations gave mean AUROC 0.915 (first),
  0.910 (second), 0.915 (deepest), so the default stayed;
* MNIST runs at 32x32x1 with one digit normal (default 1, tkwoo's choice), the DCGAN trained by
  :meth:`keras_gans.training.GANTrainer.run`; the splits, the threshold (maximum F1 on a validation
  half, reported on a test half) and the report files are :mod:`keras_gans.experiments.anogan_eval`;
* the search runs on one device; ``--strategy`` applies to the DCGAN training.

CLI: ``python -m keras_gans.anogan train|score`` (``--help`` on each lists the options).
"""

import logging
import os

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops
from tqdm.auto import tqdm

from keras_gans import cli, losses, reports
from keras_gans.dcgan import DCGAN
from keras_gans.errors import ConfigError
from keras_gans.experiments.anogan_eval import (
    EVAL_PER_CLASS,
    THRESHOLD_RULES,
    class_index,
    evaluate_and_write,
    evaluation_splits,
    load_pair,
    load_splits,
    run_models,
    score_folder,
    trained_prior,
)

log = logging.getLogger(__name__)

# The paper's search settings, and tkwoo/anogan-keras's MNIST setting for the DCGAN.
NORMAL_CLASS = 1  # tkwoo: digit 1 is normal
IMG_SIZE = 32  # MNIST's 28x28 resized to the DCGAN's 32x32x1
LATENT_DIM = 100
GF = DF = 64  # keras_gans.dcgan's filters
BATCH_SIZE = 64  # tkwoo
EPOCHS = 10  # tkwoo: 10 epochs (about 1,000 steps on MNIST's 6,742 ones)
SAMPLE_INTERVAL = 200
LAMBDA = 0.1  # paper
ITERATIONS = 500  # paper: Gamma = 500
LEARNING_RATE = 0.003  # Adam on z; not given in the paper (chosen on validation, above)
SEARCH_BATCH = 64  # images searched together
SCORE_DIR = os.path.join("output", "anogan", "score")  # score's reports, given --model
Z_PRIORS = ("normal", "uniform")


def default_feature_layer(discriminator):
    """Name of D's deepest convolutional activation: the last LeakyReLU with a 4-D output.

    Falls back to the last layer with a 4-D output (a feature map) that is not the input.
    """
    maps = [layer for layer in discriminator.layers[1:] if len(layer.output.shape) == 4]
    lrelus = [layer for layer in maps if isinstance(layer, layers.LeakyReLU)]
    if lrelus or maps:
        return (lrelus or maps)[-1].name
    raise ConfigError(
        f"{discriminator.name} has no layer with a feature-map output; pass --feature-layer "
        "(feature_layer=) the name of an intermediate layer"
    )


class NormalDCGAN(DCGAN):
    """:mod:`keras_gans.dcgan`'s DCGAN on normal images only, tkwoo's run length; z is drawn from
    ``z_prior`` (``"normal"``: N(0, 1), ``"uniform"``: U(-1, 1)), which :class:`AnoGAN` must share."""

    name = "anogan"
    default_epochs = EPOCHS
    default_batch_size = BATCH_SIZE
    default_sample_interval = SAMPLE_INTERVAL

    def __init__(self, *args, z_prior="normal", **kwargs):
        self.z_prior = _check_prior(z_prior)
        super().__init__(*args, **kwargs)

    def noise(self, n, *key):
        if self.z_prior == "uniform":
            return self.rng(*key).uniform(-1.0, 1.0, (n, self.latent_dim)).astype(np.float32)
        return super().noise(n, *key)

    def config(self):
        return {**super().config(), "z_prior": self.z_prior}


def _check_prior(z_prior):
    if z_prior not in Z_PRIORS:
        raise ConfigError(f"--z-prior must be 'normal' or 'uniform', got {z_prior!r}")
    return z_prior


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
        z_prior: ``"normal"`` (N(0, 1)) or ``"uniform"`` (U(-1, 1)): the prior G was trained on.
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
            raise ConfigError(f"--lambda (lambda_) must lie in [0, 1], got {lambda_}")
        if iterations < 1 or batch_size < 1:
            raise ConfigError("--iterations and the search batch size must be >= 1")
        _check_prior(z_prior)
        self.generator = generator
        self.discriminator = discriminator
        self.feature_layer = feature_layer or default_feature_layer(discriminator)
        try:
            output = discriminator.get_layer(self.feature_layer).output
        except ValueError as err:
            names = ", ".join(layer.name for layer in discriminator.layers)
            raise ConfigError(
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
        """Per image: L (Eq. 5, at z_Gamma the score A(x), Eq. 6), L_R (Eq. 2), L_D (Eq. 4), G(z)."""
        gz = ops.cast(self.generator(self.z, training=False), "float32")
        residual = losses.anogan_residual(x, gz)
        discrimination = losses.anogan_discrimination(fx, self.features(gz, training=False))
        loss = losses.anogan_loss(residual, discrimination, self.lambda_)
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
            raise ConfigError(
                f"images must be shaped (n, {', '.join(map(str, self.image_shape))}) to match the "
                f"generator, got {images.shape}"
            )
        n = len(images)
        if n == 0:
            raise ConfigError("no images to score")
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
            steps = []
            for _ in range(self.iterations):
                steps.append(self._step(x, fx))
                bar.update(1)
            history[:, start:stop] = np.stack([np.asarray(v) for v in steps])[:, : stop - start]
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


# --- command line -----------------------------------------------------------------------------------
def _search_args(parser):
    add = parser.add_argument
    add("--data-dir", default=None, help="MNIST source or class folders (none: offline digits)")
    add("--normal-class", default=str(NORMAL_CLASS), help="the class the DCGAN learns")
    add(
        "--iterations",
        type=cli.positive_int,
        default=ITERATIONS,
        help="Adam steps on z, the paper's Gamma",
    )
    add("--lambda", dest="lambda_", type=float, default=LAMBDA, help="weight of L_D, in [0, 1]")
    add("--learning-rate", type=cli.positive_float, default=LEARNING_RATE, help="Adam on z")
    add("--feature-layer", default=None, help="D layer f (none: the last conv activation)")
    add("--z-prior", default=None, choices=Z_PRIORS, help="z of G and search (none: the run's)")
    add("--eval-per-class", type=cli.positive_int, default=EVAL_PER_CLASS, help="held-out images")
    add("--threshold-rule", default="f1", choices=THRESHOLD_RULES, help="chosen on validation")


def _train_args(parser):
    _search_args(parser)
    add = parser.add_argument
    add("--img-size", type=cli.positive_int, default=IMG_SIZE, help="a power of two >= 8")
    add("--channels", type=int, default=1, choices=(1, 3), help="1: grey")
    add("--latent-dim", type=cli.positive_int, default=LATENT_DIM, help="z size")
    add("--gf", type=cli.positive_int, default=GF, help="DCGAN G filters")
    add("--df", type=cli.positive_int, default=DF, help="DCGAN D filters")
    add("--search-batch-size", type=cli.positive_int, default=SEARCH_BATCH, help="images at once")
    add("--no-score", action="store_true", help="train the DCGAN only")
    cli.add_training_args(parser, NormalDCGAN)


def _score_args(parser):
    _search_args(parser)
    add = parser.add_argument
    add(
        "--model", default=None, help="a models folder or a generator file (none: see --output-dir)"
    )
    add("--discriminator", default=None, help="the D file (none: beside --model)")
    add("--input", default=None, help="score this folder of unlabelled images instead")
    add("--threshold", type=float, default=None, help="with --input: flag scores >= this")
    add(
        "--output-dir",
        default=None,
        help="report folder; without --model also the train run's folder, whose models/ is scored "
        f"(none: train's default folder, or {SCORE_DIR} with --model)",
    )
    add("--batch-size", type=cli.positive_int, default=SEARCH_BATCH, help="images searched at once")
    add("--seed", type=cli.seed, default=None, help="seeds the held-out draw and the z draws")
    add("--strict", action="store_true", help="fail on an unreadable image")
    add("--jit", action="store_true", help="compile the search step with XLA")


def _anogan(args, generator, discriminator, batch_size, z_prior):
    options = (args.feature_layer, args.lambda_, args.iterations, args.learning_rate, batch_size)
    return AnoGAN(generator, discriminator, *options, z_prior=z_prior, jit=args.jit)


def _print(report):
    t = report["test_at_threshold"]
    print(
        f"AUROC test {report['auroc_test']:.3f} (validation {report['auroc_validation']:.3f}); "
        f"threshold {report['threshold']:.4g} ({report['threshold_rule']}): "
        f"precision {t['precision']:.3f}, recall {t['recall']:.3f} on test"
    )
    check = t.get("prediction_check") or {}
    if check.get("degenerate"):
        side = ("normal", "anomalous")[check["class"]]
        print(f"WARNING: {check['share']:.0%} of the test images are called {side}: degenerate")
    return report


def _run_dir(data_dir, class_name):
    name = os.path.basename(os.path.normpath(data_dir)) if data_dir else "digits"
    return os.path.join("output", "anogan", f"{name}_{class_name}")


def _train(args):
    """A DCGAN on the normal class only, then the evaluation (unless ``--no-score``)."""
    (x, y), test, classes = load_splits(args.data_dir, args.img_size, args.channels, args.strict)
    normal = class_index(args.normal_class, classes)
    x_train = x[y == normal]
    log.info("%d normal training images (class %s)", len(x_train), classes[normal])
    runtime = cli.runtime_kwargs(args)
    runtime["output_dir"] = args.output_dir or _run_dir(args.data_dir, classes[normal])
    sizes = {"latent_dim": args.latent_dim, "gf": args.gf, "df": args.df}
    z_prior = args.z_prior or "normal"
    gan = NormalDCGAN(images=x_train, z_prior=z_prior, **sizes, **runtime)
    cli.train(gan, args)
    if args.no_score or not gan.is_chief:  # the search runs once, on the chief
        return gan
    summary = reports.read_json(os.path.join(gan.output_dir, "summary.json"))
    gan_info = {k: summary.get(k) for k in ("steps", "epochs", "seconds", "batch_size")}
    gan_info.update(training_images=len(x_train), img_size=args.img_size, z_prior=z_prior, **sizes)
    splits = evaluation_splits(*test, normal, args.eval_per_class, args.seed)
    anogan = _anogan(args, gan.generator, gan.discriminator, args.search_batch_size, z_prior)
    extra = {"source": args.data_dir or "scikit-learn digits", "gan": gan_info}
    rule, out = args.threshold_rule, gan.output_dir
    return _print(evaluate_and_write(anogan, splits, classes, normal, out, args.seed, rule, extra))


def _score(args):
    """A saved G / D pair on the labelled held-out set, or on the ``--input`` images."""
    out = args.output_dir or (
        SCORE_DIR if args.model else _run_dir(args.data_dir, args.normal_class)
    )
    model = args.model or run_models(out)
    generator, discriminator = load_pair(model, args.discriminator)
    trained = trained_prior(model)
    if args.z_prior and args.z_prior != trained:
        log.warning("--z-prior %s, but G was trained on %s z", args.z_prior, trained)
    anogan = _anogan(args, generator, discriminator, args.batch_size, args.z_prior or trained)
    if args.input:
        return score_folder(anogan, args.input, out, args.seed, args.threshold, args.strict)
    size, channels = anogan.image_shape[0], anogan.image_shape[-1]
    _, test, classes = load_splits(args.data_dir, size, channels, args.strict)
    normal = class_index(args.normal_class, classes)
    splits = evaluation_splits(*test, normal, args.eval_per_class, args.seed)
    extra = {"source": args.data_dir or "scikit-learn digits", "model": model}
    rule = args.threshold_rule
    return _print(evaluate_and_write(anogan, splits, classes, normal, out, args.seed, rule, extra))


COMMANDS = [
    cli.Command(
        "train",
        "Train a DCGAN on the normal class, then score a held-out set (Schlegl et al. 2017).",
        _train_args,
        _train,
    ),
    cli.Command(
        "score",
        "Score the held-out set, or a folder (--input), with a saved generator and discriminator.",
        _score_args,
        _score,
    ),
]


def main(argv=None):
    """``python -m keras_gans.anogan train|score [options]``; returns the report (or the result)."""
    return cli.main("python -m keras_gans.anogan", __doc__.partition("\n")[0], COMMANDS, argv)


if __name__ == "__main__":
    main()
