"""Tiny instances of every trainer, for the trainer contract (tests/test_trainers.py).

A new trainer joins the contract with one line in ``TRAINERS``: a factory ``(output_dir, **runtime)``
building it at a tiny size on in-memory data, and, in ``CLI``, the arguments that train it for two
steps through its real command line (used by the multi-worker check).
"""

import numpy as np

SIZE = 16


def images(n=8, channels=3, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (n, SIZE, SIZE, channels)).astype(np.float32)


def labels(n=8):
    return np.arange(n, dtype=np.int32) % 2


def _gan(out, **kw):
    from keras_gans.gan import GAN

    return GAN(images=images(), img_size=SIZE, gf=4, df=4, latent_dim=8, output_dir=out, **kw)


def _dcgan(out, **kw):
    from keras_gans.dcgan import DCGAN

    return DCGAN(images=images(), img_size=SIZE, gf=4, df=4, latent_dim=8, output_dir=out, **kw)


def _cgan(out, **kw):
    from keras_gans.cgan import CGAN

    return CGAN(
        images(channels=1),
        labels(),
        n_classes=2,
        latent_dim=8,
        base_filters=4,
        embedding_dim=4,
        output_dir=out,
        **kw,
    )


def _biggan(out, **kw):
    from keras_gans.biggan import BigGAN

    return BigGAN(images(), labels(), img_size=SIZE, ch=4, attention_res=8, output_dir=out, **kw)


def _progan(out, **kw):
    """4x4 for three steps, then the 8x8 fade-in (alpha 1/3, 2/3, 1): the contract's fifth step
    updates a fading G and D, old and new paths both."""
    from keras_gans.progan import ProGAN

    return ProGAN(
        images=images(),
        latent_dim=8,
        fmap_base=16,
        fmap_max=8,
        images_per_stage=6,
        output_dir=out,
        **kw,
    )


def _cyclegan(out, **kw):
    from keras_gans.cyclegan import CycleGAN

    data = (images(seed=1), images(seed=2))
    return CycleGAN(data=data, img_rows=SIZE, img_cols=SIZE, gf=4, df=4, output_dir=out, **kw)


def _anogan_dcgan(out, **kw):
    """AnoGAN's generator: the DCGAN on one-channel images of the normal class."""
    from keras_gans.dcgan import DCGAN

    return DCGAN(
        images=images(channels=1), img_size=SIZE, gf=4, df=4, latent_dim=8, output_dir=out, **kw
    )


def _autoencoder(out, **kw):
    """The one-class baseline: a denoising autoencoder, one compiled model, one update a step."""
    from keras_gans.autoencoder import Autoencoder

    return Autoencoder(
        images(channels=1), filters=4, code_dim=8, noise_std=0.2, output_dir=out, **kw
    )


def _sgan(out, **kw):
    """The semi-supervised GAN: one labelled image per class, the other six unlabelled."""
    from keras_gans.sgan import SGAN

    return SGAN(
        images(channels=1),
        labels(),
        labels_per_class=1,
        latent_dim=4,
        g_units=(8,),
        d_units=(8, 8),
        output_dir=out,
        **kw,
    )


TRAINERS = {
    "gan": _gan,
    "dcgan": _dcgan,
    "cgan": _cgan,
    "biggan": _biggan,
    "progan": _progan,
    "cyclegan": _cyclegan,
    "anogan_dcgan": _anogan_dcgan,
    "autoencoder": _autoencoder,
    "sgan": _sgan,
}

_TINY = [
    "--max-steps",
    "2",
    "--batch-size",
    "2",
    "--sample-interval",
    "0",
    "--checkpoint-every",
    "1",
]
CLI = {
    "gan": ["keras_gans.gan", "--img-size", "16", "--gf", "4", "--df", "4", *_TINY],
    "dcgan": ["keras_gans.dcgan", "--img-size", "16", "--gf", "4", "--df", "4", *_TINY],
    "cgan": ["keras_gans.cgan", "--img-size", "16", "--base-filters", "4", *_TINY],
    "biggan": [
        "keras_gans.biggan",
        "--img-size",
        "16",
        "--ch",
        "4",
        "--attention-res",
        "8",
        *_TINY,
    ],
    "progan": [
        "keras_gans.progan",
        "--img-size",
        "8",
        "--latent-dim",
        "8",
        "--fmap-base",
        "16",
        "--fmap-max",
        "8",
        "--images-per-stage",
        "2",
        *_TINY,
    ],
    "cyclegan": ["keras_gans.cyclegan", "--img-size", "16", "--gf", "4", "--df", "4", *_TINY],
    "anogan_dcgan": [
        "keras_gans.anogan",
        "train",
        "--img-size",
        "16",
        "--gf",
        "4",
        "--df",
        "4",
        "--no-score",
        *_TINY,
    ],
    "autoencoder": [
        "keras_gans.autoencoder",
        "train",
        "--img-size",
        "16",
        "--filters",
        "4",
        "--code-dim",
        "8",
        "--noise-std",
        "0.2",
        "--no-score",
        *_TINY,
    ],
    "sgan": [
        "keras_gans.sgan",
        "--img-size",
        "16",
        "--d-units",
        "8",
        "--g-units",
        "8",
        "--latent-dim",
        "4",
        "--labels-per-class",
        "2",
        *_TINY,
    ],
}


def model_inputs(model, n=2, seed=0):
    """Random inputs of the right shapes and dtypes for ``model`` (class inputs get 0 and 1)."""
    rng = np.random.default_rng(seed)
    out = []
    for tensor in model.inputs:
        shape = (n,) + tuple(tensor.shape[1:])
        if "int" in str(tensor.dtype):
            out.append((np.arange(np.prod(shape)) % 2).reshape(shape).astype(np.int32))
        else:
            out.append(rng.standard_normal(shape).astype(np.float32))
    return out if len(out) > 1 else out[0]
