"""Where ISIC images come from without a folder of one's own: a drawn sample, or the ISIC Archive.

* :func:`make_lesion_sample` draws a deterministic synthetic sample, offline: dark, large, irregular,
  asymmetric, multi-coloured "melanomas"; small, round, uniform brown "nevi"; a few flat grey-brown
  "other" patches; all on skin in a dermoscope's dark-cornered field, the first two with a faint
  pigment network, some crossed by a hair. It is written once as ``images/<id>.png`` and
  ``labels.csv`` (read by :func:`data_loaders.isic.load_isic` like any labelled folder), so every
  entry point runs without data. The pictures are drawings: enough to exercise the pipelines, not
  to reproduce the report.
* :func:`download_isic` fetches real images and ``metadata.csv`` through the optional ``isic-cli``
  client, or says how to get them by hand.
"""

import csv
import os
import shutil
import subprocess

import numpy as np
from PIL import Image

from data_loaders.download import DownloadError, cache_root

SAMPLE_N_PER_CLASS = 160
SAMPLE_N_OTHER = 16
# isic-cli's query for the two classes (diagnosis_2 is the archive's second taxonomy level).
DEFAULT_SEARCH = (
    'diagnosis_2:"Malignant melanocytic proliferations (Melanoma)" OR '
    'diagnosis_2:"Benign melanocytic proliferations"'
)


# --- the synthetic sample ---------------------------------------------------------------------
def _smooth_noise(rng, size, cells):
    """Low-frequency noise in [0, 1]: a random grid upsampled bicubically."""
    grid = (rng.random((cells, cells)) * 255).astype(np.uint8)
    up = Image.fromarray(grid).resize((size, size), Image.BICUBIC)
    return np.asarray(up, np.float32) / 255.0


def _lesion(rng, size, kind):
    """One dermoscopy-like picture (uint8 HWC) of a ``melanoma``, ``nevus`` or ``other`` lesion."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    skin = np.array([rng.uniform(0.82, 0.95), rng.uniform(0.62, 0.76), rng.uniform(0.52, 0.66)])
    img = skin * (0.94 + 0.08 * _smooth_noise(rng, size, 6)[..., None])
    # The dark corners of a round dermoscope field.
    vignette = 1 - 0.85 * np.clip((np.hypot(yy - 0.5, xx - 0.5) - 0.45) / 0.25, 0, 1)
    cy, cx = 0.5 + rng.normal(0, 0.04, 2)
    dy, dx = yy - cy, xx - cx
    theta, dist = np.arctan2(dy, dx), np.hypot(dy, dx)
    if kind == "nevus":  # small, round, symmetric, one brown
        radius = rng.uniform(0.13, 0.22) * (1 + 0.04 * np.cos(2 * theta + rng.uniform(0, 6.3)))
        brown = np.array([rng.uniform(0.45, 0.6), rng.uniform(0.28, 0.38), rng.uniform(0.15, 0.22)])
        colour = brown * (0.85 + 0.15 * (dist / radius))[..., None]
        edge = 0.012
    elif kind == "melanoma":  # large, irregular, asymmetric, several colours
        radius = rng.uniform(0.26, 0.38) * np.ones_like(theta)
        for k in range(2, 7):
            radius *= 1 + rng.uniform(0.04, 0.13) * np.cos(k * theta + rng.uniform(0, 6.3))
        radius *= 1 + 0.25 * np.cos(theta - rng.uniform(0, 6.3))  # one lobe grows: asymmetry
        palette = np.array(
            [[0.12, 0.07, 0.06], [0.35, 0.18, 0.1], [0.42, 0.45, 0.6], [0.7, 0.3, 0.3]]
        ) * rng.uniform(0.85, 1.1)
        weights = np.stack([_smooth_noise(rng, size, 5) ** 2 for _ in palette], -1)
        weights[..., 0] += 0.3  # mostly dark
        colour = (weights / weights.sum(-1, keepdims=True)) @ palette
        edge = 0.004
    else:  # "other": a flat, waxy, light grey-brown keratosis-like patch
        radius = rng.uniform(0.2, 0.3) * (1 + 0.1 * np.cos(3 * theta + rng.uniform(0, 6.3)))
        colour = (
            np.array([0.62, 0.52, 0.42]) * (0.8 + 0.4 * _smooth_noise(rng, size, 16))[..., None]
        )
        edge = 0.01
    alpha = np.clip((radius - dist) / edge, 0, 1)[..., None]
    img = (1 - alpha) * img + alpha * colour
    if kind != "other":  # a pigment network: a faint dark grid inside the lesion
        period = rng.uniform(0.025, 0.04)
        net = (np.sin(yy / period * np.pi) * np.sin(xx / period * np.pi)) ** 8
        img *= 1 - 0.18 * alpha * net[..., None]
    if rng.random() < 0.3:  # a hair across the field
        a, b = rng.uniform(-1, 1), rng.uniform(0.2, 0.8)
        hair = np.abs(yy - (a * (xx - 0.5) + b)) < 0.004
        img[hair] *= 0.35
    img = img * vignette[..., None] + rng.normal(0, 0.012, img.shape)
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def make_lesion_sample(
    root, n_per_class=SAMPLE_N_PER_CLASS, size=128, seed=0, n_other=SAMPLE_N_OTHER
):
    """Write the synthetic sample into ``root`` once: ``images/<id>.png`` and ``labels.csv``.

    Deterministic in ``(seed, class, index)``; rewritten only if the parameters change.
    """
    marker = os.path.join(root, ".complete")
    params = f"n_per_class={n_per_class} n_other={n_other} size={size} seed={seed}\n"
    if os.path.exists(marker):
        with open(marker) as f:
            if f.read() == params:
                return root
    images = os.path.join(root, "images")
    shutil.rmtree(images, ignore_errors=True)
    os.makedirs(images, exist_ok=True)
    rows = []
    for k, (kind, n) in enumerate(
        (("melanoma", n_per_class), ("nevus", n_per_class), ("other", n_other))
    ):
        for i in range(n):
            image_id = f"{kind}_{i:04d}"
            pixels = _lesion(np.random.default_rng([seed, k, i]), size, kind)
            path = os.path.join(images, f"{image_id}.png")
            Image.fromarray(pixels).save(path, compress_level=1)  # fast; made once
            rows.append((image_id, kind))
    with open(os.path.join(root, "labels.csv"), "w", newline="") as f:
        csv.writer(f).writerows([("image_id", "diagnosis"), *rows])
    with open(marker, "w") as f:
        f.write(params)
    return root


def sample_root():
    """Where :func:`data_loaders.isic.load_isic` keeps the sample: the dataset cache."""
    return os.path.join(cache_root(), "datasets", "isic_sample")


# --- the isic-cli download ---------------------------------------------------------------------
def download_isic(dest, search=DEFAULT_SEARCH, limit=0, executable="isic", timeout=None):
    """Fetch images and ``metadata.csv`` into ``dest`` with ``isic image download``; returns it.

    Needs the optional ``isic-cli`` client (``pip install "keras_gans[isic]"``) and the network;
    otherwise raises :class:`DownloadError` saying how to get the data by hand.
    """
    dest = os.path.abspath(os.path.expanduser(dest))
    hint = (
        f"Get the images by hand: install the ISIC client (pip install isic-cli) and run "
        f"`isic image download --search '{search}' {dest}` on a machine with internet, or put "
        f"HAM10000 (HAM10000_metadata.csv + images) or a folder with labels.csv "
        f"(image_id,diagnosis) "
        f"there, then pass --data-dir {dest}."
    )
    exe = shutil.which(executable)
    if exe is None:
        raise DownloadError(
            f"the `{executable}` command (package isic-cli) is not installed. {hint}"
        )
    cmd = [exe, "image", "download", "--search", search]
    if limit:
        cmd += ["--limit", str(int(limit))]
    os.makedirs(dest, exist_ok=True)
    try:
        result = subprocess.run(cmd + [dest], capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise DownloadError(f"`{' '.join(cmd)}` failed ({err}). {hint}") from err
    if result.returncode != 0 or not os.path.exists(os.path.join(dest, "metadata.csv")):
        tail = (result.stderr or result.stdout or "").strip().splitlines()[-3:]
        raise DownloadError(
            f"`isic image download` failed (exit {result.returncode}: {' | '.join(tail)}). "
            f"Offline? {hint}"
        )
    return dest
