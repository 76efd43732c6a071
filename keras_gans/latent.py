"""Latent walks of any saved generator: interpolation grids, class interpolation, vector arithmetic.

* ``walk``: rows of images along spherical interpolations (slerp) between two latent points, random
  or chosen by seed. White, "Sampling Generative Networks", arXiv:1609.04468 (2016), Sec. 2.1: with
  z ~ N(0, I) in many dimensions nearly all the mass lies near the sphere of radius sqrt(d), and the
  midpoint of a straight line between two draws falls inside it (norm ~ sqrt(d / 2)), where G has
  seen no z; slerp keeps the norm profile of its endpoints (``--linear`` for the straight line).
* ``walk --classes A,B`` (class-conditional G): each row keeps one z and moves the class from A to
  B by interpolating the two classes' rows of G's label embedding (the class interpolation of
  BigGAN, Brock et al. 2019, Fig. 8), on a model that takes the embedding in place of the label.
  A G whose label reaches the network other than through one ``Embedding`` layer cannot be
  interpolated from outside; then each row shows the same z across every class instead, and the
  command says so.
* ``arithmetic``: vector arithmetic on averaged latent groups (Radford et al., "Unsupervised
  Representation Learning with Deep Convolutional GANs", ICLR 2016, Sec. 6.3.2 and Fig. 7):
  ``--groups "3,8,12 - 5,9,21 + 40,41,42"`` averages the z of each group of seeds, forms
  mean(A) - mean(B) + mean(C) and draws it with ``--variants`` neighbours (uniform noise of
  +/- ``--noise`` = 0.25 added, as in the paper). One row per group (its mean first, then its members)
  and a last row with the result.

The z of seed ``s`` is ``numpy.random.default_rng(s).standard_normal(latent_dim)``: the image of
``generate --seed s --n 1`` of an unconditional G. Generators are read by :func:`keras_gans.
load_model` (``.h5`` / ``.keras``, old tf.keras 2 / Keras-GAN files too); one with a second (class)
input is conditional. The figure goes to ``--output`` and the latents beside it (``.npz``).
"""

import os
import re

import keras
import numpy as np
import tensorflow as tf

from keras_gans import cli, plotting, reports, sampling
from keras_gans.errors import ConfigError
from keras_gans.saving import load_model

STEPS = 8
ROWS = 4
VARIANTS = 4
NOISE = 0.25  # Radford et al. Fig. 7: uniform noise of scale +/- 0.25 added to the result


# --- interpolation --------------------------------------------------------------------------------
def lerp(t, a, b):
    """``(1 - t) a + t b`` for every ``t``: ``(len(t), d)``."""
    t = np.asarray(t, np.float64)[:, None]
    return ((1 - t) * a + t * b).astype(np.float32)


def slerp(t, a, b):
    """Spherical interpolation (Shoemake 1985; White 2016): ``sin((1-t) W) / sin W a + sin(t W) /
    sin W b``, W the angle between ``a`` and ``b``; straight when they are (anti)parallel."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    cos = np.dot(a, b) / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12)
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    if np.sin(omega) < 1e-6:
        return lerp(t, a, b)
    t = np.asarray(t, np.float64)[:, None]
    out = (np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)
    return out.astype(np.float32)


def latent_points(seeds, latent_dim):
    """The z of each seed (see the module docstring), ``(len(seeds), latent_dim)``."""
    return np.stack(
        [np.random.default_rng(int(s)).standard_normal(latent_dim) for s in seeds]
    ).astype(np.float32)


# --- the generator --------------------------------------------------------------------------------
class Generator:
    """A saved (or in-memory) generator with what a walk needs: z size, class count, a forward."""

    def __init__(self, model, name=None, n_classes=None):
        is_file = isinstance(model, (str, os.PathLike))
        self.name = name or (os.fspath(model) if is_file else model.name)
        self.model = load_model(model) if is_file else model
        sampling.check_generator(self.model, self.name)
        self.latent_dim = int(self.model.inputs[0].shape[-1])
        self.conditional = sampling.is_conditional(self.model)
        self.embedding = self._label_embedding() if self.conditional else None
        if n_classes is None and self.embedding is not None:
            n_classes = int(self.embedding.input_dim)
        self.n_classes = n_classes

    def _label_embedding(self):
        """The ``Embedding`` layer the class input feeds, if one does (called once)."""
        for layer in self.model.layers:
            if isinstance(layer, keras.layers.Embedding):
                try:
                    if layer.input is self.model.inputs[1]:
                        return layer
                except (AttributeError, ValueError):  # called more than once
                    continue
        return None

    def check_label(self, label):
        if not self.conditional:
            raise ConfigError(f"{self.name} is unconditional: it takes no class")
        if self.n_classes is None:
            raise ConfigError(f"{self.name}: its class count is unknown; give --n-classes")
        if not 0 <= label < self.n_classes:
            raise ConfigError(f"class {label} is not one of {self.name}'s 0..{self.n_classes - 1}")
        return int(label)

    def __call__(self, z, labels=None):
        """Images of ``z`` (and one class per row of ``z`` for a conditional G), in [-1, 1]."""
        if self.conditional != (labels is not None):
            raise ConfigError(f"{self.name}: {'a' if self.conditional else 'no'} class expected")
        inputs = tf.constant(np.asarray(z, np.float32))
        if labels is not None:
            shape = (len(z),) + tuple(self.model.inputs[1].shape[1:])
            labels = np.broadcast_to(
                np.asarray(labels, np.int32).reshape(-1, *[1] * (len(shape) - 1)), shape
            )
            inputs = [inputs, tf.constant(labels)]
        return np.asarray(sampling.sample_function(self.model)(inputs))

    def embedded(self, z, embeddings):
        """Images of ``z`` with G's label embedding replaced by ``embeddings`` (one per row), or
        ``None`` when the label reaches G otherwise (then no class interpolation from outside)."""
        if self.embedding is None:
            return None
        try:
            sub = keras.Model([self.model.inputs[0], self.embedding.output], self.model.output)
        except ValueError:  # the label is used beyond the embedding: a disconnected graph
            return None
        shape = (len(z),) + tuple(self.embedding.output.shape[1:])
        e = np.asarray(embeddings, np.float32).reshape(shape)
        return np.asarray(
            sub([tf.constant(np.asarray(z, np.float32)), tf.constant(e)], training=False)
        )


# --- the figures ----------------------------------------------------------------------------------
def walk(gen, rows=ROWS, steps=STEPS, seed=0, points=None, label=None, spherical=True):
    """Interpolation rows: between random pairs (``rows`` of them, keyed by ``seed``) or along
    consecutive ``points`` (seeds). A conditional G draws class ``label`` (default: row i, class i
    mod n_classes). Returns ``{"images", "z", "labels", "rows", "cols", "row_labels"}``."""
    if steps < 2:
        raise ConfigError(f"--steps must be >= 2, got {steps}")
    if points is not None:
        if len(points) < 2:
            raise ConfigError("--points needs at least two seeds")
        ends = latent_points(points, gen.latent_dim)
        pairs = list(zip(ends[:-1], ends[1:]))
        names = [f"{a}->{b}" for a, b in zip(points[:-1], points[1:])]
    else:
        draws = np.random.default_rng([seed, 1]).standard_normal((rows, 2, gen.latent_dim))
        pairs, names = [(d[0], d[1]) for d in draws], [f"pair {i}" for i in range(rows)]
    t = np.linspace(0.0, 1.0, steps)
    z = np.concatenate([(slerp if spherical else lerp)(t, a, b) for a, b in pairs])
    labels = None
    if label is not None and not gen.conditional:
        gen.check_label(label)  # refuses: an unconditional G takes no class
    if gen.conditional:
        if label is None and gen.n_classes is None:
            raise ConfigError(f"{gen.name}: give --label (its class count is unknown)")
        per_row = [
            gen.check_label(label if label is not None else i % gen.n_classes)
            for i in range(len(pairs))
        ]
        labels = np.repeat(per_row, steps)
        names = [f"{n}, class {c}" for n, c in zip(names, per_row)]
    grid = {"images": gen(z, labels), "z": z, "labels": labels, "rows": len(pairs), "cols": steps}
    return grid | {"row_labels": names}


def class_walk(gen, classes, rows=ROWS, steps=STEPS, seed=0):
    """Each row one z, its class moving from ``classes[0]`` to ``classes[1]`` along G's label
    embedding; without a usable embedding, the same z across every class (``"interpolated"``
    False). Returns the :func:`walk` dict plus ``"interpolated"`` and ``"titles"``."""
    if not gen.conditional:
        raise ConfigError(f"{gen.name} is unconditional: --classes needs a class-conditional G")
    a, b = (gen.check_label(c) for c in classes)
    z_rows = np.random.default_rng([seed, 2]).standard_normal((rows, gen.latent_dim))
    t = np.linspace(0.0, 1.0, steps)
    z = np.repeat(z_rows, steps, axis=0).astype(np.float32)
    images = None
    if gen.embedding is not None:
        table = gen.embedding.get_weights()[0]  # (n_classes, dim): one row per class
        images = gen.embedded(z, np.tile(lerp(t, table[a], table[b]), (rows, 1)))
    interpolated = images is not None
    if interpolated:
        titles = [
            f"class {a}" if i == 0 else f"class {b}" if i == steps - 1 else "" for i in range(steps)
        ]
        labels = np.tile(t, rows)  # the position between the two classes
    else:  # the same z across every class
        steps = gen.n_classes
        z = np.repeat(z_rows, steps, axis=0).astype(np.float32)
        labels = np.tile(np.arange(steps), rows)
        images, titles = gen(z, labels), [f"class {c}" for c in range(steps)]
    names = [f"z {i}" for i in range(rows)]
    grid = {"images": images, "z": z, "labels": labels, "rows": rows, "cols": steps}
    return grid | {"row_labels": names, "titles": titles, "interpolated": interpolated}


_GROUP = re.compile(r"\d+(\s*,\s*\d+)*")


def parse_groups(text):
    """``"1,2,3 - 4,5,6 + 7,8,9"`` -> ``[(1, [1, 2, 3]), (-1, [4, 5, 6]), (1, [7, 8, 9])]``."""
    parts = re.split(r"\s*([+-])\s*", text.strip())  # group, sign, group, sign, group, ...
    groups, signs = parts[::2], [1] + [-1 if p == "-" else 1 for p in parts[1::2]]
    if not all(_GROUP.fullmatch(g) for g in groups):
        raise ConfigError(
            f"--groups {text!r}: expected seed groups such as '1,2,3 - 4,5,6 + 7,8,9'"
        )
    return [(sign, [int(s) for s in g.split(",")]) for sign, g in zip(signs, groups)]


def arithmetic(gen, groups, label=None, variants=VARIANTS, noise=NOISE, seed=0):
    """Radford et al.'s vector arithmetic: ``groups`` as :func:`parse_groups` returns; the result
    is the signed sum of the groups' mean z. Returns ``{"rows": [images per row], "z", ...}``."""
    if isinstance(groups, str):
        groups = parse_groups(groups)
    if gen.conditional:
        label = gen.check_label(0 if label is None else label)
    elif label is not None:
        gen.check_label(label)
    draw = lambda z: gen(z, None if label is None else np.full(len(z), label))
    rows, names, means = [], [], []
    for sign, seeds in groups:
        z = latent_points(seeds, gen.latent_dim)
        mean = z.mean(axis=0, keepdims=True)
        means.append(sign * mean)
        rows.append(draw(np.concatenate([mean, z])))
        names.append(f"{'+' if sign > 0 else '-'} {','.join(map(str, seeds))}")
    result = np.sum(means, axis=0)
    jitter = np.random.default_rng([seed, 3]).uniform(-noise, noise, (variants, gen.latent_dim))
    z_result = np.concatenate([result, result + jitter.astype(np.float32)])
    rows.append(draw(z_result))
    names.append("= result")
    titles = ["mean / result"]
    return {"rows": rows, "z": z_result, "row_labels": names, "titles": titles, "label": label}


# --- command line ---------------------------------------------------------------------------------
def _common(parser, name):
    add = parser.add_argument
    add("--model", required=True, help="generator file (.h5 / .keras, Keras-GAN's too)")
    add("--output", default=os.path.join("output", "latent", f"{name}.png"), help="figure (PNG)")
    add("--label", type=cli.non_negative_int, default=None, help="class, for a conditional G")
    add("--n-classes", type=cli.positive_int, default=None, help="class count, if G hides it")
    add("--seed", type=cli.seed, default=0, help="seed of the random latent points")


def _walk_args(parser):
    _common(parser, "walk")
    add = parser.add_argument
    add("--rows", type=cli.positive_int, default=ROWS, help="random pairs (rows)")
    add("--steps", type=cli.positive_int, default=STEPS, help="images per row, ends included")
    add("--points", type=cli.seeds, default=None, help="seeds to walk through, e.g. 3,7,12")
    add("--classes", type=cli.seeds, default=None, help="conditional G: interpolate class A to B")
    add("--linear", action="store_true", help="straight lines instead of slerp")


def _save(result, path, extra=None):
    reports.write_npz(os.path.splitext(path)[0] + ".npz", z=result["z"], **(extra or {}))
    print(f"wrote {path}")
    return path


def _walk(args):
    gen = Generator(args.model, args.model, args.n_classes)
    if args.classes is not None:
        if len(args.classes) != 2 or args.label is not None or args.points is not None:
            raise ConfigError("--classes takes two classes A,B (and no --label or --points)")
        result = class_walk(gen, args.classes, args.rows, args.steps, args.seed)
        if not result["interpolated"]:
            print(f"{args.model}: the class reaches G other than through one Embedding layer, so "
                  "it cannot be interpolated from outside; showing the same z across every class")  # fmt: skip
    else:
        result = walk(
            gen, args.rows, args.steps, args.seed, args.points, args.label, not args.linear
        )
    plotting.save_image_grid(result["images"], args.output, result["rows"], result["cols"],
                             titles=result.get("titles"), row_labels=result["row_labels"])  # fmt: skip
    labels = {} if result["labels"] is None else {"labels": result["labels"]}
    result["path"] = _save(result, args.output, labels)
    return result


def _arithmetic_args(parser):
    _common(parser, "arithmetic")
    add = parser.add_argument
    add("--groups", required=True, help="seed groups, e.g. '1,2,3 - 4,5,6 + 7,8,9'")
    add(
        "--variants",
        type=cli.non_negative_int,
        default=VARIANTS,
        help="noisy neighbours of the result",
    )
    add("--noise", type=cli.non_negative_float, default=NOISE, help="their uniform noise scale")


def _arithmetic(args):
    groups = parse_groups(args.groups)
    gen = Generator(args.model, args.model, args.n_classes)
    result = arithmetic(gen, groups, args.label, args.variants, args.noise, args.seed)
    plotting.save_image_rows(result["rows"], args.output, result["titles"], result["row_labels"])
    result["path"] = _save(result, args.output)
    return result


COMMANDS = [
    cli.Command("walk", "Interpolation grid of a saved generator.", _walk_args, _walk),
    cli.Command(
        "arithmetic", "Vector arithmetic on averaged latent groups.", _arithmetic_args, _arithmetic
    ),
]


def main(argv=None):
    return cli.main("python -m keras_gans.latent", __doc__.partition("\n")[0], COMMANDS, argv)


if __name__ == "__main__":
    main()
