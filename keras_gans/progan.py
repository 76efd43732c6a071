"""ProGAN on ISIC skin lesions: G and D grown from 4x4 to ``img_size`` (default 128x128).

Karras, Aila, Laine and Lehtinen, "Progressive Growing of GANs for Improved Quality, Stability, and
Variation", ICLR 2018 (arXiv:1710.10196), as the official code trains it
(tkarras/progressive_growing_of_gans ``train.py``, ``loss.py``); networks in
:mod:`keras_gans.progan_networks`. Reproduced:

* growth (Sec. 3, A.1): 4x4, then for each doubling a fade-in phase and a stable phase, each of
  ``images_per_stage`` real images (the paper's 800k); the new block's weight ``alpha`` rises
  linearly over its fade-in, in G's output and after D's new block (:class:`~keras_gans.layers.
  FadeIn`), and the real images fade between the two resolutions too (official ``process_reals``);
* equalized learning rate, pixelwise normalization in G, minibatch stddev in D (Sec. 4.1, 4.2, 3);
* WGAN-GP with lambda 10 and the drift term ``0.001 * E[D(x)^2]`` (A.1; official
  ``D_wgangp_acgan``), one D step per G step; ``loss="lsgan"``: least squares instead (Mao et al.,
  targets 1 / 0), without penalty or drift;
* Adam(lr 0.001, beta_1 0, beta_2 0.99, eps 1e-8), batch 16 up to 128 px, Adam's moments reset
  when a phase starts (official ``reset_opt_for_new_lod=True``; the learning rate carries over,
  so ``--on-nan rollback``'s halving survives it); samples from an EMA of G (beta 0.999, official
  ``G_smoothing``, capped by ``(1 + step) / (10 + step)`` so that short runs' G_s is not their
  initial G; the cap passes 0.999 after 9,000 steps, a few percent of a paper-length run).

Keras 3 reads ``trainable`` when a train function is traced, so every phase gets new models over
the same layers (the banks of :mod:`keras_gans.progan_networks`), compiled afresh: one optimizer per
compiled model (``critic``: D's WGAN-GP update; ``combined``: G through the frozen D). The phase,
the images shown and alpha are checkpointed (with every bank layer), so a run resumes mid-fade at
the same alpha; the declared models (``g``, ``g_ema``, ``d``) are the current phase's. Each phase
leaves its grid in ``stages/``; ``images/<step>.png`` as every trainer. Unconditional: one run per
class (``class_name``), as the lesion pipeline trains DCGANs; the AC-GAN head is not reproduced.
"""

import math
import os

import numpy as np
import tensorflow as tf

from data_loaders.images import SkipReport, image_array
from data_loaders.isic import CLASSES, load_isic, resolve_isic, source_name, unconditional_dataset
from data_loaders.isic_metadata import parse_classes
from keras_gans import cli, plotting, sampling
from keras_gans.averaging import WeightAverage, warmup_decay
from keras_gans.errors import ConfigError
from keras_gans.layers import FadeIn
from keras_gans.losses import g_hinge_loss, least_squares
from keras_gans.progan_networks import (
    FMAP_BASE,
    FMAP_MAX,
    IMG_SIZE,
    LATENT_DIM,
    MBSTD_GROUP,
    Critic,
    build_combined,
    build_discriminator,
    build_generator,
    discriminator_bank,
    generator_bank,
    phases,
)
from keras_gans.training import GANTrainer

# The paper's training settings (Appendix A.1; the official train.py / loss.py).
LEARNING_RATE = 1e-3
BETA_1, BETA_2, ADAM_EPSILON = 0.0, 0.99, 1e-8
BATCH_SIZE = 16
IMAGES_PER_STAGE = 800_000
SAMPLE_IMAGES_PER_STAGE = 640  # on the built-in sample (two of its epochs per phase)
EMA_DECAY = 0.999
LOSSES = ("wgan-gp", "lsgan")
SAMPLE_INTERVAL = 500
GRID = (4, 8)


def downscale(images, factor):
    """Box-filter ``images`` (n, s, s, c) by an integer ``factor`` (official ``downscale2d``)."""
    if factor == 1:
        return images
    n, h, w, c = images.shape
    return images.reshape(n, h // factor, factor, w // factor, factor, c).mean(axis=(2, 4))


def real_batch(images, res, fading, alpha):
    """Real images at ``res``; while fading, ``alpha`` between them and their blurred half-size
    version, so D sees the same cross-fade on reals as on fakes (official ``process_reals``)."""
    x = downscale(images, images.shape[1] // res)
    if fading:
        low = downscale(x, 2).repeat(2, axis=1).repeat(2, axis=2)
        x = low + alpha * (x - low)
    return x.astype(np.float32)


class ProGAN(GANTrainer):
    """The progressive GAN trainer; see the module docstring.

    Args:
        images: ``(n, s, s, 3)`` in [-1, 1] to train on instead of ISIC (sets ``img_size``).
        data_dir, dataset, class_name, classes, dedup: the ISIC data, as :class:`keras_gans.dcgan.DCGAN`.
        img_size: the final resolution, a power of two >= 8.
        latent_dim, fmap_base, fmap_max, mbstd_group: the networks' shapes.
        images_per_stage: real images per fade-in and per stable phase (``None``: the paper's 800k,
            or 640 on the built-in sample).
        loss: ``"wgan-gp"`` (the paper's) or ``"lsgan"``.
        learning_rate, ema_decay: Adam's rate for G and D; the EMA of G.
        output_dir, seed, **runtime: see :class:`keras_gans.training.GANTrainer`.
    """

    name = "progan"
    default_batch_size = BATCH_SIZE
    default_sample_interval = SAMPLE_INTERVAL
    loss_groups = {
        "critic": ["D_loss", "D_real", "D_fake"],
        "generator": ["G_loss"],
        "gradient penalty": ["GP"],
        "growth (resolution, fade-in alpha)": ["resolution", "alpha"],
    }

    def __init__(
        self,
        images=None,
        data_dir=None,
        dataset="sample",
        class_name=None,
        classes=CLASSES,
        dedup="lesion",
        img_size=IMG_SIZE,
        latent_dim=LATENT_DIM,
        fmap_base=FMAP_BASE,
        fmap_max=FMAP_MAX,
        mbstd_group=MBSTD_GROUP,
        images_per_stage=None,
        loss="wgan-gp",
        learning_rate=LEARNING_RATE,
        ema_decay=EMA_DECAY,
        output_dir=None,
        seed=None,
        **runtime,
    ):
        if loss not in LOSSES:
            raise ConfigError(f"--loss must be one of {', '.join(LOSSES)}, got {loss!r}")
        if class_name is not None and class_name not in CLASSES:
            raise ConfigError(f"--class must be one of {', '.join(CLASSES)}, got {class_name!r}")
        if images is not None:
            images = image_array(images)
            if images.shape[3] != 3:
                raise ConfigError(f"images must be (n, s, s, 3), got {images.shape}")
            img_size = images.shape[1]
        self.phases = phases(img_size)
        on_sample = images is None and data_dir is None and dataset == "sample"
        if images_per_stage is None:
            images_per_stage = SAMPLE_IMAGES_PER_STAGE if on_sample else IMAGES_PER_STAGE
        if images_per_stage < 1:
            raise ConfigError(f"--images-per-stage must be >= 1, got {images_per_stage}")
        self.img_size, self.latent_dim, self.loss = int(img_size), int(latent_dim), loss
        self.fmap_base, self.fmap_max, self.mbstd_group = fmap_base, fmap_max, mbstd_group
        self.images_per_stage, self.learning_rate = int(images_per_stage), learning_rate
        self.ema_decay = float(ema_decay)
        self.dataset, self.data_dir, self.class_name = dataset, data_dir, class_name
        self.classes, self.dedup = parse_classes(classes), dedup
        self._images, self.data_root = images, "array" if images is not None else None
        run = os.path.join("output", self.name, source_name(images, data_dir, dataset, class_name))
        self.setup_runtime(output_dir or run, seed=seed, **runtime)
        self.phase = 0
        self.fixed_z = (
            self.rng(1).standard_normal((GRID[0] * GRID[1], latent_dim)).astype(np.float32)
        )
        self.build_models()
        self.stages_dir = os.path.join(self.output_dir, "stages")

    @property
    def images(self):
        """The training images in [-1, 1] at ``img_size``; ISIC's read on first use."""
        if self._images is None:
            classes = (self.class_name,) if self.class_name else self.classes
            root = resolve_isic(self.dataset, self.data_dir)
            options = dict(
                strict=self.strict, report=SkipReport(self.skipped_files), dedup=self.dedup
            )
            data = load_isic(root, self.img_size, classes, **options)
            self._images, self.data_root = data.images, data.root
        return self._images

    # --- models, one set per phase ------------------------------------------------------------------
    def build(self):
        shape = dict(fmap_base=self.fmap_base, fmap_max=self.fmap_max)
        self.g_bank = generator_bank(self.img_size, self.latent_dim, **shape, name="g")
        self.ema_bank = generator_bank(self.img_size, self.latent_dim, **shape, name="g_ema")
        self.d_bank = discriminator_bank(self.img_size, **shape, name="d")
        banks = list(self.ema_bank.values()), list(self.g_bank.values())
        self.average = WeightAverage(*banks, run_eagerly=self.run_eagerly)
        self.average.copy()  # G_s starts as a copy of G (official G.clone("Gs"))
        self._phase = tf.Variable(0, dtype=tf.int64, trainable=False, name="phase")
        self._shown = tf.Variable(0, dtype=tf.int64, trainable=False, name="shown")
        self._alpha = tf.Variable(1.0, dtype=tf.float32, trainable=False, name="alpha")
        return self._phase_models(self.phase)

    def _adam(self, learning_rate):
        return self.make_optimizer(
            learning_rate, beta_1=BETA_1, beta_2=BETA_2, epsilon=ADAM_EPSILON
        )

    def _phase_models(self, phase, learning_rates=None):
        res, fading = self.phases[phase]
        d_lr, g_lr = learning_rates or (self.learning_rate, self.learning_rate)
        self.compiled = {}
        self.d = build_discriminator(self.d_bank, res, fading, self.mbstd_group, name="d")
        self.critic = Critic(self.d, self.loss, name="critic")
        self.compile(self.critic, optimizer=self._adam(d_lr))
        self.g = build_generator(self.g_bank, res, fading, name="g")
        self.g_ema = build_generator(self.ema_bank, res, fading, name="g_ema")
        self.g_ema.trainable = False  # changed only by the moving average
        self.combined = build_combined(self.g, self.d, self.latent_dim)
        g_loss = least_squares if self.loss == "lsgan" else g_hinge_loss  # WGAN: -E[D(G(z))]
        self.compile(self.combined, frozen=(self.d,), loss=g_loss, optimizer=self._adam(g_lr))
        self._phase.assign(phase)
        return {"g": self.g, "g_ema": self.g_ema, "d": self.d}

    def enter_phase(self, phase):
        """New models for ``phase`` over the same layers; fresh Adam moments, the same rates."""
        rates = [float(opt.learning_rate.numpy()) for opt in self.optimizers()] or None
        self.phase = int(phase)
        with self.strategy.scope():
            self.models = self._phase_models(self.phase, rates)
            self.build_optimizers()
        self._manager = None  # the next checkpoint holds this phase's models and optimizers

    def _prepare(self, model):
        super()._prepare(model)
        if model is self.critic:  # the critic wraps D: unfreeze D itself, not only the wrapper
            self.set_trainable(self.d, True)

    def set_alpha(self, alpha):
        self._alpha.assign(alpha)
        for model in self.models.values():
            for layer in model.layers:
                if isinstance(layer, FadeIn):
                    layer.alpha.assign(alpha)

    def schedule(self, shown, batch_size):
        """``(phase, alpha)`` for a step after ``shown`` images: alpha counts this step's batch, so
        it rises from ``batch / images_per_stage`` to 1 over a fade-in (1 in stable phases)."""
        phase = min(shown // self.images_per_stage, len(self.phases) - 1)
        if not self.phases[phase][1]:
            return phase, 1.0
        seen = shown - phase * self.images_per_stage + batch_size
        return phase, min(1.0, seen / self.images_per_stage)

    def checkpoint_extras(self):
        """The schedule's state and every bank layer (also those no phase model holds now)."""
        banks = {"g_bank": self.g_bank, "g_ema_bank": self.ema_bank, "d_bank": self.d_bank}
        state = {"phase": self._phase, "shown": self._shown, "alpha": self._alpha}
        return state | {k: list(bank.values()) for k, bank in banks.items()}

    def restore_checkpoint(self, path=None):
        """Build the checkpoint's phase first: its models and optimizers are what it holds."""
        target = path
        if target is None:
            state = tf.train.get_checkpoint_state(self.checkpoint_dir)
            target = (
                state.all_model_checkpoint_paths[-1]
                if state and state.all_model_checkpoint_paths
                else None
            )
            if target:
                self._check_config()
        if target:
            try:
                phase = int(
                    tf.train.load_checkpoint(target).get_tensor("phase/.ATTRIBUTES/VARIABLE_VALUE")
                )
            except (tf.errors.OpError, ValueError, KeyError):
                phase = None  # unreadable: the core tries the older ones and says why
            if phase is not None and phase != self.phase and 0 <= phase < len(self.phases):
                self.enter_phase(phase)
        return super().restore_checkpoint(path)

    def config(self):
        names = "img_size latent_dim fmap_base fmap_max mbstd_group loss images_per_stage".split()
        return {"architecture": self.name, **{k: getattr(self, k) for k in names}}

    # --- the step -----------------------------------------------------------------------------------
    def ema_decay_at(self, step):
        """The paper's beta, but at most ``(1 + step) / (10 + step)`` (:func:`keras_gans.averaging.
        warmup_decay`): a short run's G_s follows G instead of staying near its initial weights
        (0.999 keeps 93% of them after 72 steps)."""
        return warmup_decay(self.ema_decay, step)

    def steps_per_epoch(self, batch_size):
        if batch_size % self.accumulate:
            raise ConfigError(f"--batch-size {batch_size} must divide by --accumulate")
        micro = batch_size // self.accumulate // self.strategy.num_replicas_in_sync
        if micro > self.mbstd_group and micro % self.mbstd_group:
            raise ConfigError(
                f"--batch-size: each (micro-)batch of {micro} must be a multiple of the "
                f"minibatch-stddev group {self.mbstd_group} or smaller (--mbstd-group)"
            )
        return len(self.images) // batch_size

    def batches(self, batch_size, epoch, skip):
        return unconditional_dataset(
            self.images, batch_size, self.seed, epoch, skip
        ).as_numpy_iterator()

    def train_step(self, imgs):
        """The phase's D step (WGAN-GP), then its G step, then the EMA (official train.py order)."""
        n = len(imgs)
        shown = int(self._shown.numpy())
        phase, alpha = self.schedule(shown, n)
        if phase != self.phase:
            self.save_phase_grid()  # the phase that ends
            self.enter_phase(phase)
        self.set_alpha(alpha)
        res, fading = self.phases[phase]
        rng = self.rng(2, self.step)
        z = rng.standard_normal((n, self.latent_dim)).astype(np.float32)
        mix = rng.uniform(size=(n, 1, 1, 1)).astype(np.float32)
        fakes = np.asarray(self.g(z, training=True))  # one forward: not worth a trace per phase
        reals = real_batch(np.asarray(imgs), res, fading, alpha)
        d = self.update(self.critic, [reals, fakes, mix], np.zeros((n, 1), np.float32))
        z = self.rng(3, self.step).standard_normal((n, self.latent_dim)).astype(np.float32)
        g = self.update(self.combined, z, np.ones((n, 1), np.float32))
        self.average.update(self.ema_decay_at(self.step))
        self._shown.assign(shown + n)
        logs = {"D_loss": d["loss"], "D_real": d["d_real"], "D_fake": d["d_fake"], "GP": d["gp"]}
        return {**logs, "G_loss": g["loss"], "resolution": res, "alpha": alpha}

    def run(self, epochs=None, batch_size=None, sample_interval=None, max_steps=None):
        """As :meth:`GANTrainer.run`; without ``epochs`` or ``max_steps``: the whole schedule, every
        phase for ``images_per_stage`` images (the last one too)."""
        if epochs is None and max_steps is None:
            batch = batch_size or self.default_batch_size
            max_steps = math.ceil(len(self.phases) * self.images_per_stage / batch)
        return super().run(epochs, batch_size, sample_interval, max_steps)

    # --- outputs ------------------------------------------------------------------------------------
    def sample_grid(self):
        """EMA samples of the fixed noise at the phase's resolution."""
        images = np.asarray(self.g_ema(self.fixed_z, training=False))
        return {"images": images, "rows": GRID[0], "cols": GRID[1]}

    def save_phase_grid(self):
        """``stages/<phase>_<res>x<res>[_fade].png``: the grid the current phase leaves."""
        if not self.is_chief:
            return None
        res, fading = self.phases[self.phase]
        name = f"{self.phase:02d}_{res}x{res}{'_fade' if fading else ''}.png"
        grid = self.sample_grid()
        path = os.path.join(self.stages_dir, name)
        return plotting.save_image_grid(grid["images"], path, grid["rows"], grid["cols"])

    def finish(self):
        self.save_phase_grid()  # the last phase's, so far
        return super().finish()

    def summary_info(self):
        res, fading = self.phases[self.phase]
        info = dict(dataset=self.data_root, images=len(self.images), class_name=self.class_name)
        shown, alpha = int(self._shown.numpy()), float(self._alpha.numpy())
        return info | dict(
            phase=self.phase, resolution=res, fading=fading, alpha=alpha, images_shown=shown
        )

    def evaluate(self):
        """FID / KID of EMA samples against the training images at the phase's resolution."""
        if not self.eval_extractor:
            return {}
        n = min(len(self.images), 1000)
        reals = downscale(self.images[:n], self.img_size // self.phases[self.phase][0])
        fakes = sampling.generate_images(self.g_ema, n, seed=self.step)
        scores = self.fid_kid(reals, fakes)
        return {k: v for k, v in scores.items() if k in ("fid", "kid")}


# --- command line -----------------------------------------------------------------------------------
def _train_args(parser):
    add = parser.add_argument
    add("--dataset", default="sample", choices=("sample", "isic"), help="ISIC source")
    add("--data-dir", default=None, help="an ISIC folder (isic-cli, HAM10000 or CSV)")
    add("--class", dest="class_name", default=None, choices=CLASSES, help="one class only")
    cli.add_isic_args(parser)
    add("--img-size", type=cli.positive_int, default=IMG_SIZE, help="final resolution")
    add("--latent-dim", type=cli.positive_int, default=LATENT_DIM, help="z size")
    add("--fmap-base", type=cli.positive_int, default=FMAP_BASE, help="widths: 2 * base / res")
    add("--fmap-max", type=cli.positive_int, default=FMAP_MAX, help="widest layer")
    add("--mbstd-group", type=cli.positive_int, default=MBSTD_GROUP, help="minibatch stddev group")
    add(
        "--images-per-stage",
        type=cli.positive_int,
        default=None,
        help=f"real images per fade-in and per stable phase (none: {IMAGES_PER_STAGE:,}, the "
        f"paper's; {SAMPLE_IMAGES_PER_STAGE} on the built-in sample)",
    )
    add("--loss", default="wgan-gp", choices=LOSSES, help="wgan-gp (the paper's, with drift)")
    add("--learning-rate", type=cli.positive_float, default=LEARNING_RATE, help="Adam, G and D")
    add("--ema-decay", type=cli.fraction, default=EMA_DECAY, help="EMA of G for sampling")
    cli.add_training_args(parser, ProGAN)
    parser.epilog = (
        "Without --epochs or --max-steps: the whole schedule, every phase for --images-per-stage "
        "images."
    )


_MODEL_OPTIONS = (
    *("dataset", "data_dir", "class_name", "classes", "dedup", "img_size", "latent_dim"),
    *("fmap_base", "fmap_max", "mbstd_group", "images_per_stage", "loss", "learning_rate"),
    "ema_decay",
)


def _train(args):
    options = {name: getattr(args, name) for name in _MODEL_OPTIONS}
    return cli.train(ProGAN(**options, **cli.runtime_kwargs(args)), args)


COMMANDS = [
    cli.Command(
        "train", "Train ProGAN on ISIC melanoma / nevus (4x4 to 128x128).", _train_args, _train
    ),
    sampling.GENERATE,
]


def main(argv=None):
    return cli.main("python -m keras_gans.progan", __doc__.partition("\n")[0], COMMANDS, argv)


if __name__ == "__main__":
    main()
