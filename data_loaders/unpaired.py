"""Unpaired two-domain images (the Berkeley CycleGAN layout) as ``tf.data`` pipelines in [-1, 1].

A dataset root holds ``trainA``, ``trainB``, ``testA`` and ``testB``. Each epoch draws
``min(len(A), len(B))`` images from both domains in a seeded random order (as Keras-GAN's
``DataLoader.load_batch`` does), so A and B are unpaired; every image is flipped left-right with
probability 0.5. Decoding runs in parallel inside ``tf.data`` and is prefetched.
"""

import logging
import os

import numpy as np
import tensorflow as tf

from data_loaders import download as dl
from data_loaders.images import (
    BadImageError,
    NoImagesError,
    SkipReport,
    list_images,
    load_image,
    open_rgb,
)
from data_loaders.sample import make_fruit_sample

log = logging.getLogger(__name__)

BERKELEY_URL = "https://people.eecs.berkeley.edu/~taesung_park/CycleGAN/datasets/{name}.zip"
BERKELEY_DATASETS = (
    "apple2orange",
    "summer2winter_yosemite",
    "horse2zebra",
    "monet2photo",
    "cezanne2photo",
    "ukiyoe2photo",
    "vangogh2photo",
    "maps",
    "cityscapes",
    "facades",
    "iphone2dslr_flower",
)
SPLITS = ("trainA", "trainB", "testA", "testB")


def resolve_dataset(dataset_name="sample", data_dir=None, sha256=None):
    """The root folder of an unpaired dataset: ``data_dir`` as is, the sample, or a download
    (verified against ``sha256``, the zip archive's, when given)."""
    if data_dir is not None:
        data_dir = os.path.abspath(os.path.expanduser(data_dir))
        missing = [s for s in ("trainA", "trainB") if not os.path.isdir(os.path.join(data_dir, s))]
        if missing:
            raise NoImagesError(
                f"{data_dir} must hold the folders trainA and trainB (and testA, testB for "
                f"samples); missing: {', '.join(missing)}"
            )
        return data_dir
    root = os.path.join(dl.cache_root(), "datasets", dataset_name)
    if dataset_name == "sample":
        return make_fruit_sample(root)
    if dataset_name not in BERKELEY_DATASETS:
        raise ValueError(
            f"unknown dataset {dataset_name!r}: use 'sample', one of {', '.join(BERKELEY_DATASETS)}, "
            "or --data-dir DIR"
        )
    if all(os.path.isdir(os.path.join(root, s)) for s in SPLITS[:2]):
        return root
    url = os.environ.get("KERAS_GANS_BERKELEY_URL", BERKELEY_URL).format(name=dataset_name)
    hint = (
        f"Offline? Download {dataset_name}.zip from the Berkeley CycleGAN datasets page by hand and "
        f"unzip it so that {root}/trainA, trainB, testA and testB exist, or pass --data-dir DIR."
    )
    archive = dl.download(
        url,
        os.path.join(dl.cache_root(), "downloads", f"{dataset_name}.zip"),
        sha256=sha256,
        manual_hint=hint,
    )
    parent = os.path.dirname(root)
    dl.extract_zip(archive, parent)  # the archive's top folder is the dataset name
    if not os.path.isdir(os.path.join(root, "trainA")):
        raise dl.DownloadError(f"{archive} did not contain {dataset_name}/trainA. {hint}")
    return root


def _decoded_ok(img_a, img_b, ok):
    return ok


def _drop_flag(img_a, img_b, ok):
    return img_a, img_b


class UnpairedImages:
    """The image paths of one split (``train`` or ``test``) of an unpaired dataset root."""

    def __init__(self, root, img_size=(128, 128), split="train", strict=False, report=None):
        self.root = root
        self.img_size = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
        self.paths_A = list_images(os.path.join(root, f"{split}A"))
        self.paths_B = list_images(os.path.join(root, f"{split}B"))
        self.strict = strict
        self.report = report if report is not None else SkipReport()
        if strict:  # fail now, naming the file, rather than from inside a tf.data worker later
            for path in self.paths_A + self.paths_B:
                open_rgb(path)

    def n_batches(self, batch_size):
        return min(len(self.paths_A), len(self.paths_B)) // batch_size

    def epoch_order(self, batch_size, seed, epoch):
        """Paths and flip decisions of one epoch: a pure function of ``(seed, epoch)``."""
        rng = np.random.default_rng([0 if seed is None else seed, epoch])
        n = self.n_batches(batch_size) * batch_size
        a = rng.choice(self.paths_A, n, replace=False)
        b = rng.choice(self.paths_B, n, replace=False)
        return a, b, rng.random(n) < 0.5, rng.random(n) < 0.5

    def _decode(self, path, flip):
        path = path.decode() if isinstance(path, bytes) else path
        try:
            img = load_image(path, self.img_size)
        except BadImageError as err:
            if self.strict:
                raise
            self.report.add(path, err)
            return np.zeros(self.img_size + (3,), np.float32), False
        return (img[:, ::-1] if flip else img).copy(), True

    def _decode_pair(self, pa, pb, fa, fb):
        a, ok_a = self._decode(pa, fa)
        b, ok_b = self._decode(pb, fb)
        return a, b, np.bool_(ok_a and ok_b)

    def dataset(self, batch_size, seed=None, epoch=0, skip_batches=0, flip=True):
        """One epoch as a ``tf.data.Dataset`` of ``(A, B)`` float32 batches in [-1, 1]."""
        a, b, fa, fb = self.epoch_order(batch_size, seed, epoch)
        if not flip:
            fa[:] = fb[:] = False
        h, w = self.img_size

        @tf.autograph.experimental.do_not_convert
        def decode(pa, pb, fa, fb):
            img_a, img_b, ok = tf.numpy_function(
                self._decode_pair, [pa, pb, fa, fb], [tf.float32, tf.float32, tf.bool]
            )
            img_a.set_shape((h, w, 3))
            img_b.set_shape((h, w, 3))
            return img_a, img_b, ok

        ds = tf.data.Dataset.from_tensor_slices((a, b, fa, fb)).skip(skip_batches * batch_size)
        ds = ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        ds = ds.filter(_decoded_ok).map(_drop_flag)
        return ds.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)

    def count(self, domain):
        return len(self.paths_A if domain == "A" else self.paths_B)

    def first(self, domain, n=1):
        """The first ``n`` images of a domain, unflipped (fixed images for sample grids)."""
        paths = self.paths_A if domain == "A" else self.paths_B
        return np.stack([load_image(p, self.img_size) for p in paths[:n]])


class DataLoader:
    """Keras-GAN's ``DataLoader`` API over :class:`UnpairedImages`, for notebooks and old code.

    ``load_data(domain, batch_size, is_testing)`` returns a random batch of one domain,
    ``load_batch(batch_size, is_testing)`` yields ``(imgs_A, imgs_B)`` for one epoch, and
    ``load_img(path)`` returns one image as a batch of one, all in [-1, 1].
    """

    def __init__(
        self, dataset_name="sample", img_res=(128, 128), data_dir=None, seed=None, strict=False
    ):
        self.dataset_name = dataset_name
        self.img_res = tuple(img_res)
        self.root = resolve_dataset(dataset_name, data_dir)
        self.seed = seed
        self.report = SkipReport()
        self.strict = strict
        self._rng = np.random.default_rng(seed)
        self._epoch = 0
        self.train = UnpairedImages(self.root, self.img_res, "train", strict, self.report)
        self._test = None
        self.n_batches = 0

    @property
    def test(self):
        if self._test is None:
            self._test = UnpairedImages(self.root, self.img_res, "test", self.strict, self.report)
        return self._test

    def load_data(self, domain, batch_size=1, is_testing=False):
        split = self.test if is_testing else self.train
        paths = split.paths_A if domain == "A" else split.paths_B
        chosen = self._rng.choice(paths, size=batch_size)
        imgs = [load_image(p, self.img_res) for p in chosen]
        if not is_testing:
            imgs = [im[:, ::-1] if self._rng.random() > 0.5 else im for im in imgs]
        return np.stack(imgs)

    def load_batch(self, batch_size=1, is_testing=False):
        split = self.test if is_testing else self.train
        self.n_batches = split.n_batches(batch_size)
        ds = split.dataset(batch_size, self.seed, self._epoch, flip=not is_testing)
        self._epoch += 1
        yield from ds.as_numpy_iterator()

    def load_img(self, path):
        return load_image(path, self.img_res)[None]


class UnpairedArrays:
    """In-memory images of two domains with the interface of :class:`UnpairedImages`."""

    root = "arrays"

    def __init__(self, images_A, images_B):
        self.images = {"A": _as_images(images_A, "A"), "B": _as_images(images_B, "B")}
        self.img_size = self.images["A"].shape[1:3]

    def count(self, domain):
        return len(self.images[domain])

    def n_batches(self, batch_size):
        return min(self.count("A"), self.count("B")) // batch_size

    def dataset(self, batch_size, seed=None, epoch=0, skip_batches=0, flip=True):
        """One epoch of ``(A, B)`` batches: the order and flips a function of ``(seed, epoch)``."""
        rng = np.random.default_rng([0 if seed is None else seed, epoch])
        n = self.n_batches(batch_size) * batch_size
        a = self.images["A"][rng.choice(self.count("A"), n, replace=False)]
        b = self.images["B"][rng.choice(self.count("B"), n, replace=False)]
        if flip:
            a = np.where((rng.random(n) < 0.5)[:, None, None, None], a[:, :, ::-1], a)
            b = np.where((rng.random(n) < 0.5)[:, None, None, None], b[:, :, ::-1], b)
        ds = tf.data.Dataset.from_tensor_slices((a, b)).skip(skip_batches * batch_size)
        return ds.batch(batch_size, drop_remainder=True)

    def first(self, domain, n=1):
        return self.images[domain][:n]


def _as_images(images, domain):
    if isinstance(images, tf.data.Dataset):
        images = np.stack(list(images.as_numpy_iterator()))
    images = np.asarray(images, np.float32)
    if images.ndim != 4 or not len(images):
        raise ValueError(f"domain {domain}: expected images (n, h, w, c), got {images.shape}")
    return images


class ArrayLoader:
    """A :class:`DataLoader` stand-in over arrays: ``train`` (and ``test``, default the same)."""

    root = "arrays"

    def __init__(self, train, test=None):
        self.train = UnpairedArrays(*train)
        self.test = UnpairedArrays(*test) if test is not None else self.train
        self.report = SkipReport()
