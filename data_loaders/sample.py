"""Built-in sample data, drawn deterministically so every entry point runs offline.

* :func:`make_fruit_sample`: "apple-like" (domain A: red or green round fruit with a stem and a leaf,
  smooth skin, a highlight) vs "orange-like" (domain B: orange, dimpled, with a navel spot) pictures
  on varied light backgrounds, in the Berkeley layout ``trainA``, ``trainB``, ``testA``, ``testB``.
  They are drawings, not photographs: enough for a CycleGAN to learn the colour and texture change.
"""

import os

import numpy as np
from PIL import Image


def _disk(h, w, cy, cx, r):
    yy, xx = np.mgrid[0:h, 0:w]
    return ((yy - cy) ** 2 + (xx - cx) ** 2) / (r * r)


def _fruit(rng, size, kind):
    h = w = size
    bg = rng.uniform(0.75, 0.97, 3) * np.array([1.0, rng.uniform(0.9, 1.0), rng.uniform(0.8, 1.0)])
    img = np.ones((h, w, 3)) * bg
    img += rng.normal(0, 0.015, (h, w, 3))
    cy, cx = rng.uniform(0.45, 0.6) * h, rng.uniform(0.4, 0.6) * w
    r = rng.uniform(0.25, 0.36) * size
    d = _disk(h, w, cy, cx, r)
    inside = d <= 1.0
    shade = np.clip(1.15 - 0.45 * d, 0.5, 1.1)[..., None]
    if kind == "apple":
        base = (
            np.array([rng.uniform(0.65, 0.85), rng.uniform(0.05, 0.2), rng.uniform(0.05, 0.15)])
            if rng.random() < 0.75
            else np.array([rng.uniform(0.45, 0.6), rng.uniform(0.7, 0.85), rng.uniform(0.1, 0.25)])
        )
        skin = base + rng.normal(0, 0.02, (h, w, 3))
    else:
        base = np.array([rng.uniform(0.92, 1.0), rng.uniform(0.5, 0.62), rng.uniform(0.0, 0.08)])
        dimples = rng.normal(0, 0.06, (h // 2 + 1, w // 2 + 1))
        dimples = np.kron(dimples, np.ones((2, 2)))[:h, :w, None]
        skin = base + dimples * np.array([0.6, 0.6, 0.2])
    fruit = np.clip(skin * shade, 0, 1)
    img[inside] = fruit[inside]
    hy, hx = cy - 0.4 * r, cx - 0.35 * r
    highlight = np.exp(-_disk(h, w, hy, hx, 0.18 * r))[..., None] * (
        0.35 if kind == "apple" else 0.12
    )
    img = np.where(inside[..., None], np.clip(img + highlight, 0, 1), img)
    if kind == "apple":
        stem = (np.abs(np.mgrid[0:h, 0:w][1] - cx) < max(1, size / 64)) & (
            np.abs(np.mgrid[0:h, 0:w][0] - (cy - r)) < 0.18 * r
        )
        img[stem] = [0.3, 0.18, 0.05]
        leaf = _disk(h, w, cy - r - 0.05 * r, cx + 0.22 * r, 0.13 * r) <= 1.0
        img[leaf] = [0.2, 0.55, 0.15]
    else:
        navel = _disk(h, w, cy - 0.1 * r, cx + 0.05 * r, 0.07 * r) <= 1.0
        img[navel] = img[navel] * 0.7
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def make_fruit_sample(root, n_train=120, n_test=24, size=128, seed=0):
    """Write the apple-vs-orange sample into ``root`` (once); returns ``root``."""
    marker = os.path.join(root, ".complete")
    if os.path.exists(marker):
        return root
    for split, n in (("train", n_train), ("test", n_test)):
        for domain, kind in (("A", "apple"), ("B", "orange")):
            folder = os.path.join(root, f"{split}{domain}")
            os.makedirs(folder, exist_ok=True)
            rng = np.random.default_rng([seed, split == "test", kind == "orange"])
            for i in range(n):
                Image.fromarray(_fruit(rng, size, kind)).save(
                    os.path.join(folder, f"{kind}_{i:04d}.png")
                )
    with open(marker, "w") as f:
        f.write(f"n_train={n_train} n_test={n_test} size={size} seed={seed}\n")
    return root
