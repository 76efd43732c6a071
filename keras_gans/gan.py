"""The report's basic convolutional GAN on ISIC skin lesions at 32x32.

Goodfellow et al., "Generative Adversarial Nets", NIPS 2014 (arXiv:1406.2661). The report's first
model: "the skin images are colour (3 channels), so the linear-layer network cannot be used; we
switched to convolution layers", trained on the 23,345 preprocessed ISIC images resized to 32x32
(report 001, Sec. 3.2; all diagnoses: ``--classes all``, the default is melanoma and nevus). Its
code did not survive; the model follows Keras-GAN's convolutional GAN (``dcgan/dcgan.py``, written
for 28x28 MNIST), the nearest Keras-GAN network that matches that description (our choice):

* G: Dense(128 * s * s, relu) with s = size / 4 -> Reshape -> [UpSampling2D -> Conv2D(3x3) ->
  BatchNorm(momentum 0.8) -> ReLU] with 128 then 64 filters -> Conv2D(channels, 3x3) -> tanh;
* D: Conv2D(32, 3x3, s2) -> LeakyReLU(0.2) -> Dropout(0.25) -> [Conv2D(3x3) -> BatchNorm(0.8) ->
  LeakyReLU(0.2) -> Dropout(0.25)] with 64 (s2), 128 (s2), 256 (s1) filters -> Flatten ->
  Dense(1, sigmoid);
* Adam(2e-4, 0.5) for D and ``combined``, binary cross-entropy, z ~ N(0, 1) of 100, batch 32.

Deviations: Keras-GAN's ``ZeroPadding2D(((0, 1), (0, 1)))`` after D's second convolution only fixed
MNIST's odd 7x7 map; at 32x32 the maps are 16, 8, 4, 4 and it is left out. Keras default weight
initialisation, as in Keras-GAN. Everything else is :class:`keras_gans.dcgan.DCGAN`'s, which this
trainer subclasses: the ``train_on_batch`` updates, the choice for D's frozen BatchNorm (batch
statistics, as Keras 2 did), the 5x5 grids from fixed noise and the ``train`` / ``generate`` command
line. The loop, checkpoints, resume and the saved models (``models/generator`` and
``models/discriminator``) are :meth:`keras_gans.training.GANTrainer.run`'s.
"""

from keras import Input, Model, layers

from keras_gans import cli, sampling
from keras_gans.dcgan import DCGAN, LATENT_DIM, train_command
from keras_gans.errors import ConfigError

# Keras-GAN's conv GAN at the report's 32x32 (batch, Adam and z are keras_gans.dcgan's).
IMG_SIZE = 32
GF = 64  # Keras-GAN: 128 then 64 generator filters
DF = 32  # Keras-GAN: 32, 64, 128, 256 discriminator filters
BN_MOMENTUM = 0.8
DROPOUT = 0.25
EPOCHS = 40  # the report does not say; Keras-GAN's gan ran 30k steps of 32, ~40 ISIC epochs
SAMPLE_EPOCHS = 30  # on the built-in sample (320 images)


# --- networks ---------------------------------------------------------------------------------------
def build_generator(
    latent_dim=LATENT_DIM, img_size=IMG_SIZE, channels=3, base_filters=GF, name="generator"
):
    """Keras-GAN's conv G: Dense -> 2 x [UpSampling -> Conv -> BN -> ReLU] -> Conv -> tanh."""
    if img_size % 4 or img_size < 4:
        raise ConfigError(f"img_size must be a multiple of 4, got {img_size}")
    s = img_size // 4
    z = Input(shape=(latent_dim,), name=f"{name}_z")
    x = layers.Dense(2 * base_filters * s * s, activation="relu", name=f"{name}_dense")(z)
    x = layers.Reshape((s, s, 2 * base_filters), name=f"{name}_reshape")(x)
    for i, filters in enumerate((2 * base_filters, base_filters), start=1):
        x = layers.UpSampling2D(name=f"{name}_up{i}")(x)
        x = layers.Conv2D(filters, 3, padding="same", name=f"{name}_conv{i}")(x)
        x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn{i}")(x)
        x = layers.ReLU(name=f"{name}_relu{i}")(x)
    img = layers.Conv2D(
        channels, 3, padding="same", activation="tanh", dtype="float32", name=f"{name}_out"
    )(x)
    return Model(z, img, name=name)


def build_discriminator(img_size=IMG_SIZE, channels=3, base_filters=DF, name="discriminator"):
    """Keras-GAN's conv discriminator: 4 x [Conv -> (BN) -> LeakyReLU -> Dropout] -> sigmoid.

    Blocks are named ``{name}_conv{i}``, ``{name}_bn{i}`` (i >= 2), ``{name}_lrelu{i}`` and
    ``{name}_dropout{i}``, i = 1..4.
    """
    if img_size % 8 or img_size < 8:
        raise ConfigError(f"img_size must be a multiple of 8, got {img_size}")
    img = Input(shape=(img_size, img_size, channels), name=f"{name}_input")
    x = img
    for i, (mult, stride) in enumerate(((1, 2), (2, 2), (4, 2), (8, 1)), start=1):
        x = layers.Conv2D(
            base_filters * mult, 3, strides=stride, padding="same", name=f"{name}_conv{i}"
        )(x)
        if i > 1:
            x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn{i}")(x)
        x = layers.LeakyReLU(negative_slope=0.2, name=f"{name}_lrelu{i}")(x)
        x = layers.Dropout(DROPOUT, name=f"{name}_dropout{i}")(x)
    x = layers.Flatten(name=f"{name}_flatten")(x)
    validity = layers.Dense(1, activation="sigmoid", dtype="float32", name=f"{name}_validity")(x)
    return Model(img, validity, name=name)


# --- the trainer ------------------------------------------------------------------------------------
class GAN(DCGAN):
    """The report's basic conv GAN at 32x32; arguments as :class:`keras_gans.dcgan.DCGAN`."""

    name = "gan"
    default_epochs = EPOCHS
    default_sample_epochs = SAMPLE_EPOCHS
    default_img_size, default_gf, default_df = IMG_SIZE, GF, DF
    generator_builder = staticmethod(build_generator)
    discriminator_builder = staticmethod(build_discriminator)

    def __init__(self, images=None, data_dir=None, class_name=None, img_size=IMG_SIZE, **kwargs):
        super().__init__(images, data_dir, class_name, img_size, **kwargs)

    @staticmethod
    def check_img_size(img_size):
        """D's three stride-2 convolutions need a multiple of 8 (G's two upsamplings, of 4)."""
        if img_size % 8 or img_size < 8:
            raise ConfigError(f"--img-size must be a multiple of 8, got {img_size}")


# --- command line -----------------------------------------------------------------------------------
COMMANDS = [
    train_command(GAN, "Train the report's basic conv GAN (ISIC melanoma / nevus, 32x32)."),
    sampling.GENERATE,
]


def main(argv=None):
    return cli.main("python -m keras_gans.gan", __doc__.partition("\n")[0], COMMANDS, argv)


if __name__ == "__main__":
    main()
