"""The images an oversampling arm adds for its rare classes: GAN images or augmented copies.

* :func:`gan_images`: one class-conditional GAN (:class:`keras_gans.cgan.CGAN`) on the whole
  imbalanced set, or one unconditional GAN per rare class on that class alone (our reading of the
  report, which does not say which GAN it trained on which images);
* :func:`oversample_classic`: augmented duplicates of the rare images (:func:`augment`: random
  shift, rotation and zoom), the classic baseline a GAN has to beat.

Both fill each rare class up to a target count (:func:`shortfall`).
"""

import os

import numpy as np
from scipy import ndimage

from keras_gans.cgan import CGAN
from keras_gans.sampling import generate_images


def shortfall(y, n_classes, target_count):
    """``{class index: images missing to reach target_count}`` for the rare classes."""
    counts = np.bincount(y, minlength=n_classes)
    return {c: int(target_count - counts[c]) for c in range(n_classes) if counts[c] < target_count}


def augment(images, n, rng, max_shift=2.0, max_rotation=10.0, zoom=0.1, background=-1.0):
    """``n`` augmented copies drawn in turn from ``images``: random shift, rotation and zoom."""
    out = np.empty((n,) + images.shape[1:], np.float32)
    center = (np.array(images.shape[1:3]) - 1) / 2.0
    for i in range(n):
        src = images[i % len(images)]
        angle = np.deg2rad(rng.uniform(-max_rotation, max_rotation))
        scale = rng.uniform(1 - zoom, 1 + zoom)
        shift = rng.uniform(-max_shift, max_shift, 2)
        # affine_transform maps output coordinates to input ones: inverse rotation and zoom
        matrix = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]) / scale
        offset = center - matrix @ (center + shift)
        for c in range(images.shape[-1]):
            out[i, ..., c] = ndimage.affine_transform(
                src[..., c], matrix, offset, order=1, mode="constant", cval=background
            )
    return out


def oversample_classic(x, y, missing, seed):
    """The real set plus augmented duplicates of each rare class (the "classic" arm)."""
    rng = np.random.default_rng([seed, 1])
    xs, ys = [x], [y]
    for c, n in missing.items():
        xs.append(augment(x[y == c], n, rng))
        ys.append(np.full(n, c, y.dtype))
    return np.concatenate(xs), np.concatenate(ys)


def gan_images(
    x,
    y,
    missing,
    class_names,
    seed,
    output_dir,
    conditional=True,
    steps=1000,
    batch_size=32,
    sample_interval=200,
    **options,
):
    """``{class index: GAN images}`` filling ``missing``: one cGAN on ``(x, y)`` (its outputs in
    ``output_dir``), or one GAN per rare class on that class alone (``output_dir/digit_<name>``).

    Each GAN trains ``steps`` steps of ``batch_size`` (resuming from its checkpoints); ``options``
    go to :class:`keras_gans.cgan.CGAN` (model sizes, ``balanced_batches``, run options). The
    images come from noise keyed by ``(seed, c)`` (cGAN) or ``seed`` (a GAN per class).
    """
    loop = {"batch_size": batch_size, "sample_interval": sample_interval, "max_steps": steps}
    if not missing:
        return {}
    if conditional:
        gan = CGAN(x, y, len(class_names), class_names, output_dir=output_dir, seed=seed, **options)
        gan.run(**loop)
        return {c: generate_images(gan.generator, n, seed, label=c) for c, n in missing.items()}
    made = {}
    for c, n in missing.items():
        folder = os.path.join(output_dir, f"digit_{class_names[c]}")
        gan = CGAN(x[y == c], output_dir=folder, seed=seed, **options)
        gan.run(**loop)
        made[c] = generate_images(gan.generator, n, seed)
    return made
