"""ISIC dermoscopy images (melanoma, nevus, other diagnoses) for the skin-lesion GANs, in [-1, 1].

The report trained its GANs on ISIC Archive images after preprocessing: "stickers minimised and
duplicate data removed", 23,905 -> 23,345 images of all diagnoses (report 001, Sec. 3.1), resized to
32, 64 or 128 pixels. It does not say how duplicates were found. :func:`load_isic` reads any of
these layouts (images in the folder itself, in an ``images/`` sub-folder, or anywhere below it):

* an ``isic-cli`` export (``isic image download DIR``): ``ISIC_xxxxxxx.JPG`` plus ``metadata.csv``
  with ``isic_id``, ``lesion_id`` and the diagnosis columns ``diagnosis_1`` .. ``diagnosis_5``
  (``diagnosis_3`` holds "Nevus", "Melanoma Invasive", ...); older exports have ``diagnosis`` and
  ``benign_malignant``;
* HAM10000: ``HAM10000_metadata.csv`` with ``lesion_id``, ``image_id``, ``dx`` (mel, nv, bcc, ...);
* a plain ``image_id,diagnosis`` CSV such as ``labels.csv`` (any ``*.csv`` with an id column and a
  diagnosis column, including the one-hot ``MEL``, ``NV``, ... challenge ground truth);
* no CSV at all: one sub-folder per class (``melanoma/``, ``nevus/``), as ``ImageFolder`` reads it.

Diagnoses map to ``melanoma``, ``nevus`` or ``other`` (:mod:`data_loaders.isic_metadata`); the
most specific column that names melanoma or nevus wins. ``classes="all"`` keeps every diagnosis.
Duplicates (``dedup``; not stated in the report; our choice): ``"lesion"`` (default) keeps one image
per ``lesion_id`` (HAM10000 and the archive photograph a lesion several times) and no two images
with the same decoded pixels; ``"pixels"`` drops identical pixels only; ``"none"`` keeps all. Then a
centre crop to a square (stretching would distort the asymmetry that marks a melanoma), bilinear
resize, scaling to ``value_range``. The decoded uint8 arrays are cached in
``cache_root()/cache/isic_<key>.npz``, keyed by the folder, size, classes, dedup and the file list
with sizes and mtimes, so a second run starts at once and an edited folder is re-read.

Without data, :func:`load_isic` reads the drawn offline sample and :func:`resolve_isic` can fetch the
archive through ``isic-cli`` (both in :mod:`data_loaders.isic_sources`).
"""

import hashlib
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf
from PIL import Image

from data_loaders.download import cache_root
from data_loaders.images import (
    IMAGE_EXTENSIONS,
    BadImageError,
    NoImagesError,
    SkipReport,
    open_rgb,
)
from data_loaders.isic_metadata import ALL_CLASSES, CLASSES, map_diagnosis, read_metadata
from data_loaders.isic_sources import download_isic, make_lesion_sample, sample_root
from keras_gans.errors import ConfigError

log = logging.getLogger(__name__)

DEDUP = ("lesion", "pixels", "none")
CACHE_VERSION = 1


@dataclass
class IsicData:
    """Decoded images with labels (indices into ``class_names``) and where they came from."""

    images: np.ndarray  # float32 (n, h, w, c) in value_range
    labels: np.ndarray  # int64 (n,)
    ids: list
    lesion_ids: list | None
    class_names: tuple
    root: str = ""
    layout: str = ""
    duplicates: list = field(default_factory=list)  # (dropped id, kept id, "pixels" | "lesion")
    skipped: list = field(default_factory=list)  # (path, reason)
    from_cache: bool = False

    def __len__(self):
        return len(self.ids)

    def counts(self):
        """``{class name: number of images}``."""
        return {c: int(np.sum(self.labels == i)) for i, c in enumerate(self.class_names)}


# --- image files ------------------------------------------------------------------------------
def _index_images(root):
    """``{image id: path}`` for every image file below ``root`` (ids are file stems)."""
    index = {}
    for dirpath, dirnames, files in os.walk(root):
        dirnames.sort()
        for f in sorted(files):
            if f.lower().endswith(IMAGE_EXTENSIONS) and not f.startswith("."):
                stem = os.path.splitext(f)[0]
                rel = os.path.relpath(os.path.join(dirpath, stem), root)
                index.setdefault(stem, os.path.join(dirpath, f))
                index.setdefault(rel, os.path.join(dirpath, f))
    return index


# --- decoding and caching ---------------------------------------------------------------------
def _decode(path, size, center_crop):
    """``(uint8 (size, size, 3), sha1 of the decoded full-resolution pixels)``."""
    img = open_rgb(path)
    arr = np.asarray(img)
    digest = hashlib.sha1(str(arr.shape).encode() + arr.tobytes()).hexdigest()
    if center_crop and img.width != img.height:
        side = min(img.size)
        left, top = (img.width - side) // 2, (img.height - side) // 2
        img = img.crop((left, top, left + side, top + side))
    if img.size != (size, size):
        img = img.resize((size, size), Image.BILINEAR)
    return np.asarray(img, dtype=np.uint8), digest


def _cache_key(root, meta_path, paths, size, classes, center_crop, dedup):
    key = f"v{CACHE_VERSION}|{root}|{size}|{classes}|{center_crop}|{dedup}"
    digest = hashlib.sha1(key.encode())
    for p in [meta_path, *paths] if meta_path else paths:
        st = os.stat(p)
        digest.update(f"|{os.path.relpath(p, root)}:{st.st_size}:{st.st_mtime_ns}".encode())
    return digest.hexdigest()[:20]


def _save_npz(path, **arrays):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
    os.replace(tmp, path)


def _decode_all(records, size, center_crop, strict, report, workers, pixels_dedup=True):
    """Decode ``records`` (id, label, lesion, path); drop pixel duplicates; skip bad files."""

    def work(record):
        try:
            return _decode(record[3], size, center_crop)
        except BadImageError as err:
            if strict:
                raise
            return err

    with ThreadPoolExecutor(max(1, workers)) as pool:
        results = list(pool.map(work, records))
    kept, arrays, seen, duplicates, skipped = [], [], {}, [], []
    for record, result in zip(records, results):
        if isinstance(result, BadImageError):
            skipped.append((record[3], str(result)))
            report.add(record[3], result)
            continue
        pixels, digest = result
        if pixels_dedup and digest in seen:
            duplicates.append((record[0], seen[digest], "pixels"))
            continue
        seen[digest] = record[0]
        kept.append(record)
        arrays.append(pixels)
    return kept, arrays, duplicates, skipped


def load_isic(
    data_dir=None,
    img_size=64,
    classes=CLASSES,
    value_range=(-1.0, 1.0),
    strict=False,
    report=None,
    cache=True,
    center_crop=True,
    workers=4,
    dedup="lesion",
):
    """Read, deduplicate, resize and scale an ISIC folder; ``data_dir=None`` is the built-in sample.

    ``classes`` picks and orders the classes (``labels`` index into it; ``"other"`` may be one;
    ``"all"``: :data:`ALL_CLASSES`). ``dedup``: ``"lesion"``, ``"pixels"`` or ``"none"``.
    Unreadable images are skipped with a warning naming them (recorded in ``report``), or raise
    :class:`BadImageError` with ``strict``. See the module docstring for layouts and preprocessing.
    """
    classes = ALL_CLASSES if classes == "all" else tuple(classes)
    unknown = [c for c in classes if c not in ALL_CLASSES]
    if unknown:
        raise ValueError(f"unknown class(es) {unknown}: choose from melanoma, nevus, other")
    if dedup not in DEDUP:
        raise ConfigError(f"--dedup must be one of {', '.join(DEDUP)}, got {dedup!r}")
    report = report if report is not None else SkipReport()
    root = (
        os.path.abspath(os.path.expanduser(data_dir))
        if data_dir
        else make_lesion_sample(sample_root())
    )
    if not os.path.isdir(root):
        raise NoImagesError(f"ISIC folder not found: {root}")
    layout, records, meta_path = read_metadata(root)
    index = _index_images(root)
    wanted, missing, lesions_seen, duplicates = [], [], {}, []
    for image_id, diagnosis, lesion in sorted(records, key=lambda r: r[0]):
        label = map_diagnosis(diagnosis) or "other"
        if label not in classes:
            continue
        path = index.get(image_id)
        if path is None:
            missing.append(image_id)
        elif dedup == "lesion" and lesion and lesion in lesions_seen:  # the first by id
            duplicates.append((image_id, lesions_seen[lesion], "lesion"))
        else:
            if lesion:
                lesions_seen[lesion] = image_id
            wanted.append((image_id, classes.index(label), lesion, path))
    if missing:
        log.warning(
            "%d image(s) listed in the metadata have no file in %s (first: %s)",
            len(missing),
            root,
            ", ".join(missing[:5]),
        )
    if not wanted:
        raise NoImagesError(f"{root}: no image of the classes {', '.join(classes)} was found")
    paths = [w[3] for w in wanted]
    key = _cache_key(root, meta_path, paths, img_size, classes, center_crop, dedup)
    cache_path = os.path.join(cache_root(), "cache", f"isic_{key}.npz")
    from_cache = cache and os.path.exists(cache_path)
    if from_cache:
        with np.load(cache_path, allow_pickle=False) as z:
            pixels, labels, ids = z["images"], z["labels"], [str(s) for s in z["ids"]]
            lesion_ids = [str(s) or None for s in z["lesion_ids"]]
            pixel_dups = [tuple(str(v) for v in row) for row in z["duplicates"]]
            skipped = [tuple(str(v) for v in row) for row in z["skipped"]]
        for path, reason in skipped:
            if strict:
                raise BadImageError(reason)
            report.add(path, reason)
        log.info("ISIC: %d images from the cache %s", len(ids), cache_path)
    else:
        kept, arrays, pixel_dups, skipped = _decode_all(
            wanted, img_size, center_crop, strict, report, workers, dedup != "none"
        )
        if not arrays:
            raise NoImagesError(f"{root}: none of the {len(wanted)} image(s) could be decoded")
        pixels = np.stack(arrays)
        labels = np.array([k[1] for k in kept], np.int64)
        ids = [k[0] for k in kept]
        lesion_ids = [k[2] for k in kept]
        if cache:
            _save_npz(
                cache_path,
                images=pixels,
                labels=labels,
                ids=np.array(ids, dtype=str),
                lesion_ids=np.array([v or "" for v in lesion_ids], dtype=str),
                duplicates=np.array(pixel_dups, dtype=str).reshape(-1, 3),
                skipped=np.array(skipped, dtype=str).reshape(-1, 2),
            )
    duplicates += pixel_dups
    if duplicates:
        log.info("ISIC: dropped %d duplicate(s) (same lesion or same pixels)", len(duplicates))
    lo, hi = value_range
    images = pixels.astype(np.float32) / 255.0 * (hi - lo) + lo
    return IsicData(
        images=images,
        labels=np.asarray(labels, np.int64),
        ids=ids,
        lesion_ids=lesion_ids if any(lesion_ids) else None,
        class_names=classes,
        root=root,
        layout=layout,
        duplicates=duplicates,
        skipped=skipped,
        from_cache=bool(from_cache),
    )


# --- sources and pipelines ---------------------------------------------------------------
def resolve_isic(dataset="sample", data_dir=None):
    """The folder to read: ``data_dir``, ``None`` for the sample, or the cached ISIC download."""
    if data_dir:
        return data_dir
    if dataset == "sample":
        return None
    if dataset != "isic":
        raise ConfigError(f"unknown dataset {dataset!r}: use 'sample', 'isic' or --data-dir DIR")
    root = os.path.join(cache_root(), "datasets", "isic")
    if not os.path.exists(os.path.join(root, "metadata.csv")):
        download_isic(root)
    return root


def source_name(images, data_dir=None, dataset="sample", class_name=None):
    """A training source's name for output folders: ``array`` for in-memory images, else the data
    folder's or the dataset's name; ``_<class>`` appended when one class is trained."""
    name = (
        "array" if images is not None else os.path.basename(os.path.normpath(data_dir or dataset))
    )
    return name + (f"_{class_name}" if class_name else "")


def unconditional_dataset(images, batch_size, seed=None, epoch=0, skip_batches=0, labels=None):
    """One epoch of shuffled ``batch_size`` batches (``(images, labels)`` if labels are given).

    The order is a pure function of ``(seed, epoch)``; the last partial batch is dropped, and
    ``skip_batches`` resumes mid-epoch. Batches are gathered from the NumPy array, not copied into
    the graph, so a large dataset costs no extra memory.
    """
    n = len(images) // batch_size * batch_size
    order = np.random.default_rng([0 if seed is None else seed, epoch]).permutation(len(images))[:n]
    order = order.reshape(-1, batch_size)[skip_batches:]
    shape = (batch_size, *images.shape[1:])

    def gather(idx):
        out = [images[idx]] + ([labels[idx]] if labels is not None else [])
        return tuple(out)

    types = [tf.as_dtype(images.dtype)] + (
        [tf.as_dtype(labels.dtype)] if labels is not None else []
    )

    def fetch(idx):
        out = tf.numpy_function(gather, [idx], types)
        out[0].set_shape(shape)
        if labels is not None:
            out[1].set_shape((batch_size,))
            return out[0], out[1]
        return out[0]

    ds = tf.data.Dataset.from_tensor_slices(order.astype(np.int64))
    return ds.map(fetch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(
        tf.data.AUTOTUNE
    )
