"""Reading image files robustly: any mode to upright RGB, bad files named, folders checked.

Every loader in `data_loaders` goes through these functions, so the rules hold everywhere:
JPEG, PNG, BMP, GIF, TIFF and WebP are read; grayscale, palette, RGBA, CMYK and 16-bit images become RGB;
EXIF orientation is applied; an undecodable, truncated, zero-byte or non-image file is skipped with a
warning that names it (or raises :class:`BadImageError` with ``strict=True``).
"""

import io
import logging
import os
import tempfile
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageOps

from keras_gans.errors import ConfigError, KerasGansError

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")


class BadImageError(KerasGansError, ValueError):
    """A file that should be an image cannot be decoded."""


class NoImagesError(KerasGansError, FileNotFoundError):
    """A folder that should hold images is missing, empty, or holds no usable image."""


@dataclass
class SkipReport:
    """The files a loader skipped, with the reason for each (shown in run summaries)."""

    skipped: list = field(default_factory=list)

    def add(self, path, reason):
        if any(p == str(path) for p, _ in self.skipped):
            return  # reported once, though a loader may meet the file again each epoch
        self.skipped.append((str(path), str(reason)))
        reason = str(reason)
        log.warning("skipping %s", reason if str(path) in reason else f"{path}: {reason}")

    def __len__(self):
        return len(self.skipped)

    def as_dict(self):
        return {"skipped": len(self.skipped), "files": [p for p, _ in self.skipped]}


def list_images(folder, recursive=False):
    """Sorted image paths in ``folder`` (by extension); raises :class:`NoImagesError` if none."""
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise NoImagesError(f"image folder not found: {folder}")
    paths = []
    if recursive:
        for root, _, files in os.walk(folder):
            paths += [os.path.join(root, f) for f in files]
    else:
        paths = [os.path.join(folder, f) for f in os.listdir(folder)]
    paths = sorted(p for p in paths if p.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(p))
    if not paths:
        raise NoImagesError(
            f"no image files ({', '.join(IMAGE_EXTENSIONS)}) in {folder}: put images there or "
            "point the loader at the folder that holds them"
        )
    return paths


def open_rgb(path):
    """Decode ``path`` to an upright RGB ``PIL.Image``; raises :class:`BadImageError` naming the file."""
    path = os.fspath(path)
    if os.path.getsize(path) == 0:
        raise BadImageError(f"{path}: empty file (0 bytes)")
    try:
        with Image.open(path) as img:
            img.load()
            img = ImageOps.exif_transpose(img)
            if img.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(img, dtype=np.float64)
                arr = 255.0 * (arr - arr.min()) / max(arr.max() - arr.min(), 1.0)
                img = Image.fromarray(arr.astype(np.uint8))
            if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
                # Composite on white rather than dropping alpha, so transparent regions stay light.
                rgba = img.convert("RGBA")
                background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                img = Image.alpha_composite(background, rgba)
            return img.convert("RGB")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise BadImageError(f"{path}: cannot decode image ({err})") from err


def load_image(path, size=None, value_range=(-1.0, 1.0)):
    """One image as float32 HWC RGB, resized to ``size`` (h, w) bilinearly, scaled to ``value_range``."""
    img = open_rgb(path)
    if size is not None:
        h, w = (size, size) if isinstance(size, int) else size
        if img.size != (w, h):
            img = img.resize((w, h), Image.BILINEAR)
    arr = np.asarray(img, dtype=np.float32)
    lo, hi = value_range
    return arr / 255.0 * (hi - lo) + lo


def load_images(paths, size, value_range=(-1.0, 1.0), strict=False, report=None):
    """Stack the decodable images of ``paths``; bad files are skipped (and recorded) or raise."""
    report = report if report is not None else SkipReport()
    arrays, kept = [], []
    for path in paths:
        try:
            arrays.append(load_image(path, size, value_range))
            kept.append(path)
        except BadImageError as err:
            if strict:
                raise
            report.add(path, err)
    if not arrays:
        where = os.path.dirname(paths[0]) if paths else "the given list"
        raise NoImagesError(
            f"no usable image in {where}: {len(report)} file(s) could not be decoded"
        )
    return np.stack(arrays), kept


def load_folder(folder, size, value_range=(-1.0, 1.0), strict=False, report=None, recursive=False):
    """All usable images of ``folder`` as one float32 array ``(n, h, w, 3)``."""
    arrays, _ = load_images(list_images(folder, recursive), size, value_range, strict, report)
    return arrays


def image_array(images):
    """A trainer's images as float32 ``(n, s, s, c)``, square and non-empty; a ``tf.data.Dataset``
    of single images is read at once."""
    if hasattr(images, "as_numpy_iterator"):
        images = list(images.as_numpy_iterator())
    images = np.asarray(images, np.float32)
    if images.ndim != 4 or not len(images) or images.shape[1] != images.shape[2]:
        raise ConfigError(f"images must be a non-empty (n, s, s, c) array, got {images.shape}")
    return images


def to_uint8(images, value_range=(-1.0, 1.0)):
    """Float images in ``value_range`` back to uint8 for saving."""
    lo, hi = value_range
    x = (np.asarray(images, dtype=np.float32) - lo) / (hi - lo)
    return np.clip(np.round(x * 255.0), 0, 255).astype(np.uint8)


def save_image(array, path, value_range=(-1.0, 1.0)):
    """Write one HWC image (float in ``value_range`` or uint8) to ``path``; format from the suffix."""
    arr = array if np.asarray(array).dtype == np.uint8 else to_uint8(array, value_range)
    if arr.shape[-1] == 1:
        arr = arr[..., 0]
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    # Encoded in memory, then written under a temporary name and renamed: a crash or a full disk
    # never leaves a half-written image under the final name.
    buffer = io.BytesIO()
    ext = os.path.splitext(path)[1].lower()
    Image.fromarray(arr).save(buffer, format=Image.registered_extensions().get(ext, ext[1:]))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(buffer.getvalue())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
