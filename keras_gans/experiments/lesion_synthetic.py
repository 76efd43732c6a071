"""Where the lesion harness's ``real+synthetic`` images come from: folders or saved generators.

:class:`SyntheticSource` reads a ``--synthetic`` spec and samples uint8 images per class at the
classifier's size; :func:`parse_counts` reads ``--n-synthetic``. Both raise
:class:`~keras_gans.errors.ConfigError` with a one-line message for a spec that cannot work.
"""

import logging
import os

import numpy as np
import tensorflow as tf

from data_loaders.images import SkipReport, list_images, load_images, to_uint8
from keras_gans import sampling
from keras_gans.errors import ConfigError
from keras_gans.saving import load_model

log = logging.getLogger(__name__)

MODEL_EXTENSIONS = (".h5", ".hdf5", ".keras")
SYNTHETIC_HELP = (
    "a folder with melanoma/ and nevus/, 'melanoma=G_mel.h5,nevus=G_nev.h5' (DCGANs) or one "
    "conditional BigGAN G.h5"
)


class SyntheticSource:
    """Where the ``real+synthetic`` arm's extra images come from.

    ``spec`` is one of: a folder with one sub-folder per class (``melanoma/``, ``nevus/``);
    per-class unconditional generators ``"melanoma=G_mel.h5,nevus=G_nev.h5"`` (DCGAN, sampled with
    :func:`keras_gans.sampling.generate_images`); or one conditional generator file with two inputs,
    z and class (BigGAN, sampled with :func:`keras_gans.biggan.generate_images`; its class order
    comes from ``classes.json`` beside it, see :func:`keras_gans.biggan.model_classes`). Images are
    resized to the classifier's size and returned as uint8. A spec that cannot work raises
    :class:`~keras_gans.errors.ConfigError` (or ``ModelFileError`` for a bad model file).
    """

    def __init__(self, spec, class_names, truncation=None, strict=False, report=None):
        self.spec, self.class_names, self.truncation = spec, tuple(class_names), truncation
        self.strict, self.report = strict, report if report is not None else SkipReport()
        self.models = {}
        if "=" in spec:
            self.kind, self.paths = "generators", {}
            for item in spec.split(","):
                name, _, path = (part.strip() for part in item.partition("="))
                if not name or not path:
                    raise ConfigError(f"--synthetic {spec!r}: {item!r} is not CLASS=GENERATOR.h5")
                if name not in self.class_names:
                    raise ConfigError(f"--synthetic names {name!r}; classes are {class_names}")
                self.paths[name] = path
            self.models = {c: load_model(path) for c, path in self.paths.items()}
            for c, model in self.models.items():
                sampling.check_generator(model, self.paths[c])
                if len(model.inputs) != 1:
                    raise ConfigError(
                        f"--synthetic {c}={self.paths[c]} is a conditional generator: give it "
                        "alone, --synthetic G.h5"
                    )
        elif os.path.isdir(spec):
            self.kind = "folder"
            folders = {c: os.path.join(spec, c) for c in self.class_names}
            self.paths = {c: list_images(f) for c, f in folders.items() if os.path.isdir(f)}
            if not self.paths:
                raise ConfigError(
                    f"--synthetic {spec}: no class sub-folder ({', '.join(self.class_names)})"
                )
        elif not spec.lower().endswith(MODEL_EXTENSIONS):
            raise ConfigError(
                f"--synthetic {spec}: no such folder or model file; give {SYNTHETIC_HELP}"
            )
        else:
            from keras_gans.biggan import model_classes

            self.kind, generator = "conditional", load_model(spec)
            sampling.check_generator(generator, spec)
            if len(generator.inputs) != 2:
                raise ConfigError(
                    f"--synthetic {spec} is not a conditional generator (z and class inputs); give "
                    "unconditional ones per class: melanoma=G1.h5,nevus=G2.h5"
                )
            names = model_classes(generator, spec)
            self.models = {c: (generator, names.index(c)) for c in self.class_names if c in names}

    def classes(self):
        """The classes this source can supply."""
        have = self.paths if self.kind == "folder" else self.models
        return tuple(c for c in self.class_names if c in have)

    def sample(self, n_per_class, img_size, seed=0):
        """``(uint8 images, labels)`` with up to ``n_per_class[c]`` images of each class ``c``."""
        images, labels = [], []
        rng = np.random.default_rng([seed, 7])
        for c, name in enumerate(self.class_names):
            n = int(n_per_class.get(name, 0))
            if n <= 0 or name not in self.classes():
                continue
            if self.kind == "folder":
                paths = self.paths[name]
                if n > len(paths):
                    log.warning("%s/%s: %d images, not %d", self.spec, name, len(paths), n)
                chosen = sorted(rng.choice(len(paths), min(n, len(paths)), replace=False))
                x, _ = load_images(
                    [paths[i] for i in chosen], img_size, (0.0, 1.0), self.strict, self.report
                )
                x = to_uint8(x, (0.0, 1.0))
            elif self.kind == "generators":
                x = sampling.generate_images(self.models[name], n, seed=seed * 1000 + c)
                x = _resize_u8(x, img_size)
            else:
                from keras_gans import biggan

                generator, index = self.models[name]
                x = biggan.generate_images(generator, n, index, self.truncation, seed=seed)
                x = _resize_u8(x, img_size)
            images.append(x)
            labels.append(np.full(len(x), c, np.int64))
        if not images:
            return np.zeros((0, img_size, img_size, 3), np.uint8), np.zeros(0, np.int64)
        return np.concatenate(images), np.concatenate(labels)


def _resize_u8(images, img_size):
    """Generator outputs in [-1, 1] -> uint8 at ``img_size`` (bilinear, antialiased)."""
    x = np.asarray(images, np.float32)
    if x.shape[-1] == 1:
        x = np.repeat(x, 3, axis=-1)
    if x.shape[1:3] != (img_size, img_size):
        x = tf.image.resize(x, (img_size, img_size), "bilinear", antialias=True).numpy()
    return to_uint8(x, (-1.0, 1.0))


def parse_counts(spec, class_names):
    """``--n-synthetic``: ``None`` / ``"auto"`` (match each class's real training count), ``N``,
    ``"melanoma=500,nevus=0"`` or ``{class: n}`` -> ``{class: n}`` or ``None``."""
    if spec is None or (isinstance(spec, str) and spec.strip().lower() in ("", "auto")):
        return None
    if isinstance(spec, dict):
        items = list(spec.items())
    elif "=" not in str(spec):
        items = [(c, spec) for c in class_names]
    else:
        items = [tuple(item.partition("=")[::2]) for item in str(spec).split(",")]
    counts = {c: 0 for c in class_names}
    for name, value in items:
        name = str(name).strip()
        if name not in counts:
            raise ConfigError(f"--n-synthetic names {name!r}; classes are {tuple(class_names)}")
        try:
            counts[name] = int(str(value).strip())
        except ValueError:
            counts[name] = -1
        if counts[name] < 0:
            raise ConfigError(
                f"--n-synthetic {spec!r}: {str(value).strip()!r} is not a count >= 0; give N, "
                "'melanoma=500,nevus=0' or auto"
            )
    return counts
