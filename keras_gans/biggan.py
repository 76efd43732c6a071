"""Class-conditional BigGAN for melanoma / nevus at 128x128, in the suite's train_on_batch style.

Brock, Donahue and Simonyan, "Large Scale GAN Training for High Fidelity Natural Image Synthesis",
ICLR 2019 (arXiv:1809.11096), as BigGAN-PyTorch (ajbrock, the authors' code) trains it at 128 px.
The skin-lesion report trained a BigGAN at 128x128 on one GPU 2080ti, batch 16 at most, for a
million steps (12 days), with melanoma and nevus as classes (report 001, Sec. 3.4); PyTorch and
width 64 are its repository's (s-seo/SNU-GAN-project), not stated in the report. The networks are
in :mod:`keras_gans.biggan_networks`.

Reproduced: the hinge loss; Adam(beta_1=0, beta_2=0.999, eps=1e-6) with G 1e-4 and D 4e-4, one D
step per G step (BigGAN-PyTorch's launch script); an EMA of G's weights (decay 0.9999, copied
outright before ``ema_start``) used for every sample; the truncation trick. Deviations and choices:

* width ``ch`` = 32 by default (the report's repository: 64); no orthogonal regularisation
  (BigGAN-PyTorch's launch script turns it off too), no "standing statistics".
* The D step is one ``train_on_batch`` on ``[real; fake]`` with targets +1 / -1 (one update on the
  sum of both hinge terms, as BigGAN-PyTorch does); the G step trains ``combined`` (G -> frozen D).
* G makes the D step's fakes in training mode (batch statistics, as BigGAN-PyTorch's G stays in
  ``train()``): its BN moving averages and spectral-norm ``u`` move, its trainable weights do not.
  D has no BatchNorm and is frozen in the G step, so none of its weights change there.
* ``truncation_mode="resample"`` draws z from a normal truncated to ``[-t, t]`` (paper Sec. 3.1);
  ``"scale"`` multiplies z by ``t`` (BigGAN-PyTorch's ``--z_var``, ``t = sqrt(z_var)``).
* Fake classes are uniform, as in BigGAN-PyTorch (real batches keep the data's class imbalance).
* The loop, checkpoints, saving and resume are :meth:`keras_gans.training.GANTrainer.run`'s; each
  grid ``images/<step>.png`` shows the classes in rows, with the same z for every class.
"""

import os

import numpy as np
import tensorflow as tf
from keras import layers
from scipy.stats import truncnorm

from data_loaders.images import SkipReport
from data_loaders.isic import load_isic, resolve_isic, unconditional_dataset
from keras_gans import cli, reports, sampling
from keras_gans.averaging import WeightAverage
from keras_gans.biggan_networks import (
    ATTENTION_RES,
    CH,
    IMG_SIZE,
    LATENT_DIM,
    NUM_CLASSES,
    SHARED_DIM,
    build_combined,
    build_discriminator,
    build_generator,
    n_blocks,
)
from keras_gans.errors import ConfigError
from keras_gans.losses import d_hinge_fake, d_hinge_loss, d_hinge_real, g_hinge_loss
from keras_gans.saving import load_model
from keras_gans.training import GANTrainer

# BigGAN-PyTorch's training settings (the report states batch 16; networks: biggan_networks).
CLASS_NAMES = ("melanoma", "nevus")
G_LR = 1e-4
D_LR = 4e-4
BETA_1 = 0.0
BETA_2 = 0.999
ADAM_EPSILON = 1e-6
EMA_DECAY = 0.9999
EMA_START = 20_000
BATCH_SIZE = 16
EPOCHS = 800  # the report: a million steps; at batch 16 on ~16k melanoma / nevus images, ~800
SAMPLE_EPOCHS = 2  # on the built-in sample
SAMPLE_INTERVAL = 500
GRID_ROWS, GRID_COLS = 2, 8  # per class in each sample grid
TRUNCATION_MODES = ("resample", "scale")


def sample_latent(rng, n, dim, truncation=None, mode="resample"):
    """``n`` float32 latents from N(0, I); with ``truncation`` t, ``mode="resample"`` draws from the
    normal truncated to [-t, t] (the paper) and ``"scale"`` gives ``t * z`` (BigGAN-PyTorch z_var)."""
    if mode not in TRUNCATION_MODES:
        raise ConfigError(f"--truncation-mode must be one of {TRUNCATION_MODES}, got {mode!r}")
    if truncation is None:
        return rng.standard_normal((n, dim)).astype(np.float32)
    if truncation <= 0:
        raise ConfigError(f"--truncation must be > 0, got {truncation}")
    if mode == "scale":
        return (truncation * rng.standard_normal((n, dim))).astype(np.float32)
    z = truncnorm.rvs(-truncation, truncation, size=(n, dim), random_state=rng)
    return z.astype(np.float32)


# --- the trainer ------------------------------------------------------------------------------------
class BigGAN(GANTrainer):
    """The class-conditional BigGAN trainer; see the module docstring.

    Args:
        images, labels: training images (float32 ``(n, s, s, 3)`` in [-1, 1]) and class indices;
            when ``images`` is None, :func:`data_loaders.isic.load_isic` reads ``data_dir`` (None:
            the built-in synthetic lesion sample) on first use.
        img_size: 16, 32, 64 or 128 (the report: 128).
        ch: width multiplier of G and D.
        latent_dim: size of z (split into one chunk per G block plus one).
        num_classes, class_names: the classes (``labels`` index ``class_names``); the report
            "split melanoma and nevus" (report 001, Sec. 3.4), the default; ``("melanoma",
            "nevus", "other")`` (``--classes all``) also learns every other diagnosis.
        shared_dim: size of the shared class embedding.
        attention_res: resolution of the self-attention block in G and D (None: no attention).
        g_lr, d_lr: Adam learning rates.
        ema_decay, ema_start: ``g_ema`` is a copy of G before step ``ema_start`` and
            ``decay * g_ema + (1 - decay) * g`` after every later G step.
        truncation, truncation_mode: the truncation trick for the sample grids (see
            :func:`sample_latent`); training noise is never truncated.
        dedup: duplicates dropped when ISIC is read (:func:`data_loaders.isic.load_isic`).
        output_dir, seed, **runtime: see :class:`keras_gans.training.GANTrainer`.
    """

    name = "biggan"
    default_epochs = EPOCHS
    default_batch_size = BATCH_SIZE
    default_sample_interval = SAMPLE_INTERVAL
    loss_groups = {
        "discriminator": ["D_loss", "D_real", "D_fake"],
        "generator": ["G_loss"],
        "evaluation (--eval-every)": ["fid", "kid"],
    }

    def __init__(
        self,
        images=None,
        labels=None,
        data_dir=None,
        img_size=IMG_SIZE,
        ch=CH,
        latent_dim=LATENT_DIM,
        num_classes=NUM_CLASSES,
        class_names=CLASS_NAMES,
        shared_dim=SHARED_DIM,
        attention_res=ATTENTION_RES,
        g_lr=G_LR,
        d_lr=D_LR,
        ema_decay=EMA_DECAY,
        ema_start=EMA_START,
        truncation=None,
        truncation_mode="resample",
        output_dir=None,
        seed=None,
        dedup="lesion",
        **runtime,
    ):
        n_blocks(img_size)
        self.class_names = tuple(class_names)
        if len(self.class_names) != num_classes:
            raise ConfigError(f"class_names: {num_classes} classes need {num_classes} names")
        self.img_size, self.ch, self.latent_dim = img_size, ch, latent_dim
        self.num_classes, self.shared_dim = num_classes, shared_dim
        self.attention_res, self.g_lr, self.d_lr = attention_res, g_lr, d_lr
        self.ema_decay, self.ema_start = float(ema_decay), int(ema_start)
        self.truncation, self.truncation_mode = truncation, truncation_mode
        self.data_dir, self._data, self.dedup = data_dir, None, dedup
        if images is not None:
            self._data = self._check_data(images, labels)
        self.setup_runtime(output_dir or os.path.join("output", "biggan"), seed=seed, **runtime)
        n = GRID_ROWS * GRID_COLS  # the grids' fixed noise, the same for every class
        self.fixed_z = sample_latent(self.rng(4), n, latent_dim, truncation, truncation_mode)
        self.build_models()
        self._fakes = tf.function(lambda z, y: self.g([z, y], training=True), reduce_retracing=True)

    def _check_data(self, images, labels):
        images = np.asarray(images, np.float32)
        if images.ndim != 4 or images.shape[1:] != (self.img_size, self.img_size, 3):
            size = self.img_size
            raise ConfigError(f"images must be (n, {size}, {size}, 3), got {images.shape}")
        labels = np.zeros(len(images), np.int32) if labels is None else np.asarray(labels, np.int32)
        if labels.shape != (len(images),) or labels.min() < 0 or labels.max() >= self.num_classes:
            raise ConfigError(f"labels must be {len(images)} class indices < {self.num_classes}")
        return images, labels, "arrays"

    @property
    def data(self):
        """``(images, labels, root)``; ISIC (or the sample) is read on first use."""
        if self._data is None:
            report = SkipReport(self.skipped_files)
            options = dict(strict=self.strict, report=report, dedup=self.dedup)
            data = load_isic(self.data_dir, self.img_size, self.class_names, **options)
            self._data = data.images, data.labels.astype(np.int32), data.root
        return self._data

    images = property(lambda self: self.data[0])
    labels = property(lambda self: self.data[1])

    def build(self):
        adam = dict(beta_1=BETA_1, beta_2=BETA_2, epsilon=ADAM_EPSILON)
        shape = {k: v for k, v in self.config().items() if k not in ("latent_dim", "shared_dim")}
        self.d = build_discriminator(**shape, name="d")
        hinge = dict(loss=d_hinge_loss, metrics=[d_hinge_real, d_hinge_fake])
        self.compile(self.d, optimizer=self.make_optimizer(self.d_lr, **adam), **hinge)
        shape = self.config()
        self.g = build_generator(**shape, name="g")
        self.g_ema = build_generator(**shape, name="g_ema")
        self.g_ema.trainable = False  # changed only by the moving average
        self.average = WeightAverage([self.g_ema], [self.g])  # BN statistics and u vectors too
        self.average.copy()
        self.combined = build_combined(self.g, self.d, self.latent_dim)
        g_opt = self.make_optimizer(self.g_lr, **adam)
        self.compile(self.combined, frozen=(self.d,), loss=g_hinge_loss, optimizer=g_opt)
        return {"g": self.g, "g_ema": self.g_ema, "d": self.d}

    def config(self):
        names = ("img_size", "ch", "latent_dim", "num_classes", "shared_dim", "attention_res")
        return {k: getattr(self, k) for k in names}

    # --- the report's step ------------------------------------------------------------------------
    def update_ema(self, g_steps):
        """BigGAN-PyTorch ``ema.update(itr)``: copy before ``ema_start``, then average."""
        self.average.update(0.0 if g_steps < self.ema_start else self.ema_decay)

    def d_step(self, imgs, labels):
        """One D update on ``[real; G(z, y)]`` with hinge targets +1 / -1."""
        n = len(imgs)
        rng = self.rng(2, self.step)
        z = sample_latent(rng, n, self.latent_dim)
        y_fake = rng.integers(0, self.num_classes, n).astype(np.int32)
        fakes = np.asarray(self._fakes(tf.constant(z), tf.constant(y_fake)))
        x = np.concatenate([imgs, fakes])
        y = np.concatenate([np.asarray(labels, np.int32), y_fake])
        target = np.concatenate([np.ones((n, 1)), -np.ones((n, 1))]).astype(np.float32)
        if self.accumulate > 1:  # d_hinge_loss needs half real, half fake in every micro-batch
            pieces = np.array_split(np.arange(n), self.accumulate)
            order = np.concatenate([np.concatenate([p, p + n]) for p in pieces])
            x, y, target = x[order], y[order], target[order]
        logs = self.update(self.d, [x, y], target)
        names = {"D_loss": "loss", "D_real": "d_hinge_real", "D_fake": "d_hinge_fake"}
        return {k: logs[v] for k, v in names.items()}

    def g_step(self, batch_size):
        """One G update through the frozen D, then the EMA update."""
        rng = self.rng(3, self.step)
        z = sample_latent(rng, batch_size, self.latent_dim)
        y = rng.integers(0, self.num_classes, batch_size).astype(np.int32)
        logs = self.update(self.combined, [z, y], np.zeros((batch_size, 1), np.float32))
        self.update_ema(self.step)
        return {"G_loss": logs["loss"]}

    # --- the declaration for GANTrainer.run ---------------------------------------------------------
    def steps_per_epoch(self, batch_size):
        if batch_size % self.accumulate:
            raise ConfigError(f"--batch-size {batch_size} must divide by --accumulate")
        return len(self.images) // batch_size

    def batches(self, batch_size, epoch, skip):
        images, labels, _ = self.data
        data = unconditional_dataset(images, batch_size, self.seed, epoch, skip, labels=labels)
        return data.as_numpy_iterator()

    def train_step(self, batch):
        """A D step, then a G step (BigGAN-PyTorch ``train_fns.GAN_training_function``)."""
        imgs, labels = batch
        logs = self.d_step(imgs, labels)
        logs.update(self.g_step(len(imgs)))
        return logs

    def generate(self, class_index, z=None):
        """Images of class ``class_index`` from the EMA generator (inference mode)."""
        z = self.fixed_z if z is None else np.asarray(z, np.float32)
        return sampling.generate_images(
            self.g_ema, len(z), z=z, label=class_index, batch_size=len(z)
        )

    def sample_grid(self):
        images = np.concatenate([self.generate(i) for i in range(self.num_classes)])
        row_labels = [name if r == 0 else "" for name in self.class_names for r in range(GRID_ROWS)]
        rows = GRID_ROWS * self.num_classes
        return {"images": images, "rows": rows, "cols": GRID_COLS, "row_labels": row_labels}

    def summary_info(self):
        images, labels, root = self.data
        counts = {c: int(np.sum(labels == i)) for i, c in enumerate(self.class_names)}
        info = dict(dataset=root, images=counts, truncation=self.truncation)
        return dict(info, truncation_mode=self.truncation_mode, classes=list(self.class_names))

    def evaluate(self):
        """FID and KID of EMA samples (classes in the data's proportions) against the data."""
        if not self.eval_extractor:
            return {}
        images, labels, _ = self.data
        n = min(len(images), 1000)
        rng = self.rng(5, self.step)
        z = sample_latent(rng, n, self.latent_dim)
        y = labels[rng.integers(0, len(labels), n)].astype(np.int32)
        fakes = sampling.sample_function(self.g_ema)([tf.constant(z), tf.constant(y)])
        return self.fid_kid(images, np.asarray(fakes))

    def save_extras(self):
        reports.write_json(os.path.join(self.models_dir, "classes.json"), list(self.class_names))


# --- sampling saved generators -----------------------------------------------------------------------
def generate_images(
    generator,
    n_per_class,
    class_index,
    truncation=None,
    seed=0,
    truncation_mode="resample",
    batch_size=64,
):
    """``n_per_class`` images in [-1, 1] of class ``class_index`` from a BigGAN generator (a model or
    a path); z is drawn from ``(seed, class_index)`` and truncated as :func:`sample_latent` says."""
    model = load_model(generator) if isinstance(generator, (str, os.PathLike)) else generator
    rng = np.random.default_rng([seed, class_index])
    z = sample_latent(rng, n_per_class, model.inputs[0].shape[-1], truncation, truncation_mode)
    return sampling.generate_images(model, len(z), z=z, label=class_index, batch_size=batch_size)


def model_classes(generator, model_path=None):
    """Class names for a generator: ``classes.json`` beside the model, else the report's names."""
    n = next(layer.input_dim for layer in generator.layers if isinstance(layer, layers.Embedding))
    if model_path:
        path = os.path.join(os.path.dirname(os.path.abspath(model_path)), "classes.json")
        names = reports.read_json(path) if os.path.exists(path) else []
        if len(names) == n:
            return tuple(names)
    return CLASS_NAMES if n == len(CLASS_NAMES) else tuple(f"class_{i}" for i in range(n))


def generate_files(
    model_path, n, output_dir, truncation=None, truncation_mode="resample", seed=0, classes=None
):
    """Write ``n`` images per class into ``output_dir/<class>/``; returns ``{class: [paths]}``."""
    generator = load_model(model_path)
    sampling.check_generator(generator, model_path, conditional=True)
    classes = tuple(classes) if classes else model_classes(generator, model_path)
    written = {}
    for i, name in enumerate(classes):
        images = generate_images(generator, n, i, truncation, seed, truncation_mode)
        written[name] = sampling.write_images(images, os.path.join(output_dir, name), f"{name}_")
    return written


# --- command line -----------------------------------------------------------------------------------
def _truncation_args(parser):
    add = parser.add_argument
    add("--truncation", type=cli.positive_float, default=None, help="truncation threshold t")
    modes = "resample: truncated normal (paper); scale: t * z (BigGAN-PyTorch z_var)"
    add("--truncation-mode", default="resample", choices=TRUNCATION_MODES, help=modes)


def _train_args(parser):
    add = parser.add_argument
    add("--dataset", default="sample", choices=("sample", "isic"), help="isic: via isic-cli")
    add("--data-dir", default=None, help="an ISIC folder (see data_loaders.isic)")
    cli.add_isic_args(parser)
    add("--img-size", type=cli.positive_int, default=IMG_SIZE, help="16, 32, 64 or 128")
    add("--ch", type=cli.positive_int, default=CH, help="width multiplier (report's repo: 64)")
    add("--latent-dim", type=cli.positive_int, default=LATENT_DIM, help="size of z")
    add("--attention-res", type=cli.non_negative_int, default=ATTENTION_RES, help="0: none")
    add("--ema-decay", type=cli.fraction, default=EMA_DECAY, help="EMA decay of g_ema")
    add("--ema-start", type=cli.non_negative_int, default=EMA_START, help="steps G is copied")
    _truncation_args(parser)
    cli.add_training_args(parser, BigGAN)
    parser.epilog = f"Without --epochs: {SAMPLE_EPOCHS} on the built-in sample, {EPOCHS} otherwise."


def _train(args):
    data_dir = resolve_isic(args.dataset, args.data_dir)
    if args.epochs is None and args.max_steps is None and data_dir is None:
        args.epochs = SAMPLE_EPOCHS
    gan = BigGAN(
        data_dir=data_dir,
        img_size=args.img_size,
        ch=args.ch,
        latent_dim=args.latent_dim,
        attention_res=args.attention_res or None,
        ema_decay=args.ema_decay,
        ema_start=args.ema_start,
        truncation=args.truncation,
        truncation_mode=args.truncation_mode,
        num_classes=len(args.classes),
        class_names=args.classes,
        dedup=args.dedup,
        **cli.runtime_kwargs(args),
    )
    return cli.train(gan, args)


def _generate_args(parser):
    add = parser.add_argument
    add("--model", required=True, help="generator file, e.g. OUTPUT/models/g_ema.h5")
    add("--n", type=cli.positive_int, required=True, help="images per class")
    add("--output", required=True, help="folder; one sub-folder per class")
    _truncation_args(parser)
    add("--seed", type=cli.seed, default=0, help="noise seed")
    add("--classes", default=None, help="comma-separated names (none: classes.json beside it)")


def _generate(args):
    classes = args.classes.split(",") if args.classes else None
    written = generate_files(
        args.model, args.n, args.output, args.truncation, args.truncation_mode, args.seed, classes
    )
    counts = ", ".join(f"{k}: {len(v)}" for k, v in written.items())
    print(f"wrote {sum(map(len, written.values()))} image(s) to {args.output} ({counts})")
    return written


COMMANDS = [
    cli.Command("train", "Train the report's BigGAN (melanoma / nevus).", _train_args, _train),
    cli.Command("generate", "Write N images per class of a saved G.", _generate_args, _generate),
]


def main(argv=None):
    return cli.main("python -m keras_gans.biggan", __doc__.partition("\n")[0], COMMANDS, argv)


if __name__ == "__main__":
    main()
