"""Images from a generator (a model or a saved ``.h5`` / ``.keras`` file), and the ``generate``
command the generator trainers share.

A generator takes ``z`` (unconditional) or ``[z, class]`` (class-conditional); z ~ N(0, 1) is drawn
from ``(seed, label)`` at once, so the images do not depend on the batch size. Batches are padded to
one shape, so the inference-mode forward is traced once.
"""

import os

import numpy as np
import tensorflow as tf

from data_loaders.images import save_image
from keras_gans import cli
from keras_gans.errors import ConfigError
from keras_gans.saving import load_model


def sample_function(generator):
    """``f(inputs)``: the generator's traced inference-mode forward, cached on the model."""
    fn = getattr(generator, "_keras_gans_sample_fn", None)
    if fn is None:
        fn = tf.function(lambda x: generator(x, training=False), reduce_retracing=True)
        generator._keras_gans_sample_fn = fn
    return fn


def is_conditional(generator):
    return len(generator.inputs) == 2


def check_generator(model, name="the model", conditional=None):
    """Refuse a model that is not a generator (z, and a class if ``conditional``, in; images out),
    such as a discriminator given by mistake; ``name`` (its file) is named in the error."""
    shapes = [tuple(t.shape) for t in model.inputs]
    out = tuple(model.outputs[0].shape)
    if len(shapes) > 2 or len(shapes[0]) != 2 or len(out) != 4 or len(model.outputs) != 1:
        raise ConfigError(
            f"{name} is not a generator: it maps {shapes} to {out}, not a latent vector (batch, z) "
            "to images (batch, h, w, c); a discriminator?"
        )
    if conditional is not None and is_conditional(model) != conditional:
        kind = "a class-conditional" if conditional else "an unconditional"
        raise ConfigError(f"{name} is not {kind} generator (its inputs are {shapes})")


def generate_images(generator, n, seed=0, label=None, z=None, batch_size=64):
    """``n`` images in [-1, 1]; ``label``: the class index of a conditional generator; ``z``: the
    latents to use instead of N(0, 1) draws keyed by ``(seed, label)``."""
    model = load_model(generator) if isinstance(generator, (str, os.PathLike)) else generator
    check_generator(model, os.fspath(generator) if model is not generator else model.name)
    latent_dim = model.inputs[0].shape[-1]
    if is_conditional(model) and label is None:
        raise ConfigError("this generator is class-conditional: give a class (--label)")
    if z is None:
        key = [seed] if label is None else [seed, int(label)]
        z = np.random.default_rng(key).standard_normal((n, latent_dim)).astype(np.float32)
    z = np.asarray(z, np.float32)
    forward = sample_function(model)
    out = []
    for start in range(0, len(z), batch_size):
        chunk = z[start : start + batch_size]
        padded = np.concatenate(
            [chunk, np.zeros((batch_size - len(chunk), latent_dim), np.float32)]
        )
        inputs = tf.constant(padded)
        if is_conditional(model):
            shape = (batch_size,) + tuple(model.inputs[1].shape[1:])
            inputs = [inputs, tf.constant(np.full(shape, label, np.int32))]
        out.append(np.asarray(forward(inputs))[: len(chunk)])
    return np.concatenate(out) if out else np.zeros((0, *model.output_shape[1:]), np.float32)


def write_images(images, output_dir, prefix=""):
    """Save ``images`` as ``output_dir/<prefix><index>.png``; returns the paths."""
    paths = [os.path.join(output_dir, f"{prefix}{i:05d}.png") for i in range(len(images))]
    for image, path in zip(images, paths):
        save_image(image, path)
    return paths


def generate_files(model_path, n, output_dir, seed=0, label=None, batch_size=64, prefix=""):
    """Write ``n`` images from a saved generator to ``output_dir``; returns the paths."""
    images = generate_images(model_path, n, seed, label, batch_size=batch_size)
    return write_images(images, output_dir, prefix)


def _generate_args(parser):
    add = parser.add_argument
    add("--model", required=True, help="generator file, e.g. OUTPUT/models/generator.h5")
    add("--n", type=cli.positive_int, default=100, help="number of images")
    add("--output", required=True, help="folder for the PNG files")
    add(
        "--label",
        type=cli.non_negative_int,
        default=None,
        help="class index, for a class-conditional generator",
    )
    add("--seed", type=cli.seed, default=0, help="noise seed")
    add("--batch-size", type=cli.positive_int, default=64, help="images per forward pass")
    add("--prefix", default="", help="file name prefix, e.g. melanoma_")


def _generate(args):
    paths = generate_files(
        args.model, args.n, args.output, args.seed, args.label, args.batch_size, args.prefix
    )
    print(f"wrote {len(paths)} image(s) to {args.output}")
    return paths


GENERATE = cli.Command(
    "generate", "Write N images from a saved generator as PNGs.", _generate_args, _generate
)
