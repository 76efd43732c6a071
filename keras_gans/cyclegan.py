"""CycleGAN for apple2orange at 128x128, the report's Keras-GAN code ported to Keras 3.

Zhu, Park, Isola and Efros, "Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial
Networks", ICCV 2017 (arXiv:1703.10593). The code the report shows (128x128 in [-1, 1], its
``conv2d`` / ``deconv2d`` helpers, U-Net G, discriminator and ``train_on_batch`` loop with batch 1)
matches Erik Linder-Norén's Keras-GAN ``CycleGAN`` (our identification; the report names no source):
a U-Net generator with keras-contrib instance normalization, PatchGAN discriminators with an 8x8
output at 128x128, least-squares adversarial losses, a ``combined`` model and ``train_on_batch`` loops.

Code (vs. paper): ``g_AB`` = G: X -> Y, ``g_BA`` = F: Y -> X, ``d_A`` = D_X, ``d_B`` = D_Y.

Faithful to the report's code and, where it shows none (Adam, the lambdas, the norm's module:
not stated in the report), to Keras-GAN's: the architecture, ``norm="contrib"`` (scalar-affine
instance norm over H, W and C), Adam(2e-4, 0.5), lambda_cycle = 10, lambda_id = 0.1 * lambda_cycle,
the order of updates
(D_X real, D_X fake, D_Y real, D_Y fake, then G and F through ``combined``), real and fake D batches
in separate calls, no image pool, no learning-rate decay. Changed for Keras 3 and users:

* the discriminators are unfrozen before their own ``train_on_batch`` and frozen before the combined
  step (Keras 3 reads ``trainable`` when a train function is first traced; the report's order would
  leave D untrained), and each compiled model has its own optimizer (Keras 3 refuses a shared one);
* fakes for the D steps come from one traced call of both generators instead of two ``predict`` calls;
* the log shows both identity terms (the report's slice showed one); the loop, checkpoints, saving
  and resume are :meth:`keras_gans.training.GANTrainer.run`'s; sample grids use fixed test images so
  they are comparable;
* ``fused=True`` (``--fused``) runs the same updates as one traced call
  (:class:`keras_gans.fused.FusedCycleGANStep`, tested equal to the report's step).
"""

import os

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from data_loaders.images import NoImagesError, list_images, load_image, save_image
from data_loaders.unpaired import ArrayLoader, DataLoader, resolve_dataset
from keras_gans import cli
from keras_gans.errors import ConfigError
from keras_gans.layers import instance_norm_for
from keras_gans.saving import load_model
from keras_gans.training import GANTrainer

# Keras-GAN cyclegan.py's hyper-parameters (the report states the size, [-1, 1] and batch 1).
IMG_SIZE = 128
GF = 32  # generator filters in the first layer
DF = 64  # discriminator filters in the first layer
LAMBDA_CYCLE = 10.0
LEARNING_RATE = 2e-4
BETA_1 = 0.5
EPOCHS = 200
SAMPLE_EPOCHS = 8  # on the built-in sample
SAMPLE_INTERVAL = 50


# --- blocks (Keras-GAN's static helpers) --------------------------------------------------------------
def conv2d(layer_input, filters, f_size=4, normalization=True, norm="contrib", name=None):
    """Downsampling block: Conv2D(k4, s2) -> LeakyReLU(0.2) -> InstanceNormalization."""
    d = layers.Conv2D(filters, f_size, strides=2, padding="same", name=f"{name}_conv")(layer_input)
    d = layers.LeakyReLU(negative_slope=0.2, name=f"{name}_lrelu")(d)
    if normalization:
        d = instance_norm_for(norm, name=f"{name}_norm")(d)
    return d


def deconv2d(layer_input, skip_input, filters, f_size=4, dropout_rate=0, norm="contrib", name=None):
    """Upsampling block: UpSampling2D -> Conv2D(k4, s1, relu) -> [Dropout] -> norm -> concat skip."""
    u = layers.UpSampling2D(size=2, name=f"{name}_up")(layer_input)
    u = layers.Conv2D(filters, f_size, padding="same", activation="relu", name=f"{name}_conv")(u)
    if dropout_rate:
        u = layers.Dropout(dropout_rate, name=f"{name}_dropout")(u)
    u = instance_norm_for(norm, name=f"{name}_norm")(u)
    return layers.Concatenate(name=f"{name}_skip")([u, skip_input])


# --- networks ---------------------------------------------------------------------------------------
def build_generator(img_shape=(IMG_SIZE, IMG_SIZE, 3), gf=GF, norm="contrib", name="generator"):
    """U-Net generator: 4 downsampling blocks, 3 upsampling blocks with skips, tanh output."""
    d0 = keras.Input(shape=img_shape, name=f"{name}_input")
    d1 = conv2d(d0, gf, norm=norm, name=f"{name}_d1")
    d2 = conv2d(d1, gf * 2, norm=norm, name=f"{name}_d2")
    d3 = conv2d(d2, gf * 4, norm=norm, name=f"{name}_d3")
    d4 = conv2d(d3, gf * 8, norm=norm, name=f"{name}_d4")
    u1 = deconv2d(d4, d3, gf * 4, norm=norm, name=f"{name}_u1")
    u2 = deconv2d(u1, d2, gf * 2, norm=norm, name=f"{name}_u2")
    u3 = deconv2d(u2, d1, gf, norm=norm, name=f"{name}_u3")
    u4 = layers.UpSampling2D(size=2, name=f"{name}_u4_up")(u3)
    output_img = layers.Conv2D(
        img_shape[-1], 4, padding="same", activation="tanh", dtype="float32", name=f"{name}_out"
    )(u4)
    return keras.Model(d0, output_img, name=name)


def build_discriminator(
    img_shape=(IMG_SIZE, IMG_SIZE, 3), df=DF, norm="contrib", name="discriminator"
):
    """PatchGAN: C64 (no norm) - C128 - C256 - C512, then a 1-channel conv; 8x8 at 128 px."""
    img = keras.Input(shape=img_shape, name=f"{name}_input")
    d1 = conv2d(img, df, normalization=False, norm=norm, name=f"{name}_d1")
    d2 = conv2d(d1, df * 2, norm=norm, name=f"{name}_d2")
    d3 = conv2d(d2, df * 4, norm=norm, name=f"{name}_d3")
    d4 = conv2d(d3, df * 8, norm=norm, name=f"{name}_d4")
    validity = layers.Conv2D(1, 4, padding="same", dtype="float32", name=f"{name}_validity")(d4)
    return keras.Model(img, validity, name=name)


def build_combined(g_AB, g_BA, d_A, d_B, img_shape):
    """G and F trained through D_X, D_Y with adversarial, cycle and identity outputs."""
    img_A = keras.Input(shape=img_shape, name="img_A")
    img_B = keras.Input(shape=img_shape, name="img_B")
    fake_B = g_AB(img_A)
    fake_A = g_BA(img_B)
    reconstr_A = g_BA(fake_B)  # forward cycle F(G(x)) ~ x, paper Eq. 2
    reconstr_B = g_AB(fake_A)  # backward cycle G(F(y)) ~ y, paper Eq. 2
    img_A_id = g_BA(img_A)  # identity F(x) ~ x, paper Sec. 5.2
    img_B_id = g_AB(img_B)
    valid_A = d_A(fake_A)  # LSGAN loss on D_X(F(y)), paper Eq. 1 with least squares
    valid_B = d_B(fake_B)
    outputs = [valid_A, valid_B, reconstr_A, reconstr_B, img_A_id, img_B_id]
    names = ["valid_A", "valid_B", "reconstr_A", "reconstr_B", "img_A_id", "img_B_id"]
    outputs = [layers.Identity(name=n, dtype="float32")(o) for o, n in zip(outputs, names)]
    return keras.Model([img_A, img_B], outputs, name="combined")


# --- the trainer ------------------------------------------------------------------------------------
class CycleGAN(GANTrainer):
    """Keras-GAN's ``CycleGAN`` with the report's defaults; see the module docstring.

    Args:
        dataset_name: ``"sample"`` (built in, offline), a Berkeley name such as ``"apple2orange"``
            (downloaded on first use), ignored when ``data_dir`` or ``data`` is given.
        data_dir: a folder with ``trainA``, ``trainB``, ``testA``, ``testB``.
        img_rows, img_cols, channels: the model's image shape.
        gf, df: filters of the first generator / discriminator layer.
        lambda_cycle: weight of the cycle-consistency loss (the paper's lambda).
        lambda_id: weight of the identity loss; ``None`` means ``0.1 * lambda_cycle``.
        norm: ``"contrib"`` (the report's keras-contrib layer) or ``"instance"`` (per channel).
        output_dir: where images, models, logs and checkpoints go.
        seed: seeds weights, data order, flips.
        data: instead of a folder, a :class:`data_loaders.unpaired.DataLoader`, or ``(A, B)``
            arrays (or ``tf.data`` datasets of single images) in [-1, 1].
        fused: run each step as one traced call (:class:`keras_gans.fused.FusedCycleGANStep`).
        **runtime: strategy, mixed_precision, jit, accumulate, checkpoint_every, keep_checkpoints,
            resume, on_nan, strict, deterministic, eval_every, eval_extractor (see
            :class:`keras_gans.training.GANTrainer`).

    Nothing is read until training or sampling needs it, so the models can be built without data.
    """

    name = "cyclegan"
    default_epochs = EPOCHS
    default_batch_size = 1
    default_sample_interval = SAMPLE_INTERVAL
    loss_groups = {
        "discriminators": ["D_loss", "D_acc"],
        "generators": ["G_loss", "adv", "recon", "id"],
        "evaluation (--eval-every)": ["a_to_b", "b_to_a", "fid"],
    }

    def __init__(
        self,
        dataset_name="sample",
        data_dir=None,
        img_rows=IMG_SIZE,
        img_cols=IMG_SIZE,
        channels=3,
        gf=GF,
        df=DF,
        lambda_cycle=LAMBDA_CYCLE,
        lambda_id=None,
        norm="contrib",
        output_dir=None,
        seed=None,
        data=None,
        fused=False,
        **runtime,
    ):
        if img_rows % 16 or img_cols % 16 or img_rows < 16 or img_cols < 16:
            raise ConfigError(f"--img-size must be a multiple of 16, got {img_rows}x{img_cols}")
        self.dataset_name, self.data_dir = dataset_name, data_dir
        self.img_rows, self.img_cols, self.channels = img_rows, img_cols, channels
        self.img_shape = (img_rows, img_cols, channels)
        self.gf, self.df, self.norm = gf, df, norm
        self.lambda_cycle = lambda_cycle
        self.lambda_id = 0.1 * lambda_cycle if lambda_id is None else lambda_id
        instance_norm_for(norm)  # validates the option before anything is built
        self.disc_patch = (img_rows // 2**4, img_cols // 2**4, 1)  # four stride-2 convolutions
        source = "arrays" if data is not None and not data_dir else dataset_name
        if data_dir:
            source = os.path.basename(os.path.normpath(data_dir))
        self.setup_runtime(
            output_dir or os.path.join("output", "cyclegan", source), seed=seed, **runtime
        )
        self._data = ArrayLoader(data) if isinstance(data, (tuple, list)) else data
        self.build_models()
        self._translate = tf.function(
            lambda a, b: (self.g_AB(a, training=False), self.g_BA(b, training=False)),
            reduce_retracing=True,
        )
        self._fused = None
        if fused:
            from keras_gans.fused import FusedCycleGANStep

            self._fused = FusedCycleGANStep(self)

    def build(self):
        opt = lambda: self.make_optimizer(LEARNING_RATE, beta_1=BETA_1)
        shape, gf, df, norm = self.img_shape, self.gf, self.df, self.norm
        self.d_A = build_discriminator(shape, df, norm, name="d_A")
        self.d_B = build_discriminator(shape, df, norm, name="d_B")
        for d in (self.d_A, self.d_B):
            self.compile(d, loss="mse", optimizer=opt(), metrics=["accuracy"])
        self.g_AB = build_generator(shape, gf, norm, name="g_AB")
        self.g_BA = build_generator(shape, gf, norm, name="g_BA")
        self.combined = build_combined(self.g_AB, self.g_BA, self.d_A, self.d_B, shape)
        self.compile(
            self.combined,
            frozen=(self.d_A, self.d_B),
            loss=["mse", "mse", "mae", "mae", "mae", "mae"],
            loss_weights=[1, 1, *[self.lambda_cycle] * 2, *[self.lambda_id] * 2],
            optimizer=opt(),
        )
        return {"g_AB": self.g_AB, "g_BA": self.g_BA, "d_A": self.d_A, "d_B": self.d_B}

    def config(self):
        return {"img_shape": self.img_shape, "gf": self.gf, "df": self.df, "norm": self.norm}

    @property
    def data_loader(self):
        """The training and test images, read on first use."""
        if self._data is None:
            size = (self.img_rows, self.img_cols)
            self._data = DataLoader(self.dataset_name, size, self.data_dir, self.seed, self.strict)
            self._data.report.skipped = self.skipped_files
        return self._data

    # --- the report's step ------------------------------------------------------------------------
    def translate(self, imgs_A, imgs_B):
        """``(G(A), F(B))`` as NumPy arrays, from one traced call (the report used two predicts)."""
        fake_B, fake_A = self._translate(tf.constant(imgs_A), tf.constant(imgs_B))
        return fake_B.numpy(), fake_A.numpy()

    def _d_step(self, d, real, fake_imgs, valid, fake):
        real_logs = self.update(d, real, valid)  # (D(x) - 1)^2, paper Eq. 1 with least squares
        fake_logs = self.update(d, fake_imgs, fake)  # D(G(z))^2
        return (
            0.5 * (real_logs["loss"] + fake_logs["loss"]),
            0.5 * (real_logs["accuracy"] + fake_logs["accuracy"]),
        )

    def report_step(self, imgs_A, imgs_B, valid, fake):
        """The report's step: D_X real, D_X fake, D_Y real, D_Y fake, then G and F via ``combined``."""
        fake_B, fake_A = self.translate(imgs_A, imgs_B)
        dA_loss, dA_acc = self._d_step(self.d_A, imgs_A, fake_A, valid, fake)
        dB_loss, dB_acc = self._d_step(self.d_B, imgs_B, fake_B, valid, fake)
        targets = [valid, valid, imgs_A, imgs_B, imgs_A, imgs_B]
        g = self.update(self.combined, [imgs_A, imgs_B], targets)
        return {
            "D_loss": 0.5 * (dA_loss + dB_loss),
            "D_acc": 0.5 * (dA_acc + dB_acc),
            "G_loss": g["loss"],
            "adv": float(np.mean([g["valid_A_loss"], g["valid_B_loss"]])),
            "recon": float(np.mean([g["reconstr_A_loss"], g["reconstr_B_loss"]])),
            "id": float(np.mean([g["img_A_id_loss"], g["img_B_id_loss"]])),
        }

    # --- the declaration for GANTrainer.run ---------------------------------------------------------
    def steps_per_epoch(self, batch_size):
        return self.data_loader.train.n_batches(batch_size)

    def batches(self, batch_size, epoch, skip):
        data = self.data_loader.train.dataset(batch_size, self.seed, epoch, skip_batches=skip)
        return data.as_numpy_iterator()

    def train_step(self, batch):
        imgs_A, imgs_B = batch
        valid = np.ones((len(imgs_A),) + self.disc_patch, np.float32)
        fake = np.zeros_like(valid)
        step = self._fused or self.report_step
        return step(imgs_A, imgs_B, valid, fake)

    def sample_grid(self):
        """The report's 2x3 grid (rows A, B; columns Original, Translated, Reconstructed)."""
        imgs_A = self.data_loader.test.first("A")
        imgs_B = self.data_loader.test.first("B")
        fake_B, fake_A = self.translate(imgs_A, imgs_B)
        reconstr_B, reconstr_A = self.translate(fake_A, fake_B)
        grid = np.concatenate([imgs_A, fake_B, reconstr_A, imgs_B, fake_A, reconstr_B])
        titles = ["Original", "Translated", "Reconstructed"]
        return {"images": grid, "rows": 2, "cols": 3, "titles": titles, "row_labels": ["A", "B"]}

    def summary_info(self):
        return {"dataset": self.data_loader.root, "fused": self._fused is not None}

    def evaluate(self):
        """Translation score (a domain classifier trained once on real train A vs B: the share of
        G(test A) it calls B and of F(test B) it calls A) and, with ``eval_extractor``, FID of G(A)."""
        from keras_gans.translation_score import (
            train_domain_classifier,
            translation_score_from_images,
        )

        test, train = self.data_loader.test, self.data_loader.train
        test_A, test_B = test.first("A", test.count("A")), test.first("B", test.count("B"))
        if getattr(self, "_domain_classifier", None) is None:
            real_A = train.first("A", min(train.count("A"), 500))
            real_B = train.first("B", min(train.count("B"), 500))
            self._domain_classifier = train_domain_classifier(real_A, real_B, seed=self.seed or 0)
        fake_B, fake_A = self.translate(test_A[: len(test_B)], test_B[: len(test_A)])
        score = translation_score_from_images(
            None, None, fake_A, fake_B, classifier=self._domain_classifier
        )
        values = {"a_to_b": score["a_to_b"], "b_to_a": score["b_to_a"]}
        values.update(
            {k: v for k, v in self.fid_kid(test_B, fake_B).items() if k in ("fid", "kid")}
        )
        return values


def translate_files(model_path, inputs, output_dir, batch_size=8):
    """Translate every image of ``inputs`` (a file or folder) with a saved generator; returns paths."""
    model = load_model(model_path)
    shapes = [tuple(t.shape) for t in (*model.inputs, *model.outputs)]
    if len(shapes) != 2 or len(shapes[0]) != 4 or shapes[0] != shapes[1]:
        raise ConfigError(
            f"{model_path} is not a CycleGAN generator: it maps {shapes[:-1]} to {shapes[-1]}, not "
            "images to images of the same shape; a discriminator?"
        )
    size = tuple(model.input_shape[1:3])
    if not os.path.exists(inputs):
        raise NoImagesError(f"--input {inputs}: no such image file or folder")
    paths = list_images(inputs) if os.path.isdir(inputs) else [inputs]
    written = []
    for start in range(0, len(paths), batch_size):
        chunk = paths[start : start + batch_size]
        batch = np.stack([load_image(p, size) for p in chunk])
        for path, out in zip(chunk, np.asarray(model(batch, training=False))):
            target = os.path.join(output_dir, os.path.splitext(os.path.basename(path))[0] + ".png")
            save_image(out, target)
            written.append(target)
    return written


# --- command line -----------------------------------------------------------------------------------
def _train_args(parser):
    add = parser.add_argument
    add("--dataset", default="sample", help="'sample' (offline) or a Berkeley name")
    add("--data-dir", default=None, help="folder with trainA, trainB, testA, testB")
    add("--sha256", type=cli.sha256, default=None, help="check the --dataset zip if downloaded")
    add("--img-size", type=cli.positive_int, default=IMG_SIZE, help="a multiple of 16")
    add("--gf", type=cli.positive_int, default=GF, help="generator filters")
    add("--df", type=cli.positive_int, default=DF, help="discriminator filters")
    add(
        "--lambda-cycle",
        type=cli.non_negative_float,
        default=LAMBDA_CYCLE,
        help="cycle-consistency weight",
    )
    add(
        "--lambda-id",
        type=cli.non_negative_float,
        default=None,
        help="identity weight (none: 0.1 * lambda-cycle)",
    )
    add("--norm", default="contrib", choices=("contrib", "instance"), help="instance norm variant")
    add("--fused", action="store_true", help="one traced call per step (same updates, faster)")
    cli.add_training_args(parser, CycleGAN)
    parser.epilog = f"Without --epochs: {SAMPLE_EPOCHS} on the built-in sample, {EPOCHS} otherwise."


def _train(args):
    if (
        args.epochs is None
        and args.max_steps is None
        and args.dataset == "sample"
        and not args.data_dir
    ):
        args.epochs = SAMPLE_EPOCHS
    if args.sha256 and not args.data_dir:  # download and verify before any model is built
        resolve_dataset(args.dataset, sha256=args.sha256)
    gan = CycleGAN(
        dataset_name=args.dataset,
        data_dir=args.data_dir,
        img_rows=args.img_size,
        img_cols=args.img_size,
        gf=args.gf,
        df=args.df,
        lambda_cycle=args.lambda_cycle,
        lambda_id=args.lambda_id,
        norm=args.norm,
        fused=args.fused,
        **cli.runtime_kwargs(args),
    )
    return cli.train(gan, args)


def _translate_args(parser):
    parser.add_argument("--model", required=True, help="generator file, e.g. models/g_AB.h5")
    parser.add_argument("--input", required=True, help="an image file or a folder of images")
    parser.add_argument("--output", required=True, help="folder for the translated images")


def _translate_cmd(args):
    written = translate_files(args.model, args.input, args.output)
    print(f"wrote {len(written)} image(s) to {args.output}")
    return written


COMMANDS = [
    cli.Command(
        "train", "Train the report's CycleGAN (apple2orange, 128x128).", _train_args, _train
    ),
    cli.Command(
        "translate", "Translate images with a saved generator.", _translate_args, _translate_cmd
    ),
]


def main(argv=None):
    return cli.main("python -m keras_gans.cyclegan", __doc__.partition("\n")[0], COMMANDS, argv)


if __name__ == "__main__":
    main()
