"""CycleGAN for apple2orange at 128x128, the report's Keras-GAN code ported to Keras 3.

Zhu, Park, Isola and Efros, "Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial
Networks", ICCV 2017 (arXiv:1703.10593). The report ran Erik Linder-Norén's Keras-GAN ``CycleGAN``:
a U-Net generator with keras-contrib instance normalization, PatchGAN discriminators with an 8x8
output at 128x128, least-squares adversarial losses, a ``combined`` model and ``train_on_batch`` loops.

Code (vs. paper): ``g_AB`` = G: X -> Y, ``g_BA`` = F: Y -> X, ``d_A`` = D_X, ``d_B`` = D_Y.

Faithful to the report: the architecture, ``norm="contrib"`` (scalar-affine instance norm over H, W
and C), Adam(2e-4, 0.5), lambda_cycle = 10, lambda_id = 0.1 * lambda_cycle, the order of updates
(D_X real, D_X fake, D_Y real, D_Y fake, then G and F through ``combined``), real and fake D batches
in separate calls, no image pool, no learning-rate decay. Changed for Keras 3 and users:

* the discriminators are unfrozen before their own ``train_on_batch`` and frozen before the combined
  step (Keras 3 reads ``trainable`` when a train function is first traced; the report's order would
  leave D untrained), and each compiled model has its own optimizer (Keras 3 refuses a shared one);
* fakes for the D steps come from one traced call of both generators instead of two ``predict`` calls;
* the log shows both identity terms (the report's slice showed one), models are saved every epoch,
  runs resume from checkpoints, and sample grids use fixed test images so they are comparable.
"""

import argparse
import logging
import os
import sys

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from data_loaders.images import list_images, load_image, save_image
from data_loaders.unpaired import DataLoader
from keras_gans import plotting
from keras_gans.layers import instance_norm_for
from keras_gans.saving import load_model, save_model
from keras_gans.training import GANTrainer, add_common_args, runtime_kwargs

# The report's hyper-parameters (Keras-GAN cyclegan.py).
IMG_SIZE = 128
GF = 32  # generator filters in the first layer
DF = 64  # discriminator filters in the first layer
LAMBDA_CYCLE = 10.0
LEARNING_RATE = 2e-4
BETA_1 = 0.5
EPOCHS = 200
SAMPLE_EPOCHS = 8  # on the built-in sample: about five minutes on two CPU cores
SAMPLE_INTERVAL = 50


class CycleGAN(GANTrainer):
    """Keras-GAN's ``CycleGAN`` with the report's defaults; see the module docstring.

    Args:
        dataset_name: ``"sample"`` (built in, offline), a Berkeley name such as ``"apple2orange"``
            (downloaded once), ignored when ``data_dir`` is given.
        data_dir: a folder with ``trainA``, ``trainB``, ``testA``, ``testB``.
        img_rows, img_cols, channels: the model's image shape.
        gf, df: filters of the first generator / discriminator layer.
        lambda_cycle: weight of the cycle-consistency loss (the paper's lambda).
        lambda_id: weight of the identity loss; ``None`` means ``0.1 * lambda_cycle``.
        norm: ``"contrib"`` (the report's keras-contrib layer) or ``"instance"`` (per channel).
        output_dir: where images, models, logs and checkpoints go.
        seed: seeds weights, data order, flips.
        **runtime: strategy, mixed_precision, jit, accumulate, checkpoint_every, keep_checkpoints,
            resume, on_nan, strict, deterministic (see :class:`keras_gans.training.GANTrainer`).
    """

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
        **runtime,
    ):
        self.dataset_name = dataset_name
        self.img_rows, self.img_cols, self.channels = img_rows, img_cols, channels
        self.img_shape = (img_rows, img_cols, channels)
        if img_rows % 16 or img_cols % 16:
            raise ValueError(
                f"img_rows and img_cols must be multiples of 16, got {img_rows}x{img_cols}"
            )
        self.gf, self.df = gf, df
        self.lambda_cycle = lambda_cycle
        self.lambda_id = 0.1 * lambda_cycle if lambda_id is None else lambda_id
        self.norm = norm
        instance_norm_for(norm)  # validates the option before anything is built
        # PatchGAN output: four stride-2 convolutions.
        self.disc_patch = (img_rows // 2**4, img_cols // 2**4, 1)
        output_dir = output_dir or os.path.join("output", "cyclegan", dataset_name)
        self.setup_runtime(output_dir, seed=seed, **runtime)
        self.data_loader = DataLoader(
            dataset_name, (img_rows, img_cols), data_dir, seed, self.strict
        )
        self.data_loader.report.skipped = self.skipped_files

        with self.strategy.scope():
            self.d_A = self.build_discriminator(name="d_A")
            self.d_B = self.build_discriminator(name="d_B")
            for d in (self.d_A, self.d_B):
                d.compile(
                    loss="mse",
                    optimizer=self.make_optimizer(LEARNING_RATE, beta_1=BETA_1),
                    metrics=["accuracy"],
                    jit_compile=self.jit_compile,
                )
            self.g_AB = self.build_generator(name="g_AB")
            self.g_BA = self.build_generator(name="g_BA")
            self.combined = self.build_combined()
            self.combined.compile(
                loss=["mse", "mse", "mae", "mae", "mae", "mae"],
                loss_weights=[
                    1,
                    1,
                    self.lambda_cycle,
                    self.lambda_cycle,
                    self.lambda_id,
                    self.lambda_id,
                ],
                optimizer=self.make_optimizer(LEARNING_RATE, beta_1=BETA_1),
                jit_compile=self.jit_compile,
            )
        self._translate = tf.function(
            lambda a, b: (self.g_AB(a, training=False), self.g_BA(b, training=False)),
            reduce_retracing=True,
        )

    # --- blocks (Keras-GAN's static helpers) ----------------------------------------------------
    @staticmethod
    def conv2d(layer_input, filters, f_size=4, normalization=True, norm="contrib", name=None):
        """Downsampling block: Conv2D(k4, s2) -> LeakyReLU(0.2) -> InstanceNormalization."""
        d = layers.Conv2D(filters, f_size, strides=2, padding="same", name=f"{name}_conv")(
            layer_input
        )
        d = layers.LeakyReLU(negative_slope=0.2, name=f"{name}_lrelu")(d)
        if normalization:
            d = instance_norm_for(norm, name=f"{name}_norm")(d)
        return d

    @staticmethod
    def deconv2d(
        layer_input, skip_input, filters, f_size=4, dropout_rate=0, norm="contrib", name=None
    ):
        """Upsampling block: UpSampling2D -> Conv2D(k4, s1, relu) -> [Dropout] -> norm -> concat skip."""
        u = layers.UpSampling2D(size=2, name=f"{name}_up")(layer_input)
        u = layers.Conv2D(filters, f_size, padding="same", activation="relu", name=f"{name}_conv")(
            u
        )
        if dropout_rate:
            u = layers.Dropout(dropout_rate, name=f"{name}_dropout")(u)
        u = instance_norm_for(norm, name=f"{name}_norm")(u)
        return layers.Concatenate(name=f"{name}_skip")([u, skip_input])

    # --- networks -------------------------------------------------------------------------------
    def build_generator(self, name="generator"):
        """U-Net generator: 4 downsampling blocks, 3 upsampling blocks with skips, tanh output."""
        d0 = keras.Input(shape=self.img_shape, name=f"{name}_input")
        d1 = self.conv2d(d0, self.gf, norm=self.norm, name=f"{name}_d1")
        d2 = self.conv2d(d1, self.gf * 2, norm=self.norm, name=f"{name}_d2")
        d3 = self.conv2d(d2, self.gf * 4, norm=self.norm, name=f"{name}_d3")
        d4 = self.conv2d(d3, self.gf * 8, norm=self.norm, name=f"{name}_d4")
        u1 = self.deconv2d(d4, d3, self.gf * 4, norm=self.norm, name=f"{name}_u1")
        u2 = self.deconv2d(u1, d2, self.gf * 2, norm=self.norm, name=f"{name}_u2")
        u3 = self.deconv2d(u2, d1, self.gf, norm=self.norm, name=f"{name}_u3")
        u4 = layers.UpSampling2D(size=2, name=f"{name}_u4_up")(u3)
        output_img = layers.Conv2D(
            self.channels, 4, padding="same", activation="tanh", dtype="float32", name=f"{name}_out"
        )(u4)
        return keras.Model(d0, output_img, name=name)

    def build_discriminator(self, name="discriminator"):
        """PatchGAN: C64 (no norm) - C128 - C256 - C512, then a 1-channel conv; 8x8 at 128 px."""
        img = keras.Input(shape=self.img_shape, name=f"{name}_input")
        d1 = self.conv2d(img, self.df, normalization=False, norm=self.norm, name=f"{name}_d1")
        d2 = self.conv2d(d1, self.df * 2, norm=self.norm, name=f"{name}_d2")
        d3 = self.conv2d(d2, self.df * 4, norm=self.norm, name=f"{name}_d3")
        d4 = self.conv2d(d3, self.df * 8, norm=self.norm, name=f"{name}_d4")
        validity = layers.Conv2D(1, 4, padding="same", dtype="float32", name=f"{name}_validity")(d4)
        return keras.Model(img, validity, name=name)

    def build_combined(self):
        """G and F trained through frozen D_X, D_Y with adversarial, cycle and identity outputs."""
        img_A = keras.Input(shape=self.img_shape, name="img_A")
        img_B = keras.Input(shape=self.img_shape, name="img_B")
        fake_B = self.g_AB(img_A)
        fake_A = self.g_BA(img_B)
        reconstr_A = self.g_BA(fake_B)  # forward cycle F(G(x)) ~ x, paper Eq. 2
        reconstr_B = self.g_AB(fake_A)  # backward cycle G(F(y)) ~ y, paper Eq. 2
        img_A_id = self.g_BA(img_A)  # identity F(x) ~ x, paper Sec. 5.2
        img_B_id = self.g_AB(img_B)
        self.set_trainable(self.d_A, False)
        self.set_trainable(self.d_B, False)
        valid_A = self.d_A(fake_A)  # LSGAN loss on D_X(F(y)), paper Eq. 1 with least squares
        valid_B = self.d_B(fake_B)
        outputs = [valid_A, valid_B, reconstr_A, reconstr_B, img_A_id, img_B_id]
        names = ["valid_A", "valid_B", "reconstr_A", "reconstr_B", "img_A_id", "img_B_id"]
        outputs = [layers.Identity(name=n, dtype="float32")(o) for o, n in zip(outputs, names)]
        return keras.Model([img_A, img_B], outputs, name="combined")

    def checkpoint_objects(self):
        return {
            "g_AB": self.g_AB,
            "g_BA": self.g_BA,
            "d_A": self.d_A,
            "d_B": self.d_B,
            "opt_d_A": self.d_A.optimizer,
            "opt_d_B": self.d_B.optimizer,
            "opt_combined": self.combined.optimizer,
        }

    def build_optimizers(self):
        for d in (self.d_A, self.d_B):
            self.set_trainable(d, True)
            d.optimizer.build(d.trainable_variables)
        for d in (self.d_A, self.d_B):
            self.set_trainable(d, False)
        self.combined.optimizer.build(self.combined.trainable_variables)

    # --- training -------------------------------------------------------------------------------
    def translate(self, imgs_A, imgs_B):
        """``(G(A), F(B))`` as NumPy arrays, from one traced call (the report used two predicts)."""
        fake_B, fake_A = self._translate(tf.constant(imgs_A), tf.constant(imgs_B))
        return fake_B.numpy(), fake_A.numpy()

    def _d_step(self, d, real, fake_imgs, valid, fake):
        self.set_trainable(d, True)
        real_logs = self.update(d, real, valid)
        fake_logs = self.update(d, fake_imgs, fake)
        return 0.5 * (real_logs["loss"] + fake_logs["loss"]), 0.5 * (
            real_logs["accuracy"] + fake_logs["accuracy"]
        )

    def train_step(self, imgs_A, imgs_B, valid, fake):
        """One step in the report's order; returns the logged values."""
        fake_B, fake_A = self.translate(imgs_A, imgs_B)
        dA_loss, dA_acc = self._d_step(self.d_A, imgs_A, fake_A, valid, fake)
        dB_loss, dB_acc = self._d_step(self.d_B, imgs_B, fake_B, valid, fake)
        self.set_trainable(self.d_A, False)
        self.set_trainable(self.d_B, False)
        g = self.update(
            self.combined, [imgs_A, imgs_B], [valid, valid, imgs_A, imgs_B, imgs_A, imgs_B]
        )
        return {
            "D_loss": 0.5 * (dA_loss + dB_loss),
            "D_acc": 0.5 * (dA_acc + dB_acc),
            "G_loss": g["loss"],
            "adv": float(np.mean([g["valid_A_loss"], g["valid_B_loss"]])),
            "recon": float(np.mean([g["reconstr_A_loss"], g["reconstr_B_loss"]])),
            "id": float(np.mean([g["img_A_id_loss"], g["img_B_id_loss"]])),
        }

    def train(self, epochs=EPOCHS, batch_size=1, sample_interval=SAMPLE_INTERVAL, max_steps=None):
        """The report's loop: per batch, D_X and D_Y on real then fake, then ``combined``."""
        data = self.data_loader.train
        n_batches = data.n_batches(batch_size)
        if n_batches == 0:
            raise ValueError(
                f"batch_size {batch_size} is larger than the smaller domain of {data.root}"
            )
        self.restore_checkpoint()
        valid = np.ones((batch_size,) + self.disc_patch, np.float32)
        fake = np.zeros((batch_size,) + self.disc_patch, np.float32)
        total = epochs * n_batches if max_steps is None else min(max_steps, epochs * n_batches)
        bar = self.progress(total, initial=min(self.step, total), desc="cyclegan")
        done = self.step >= total
        while not done and self.epoch < epochs:
            batches = data.dataset(
                batch_size, self.seed, self.epoch, skip_batches=self.batch_in_epoch
            )
            restarted = False
            for imgs_A, imgs_B in batches.as_numpy_iterator():
                batch_i = self.batch_in_epoch
                logs = self.train_step(imgs_A, imgs_B, valid, fake)
                self.step += 1
                self.batch_in_epoch += 1
                logs.update(self.maybe_evaluate())
                if not self.log_step(logs, bar):  # rolled back to the last checkpoint
                    bar.n = self.step
                    restarted = True
                    break
                bar.update(1)
                if batch_i % sample_interval == 0 and self.is_chief:
                    self.sample_images(self.epoch, batch_i)
                self.maybe_checkpoint()
                if self.step >= total:
                    done = True
                    break
            if restarted:
                continue
            if self.batch_in_epoch >= n_batches or not done:
                self.epoch += 1
                self.batch_in_epoch = 0
                self.save_models()
        bar.close()
        self.save_models()
        if self.checkpoint_every:
            self.save_checkpoint()
        self.sample_images(self.epoch, self.batch_in_epoch)
        self.plot_losses()
        return self.write_summary(dataset=self.data_loader.root, batch_size=batch_size)

    def evaluate(self):
        """Translation score (a domain classifier trained once on real train A vs B: the share of
        G(test A) it calls B and of F(test B) it calls A) and, with ``eval_extractor``, FID of G(A)."""
        from keras_gans.metrics import train_domain_classifier, translation_score_from_images

        test = self.data_loader.test
        test_A, test_B = test.first("A", len(test.paths_A)), test.first("B", len(test.paths_B))
        if getattr(self, "_domain_classifier", None) is None:
            train = self.data_loader.train
            real_A = train.first("A", min(len(train.paths_A), 500))
            real_B = train.first("B", min(len(train.paths_B), 500))
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

    # --- outputs --------------------------------------------------------------------------------
    def sample_images(self, epoch, batch_i):
        """The report's 2x3 grid (rows A, B; columns Original, Translated, Reconstructed)."""
        if not self.is_chief:
            return None
        imgs_A = self.data_loader.test.first("A")
        imgs_B = self.data_loader.test.first("B")
        fake_B, fake_A = self.translate(imgs_A, imgs_B)
        reconstr_B, reconstr_A = self.translate(fake_A, fake_B)
        grid = np.concatenate([imgs_A, fake_B, reconstr_A, imgs_B, fake_A, reconstr_B])
        path = os.path.join(self.images_dir, f"{epoch}_{batch_i}.png")
        return plotting.save_image_grid(
            grid,
            path,
            2,
            3,
            titles=["Original", "Translated", "Reconstructed"],
            row_labels=["A", "B"],
        )

    def save_models(self):
        """``models/{g_AB,g_BA,d_A,d_B}.h5`` and ``.keras``, with trainable set for reuse."""
        if not self.is_chief:
            return
        for name in ("g_AB", "g_BA", "d_A", "d_B"):
            model = getattr(self, name)
            was = model.trainable
            self.set_trainable(model, True)
            save_model(model, os.path.join(self.models_dir, name))
            self.set_trainable(model, was)


def translate_files(model_path, inputs, output_dir, batch_size=8):
    """Translate every image of ``inputs`` (a file or folder) with a saved generator; returns paths."""
    model = load_model(model_path)
    size = tuple(model.input_shape[1:3])
    paths = list_images(inputs) if os.path.isdir(inputs) else [inputs]
    os.makedirs(output_dir, exist_ok=True)
    written = []
    for start in range(0, len(paths), batch_size):
        chunk = paths[start : start + batch_size]
        batch = np.stack([load_image(p, size) for p in chunk])
        for path, out in zip(chunk, np.asarray(model(batch, training=False))):
            target = os.path.join(output_dir, os.path.splitext(os.path.basename(path))[0] + ".png")
            save_image(out, target)
            written.append(target)
    return written


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv.pop(0) if argv and argv[0] in ("train", "translate") else "train"
    if command == "translate":
        parser = argparse.ArgumentParser(
            prog="python -m keras_gans.cyclegan translate",
            description="Translate images with a saved CycleGAN generator (.h5 or .keras).",
        )
        parser.add_argument("--model", required=True, help="generator file, e.g. models/g_AB.h5")
        parser.add_argument("--input", required=True, help="an image file or a folder of images")
        parser.add_argument("--output", required=True, help="folder for the translated images")
        args = parser.parse_args(argv)
        written = translate_files(args.model, args.input, args.output)
        print(f"wrote {len(written)} image(s) to {args.output}")
        return written
    parser = argparse.ArgumentParser(
        prog="python -m keras_gans.cyclegan",
        description="Train the report's CycleGAN (apple2orange, 128x128, Keras-GAN code).",
    )
    parser.add_argument("--dataset", default="sample", help="'sample' (offline) or a Berkeley name")
    parser.add_argument("--data-dir", default=None, help="folder with trainA, trainB, testA, testB")
    parser.add_argument("--img-size", type=int, default=IMG_SIZE, help=f"default: {IMG_SIZE}")
    parser.add_argument("--gf", type=int, default=GF, help=f"generator filters (default: {GF})")
    parser.add_argument("--df", type=int, default=DF, help=f"discriminator filters (default: {DF})")
    parser.add_argument("--lambda-cycle", type=float, default=LAMBDA_CYCLE, help="default: 10")
    parser.add_argument("--lambda-id", type=float, default=None, help="default: 0.1 * lambda-cycle")
    parser.add_argument(
        "--norm", default="contrib", choices=("contrib", "instance"), help="default: contrib"
    )
    add_common_args(parser, epochs=None, batch_size=1, sample_interval=SAMPLE_INTERVAL)
    parser.set_defaults(epochs=None)
    args = parser.parse_args(argv)
    epochs = args.epochs or (
        SAMPLE_EPOCHS if args.dataset == "sample" and not args.data_dir else EPOCHS
    )
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
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
        **runtime_kwargs(args),
    )
    summary = gan.train(epochs, args.batch_size, args.sample_interval, args.max_steps)
    print(f"done: {summary['steps']} steps in {summary['seconds']} s; outputs in {gan.output_dir}")
    return gan


if __name__ == "__main__":
    main()
