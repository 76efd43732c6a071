"""Start a run from saved models: ``--init-from DIR_OR_FILES``, the same for every trainer.

``init_from`` names, for some or all of a trainer's declared models (``{name: model}`` from
:meth:`keras_gans.training.GANTrainer.build`), the ``.h5`` / ``.keras`` file that initialises it:

* a folder: ``<dir>/<name>.keras`` or ``<dir>/<name>.h5`` for every model (a run folder whose
  ``models/`` holds them works too); a model without a file there is refused by name;
* ``NAME=FILE[,NAME=FILE...]`` (or a ``{name: file}`` dict): only those models.

Files are read by :func:`keras_gans.saving.load_model`, so tf.keras 2 / Keras-GAN files with
keras-contrib's or tensorflow-addons' instance norms work. Layer names differ between such files and
our builders (``conv2d_3`` vs ``g_AB_d4_conv``), so weights are matched by position: the layers that
hold weights, in the model's order, must agree in class and weight shapes, or the file is refused
with the first difference named (another ``--img-size``, ``--gf``, ``--norm`` ...). Where only the
input size differs and every weight still fits (a fully convolutional U-Net or PatchGAN), the file
is accepted: the network is built at this run's size and the weights do not depend on it.

Only weights are copied (BatchNorm statistics included); optimizers and the step start fresh. Every
file is checked before any weight is assigned, so a refusal leaves the models as they were. A
checkpoint in the output folder still wins when the run resumes (:func:`settle`): the same command
continues a stopped run instead of starting it over.
"""

import logging
import os

from keras_gans import reports
from keras_gans.errors import KerasGansError
from keras_gans.saving import ModelFileError, load_model

log = logging.getLogger(__name__)

__all__ = ["InitFromError", "resolve", "initialize", "settle"]

RECORD = "init_from.json"  # in the output folder: the files a run started from
_EXTENSIONS = (".keras", ".h5")  # .keras first: Keras 3's own format needs no translation


class InitFromError(KerasGansError, ValueError):
    """``--init-from`` names a model or file that cannot initialise this trainer."""


def _listing(models):
    return ", ".join(sorted(models))


def _find(folder, name):
    for ext in _EXTENSIONS:
        path = os.path.join(folder, name + ext)
        if os.path.isfile(path):
            return path
    return None


def _from_folder(folder, models):
    # A run folder keeps its models in models/; use it when the folder itself has none of them.
    if not any(_find(folder, n) for n in models) and os.path.isdir(os.path.join(folder, "models")):
        folder = os.path.join(folder, "models")
    found = {n: _find(folder, n) for n in models}
    missing = sorted(n for n, p in found.items() if p is None)
    if missing:
        raise InitFromError(
            f"--init-from {folder}: no file for {', '.join(missing)} "
            f"(looked for NAME.keras / NAME.h5); pass the models you have as NAME=FILE, "
            f"e.g. --init-from {missing[0]}=FILE (models: {_listing(models)})"
        )
    return found


def resolve(init_from, models):
    """``{name: path}`` from an ``init_from`` spec (see the module docstring) for ``models``."""
    if isinstance(init_from, dict):
        pairs = list(init_from.items())
    else:
        spec = os.fspath(init_from)
        if os.path.isdir(spec):
            return _from_folder(spec, models)
        if os.path.exists(spec) or "=" not in spec:
            kind = "a file" if os.path.exists(spec) else "no such file or folder"
            raise InitFromError(
                f"--init-from {spec}: {kind}; give a folder with NAME.h5 / NAME.keras or "
                f"NAME=FILE[,NAME=FILE] (models: {_listing(models)})"
            )
        pairs = []
        for item in filter(None, (s.strip() for s in spec.split(","))):
            name, sep, path = item.partition("=")
            if not sep or not name.strip() or not path.strip():
                raise InitFromError(f"--init-from: expected NAME=FILE, got {item!r}")
            pairs.append((name.strip(), path.strip()))
    chosen = {}
    for name, path in pairs:
        if name not in models:
            raise InitFromError(
                f"--init-from: {name!r} is not a model of this trainer (models: {_listing(models)})"
            )
        if name in chosen:
            raise InitFromError(f"--init-from: {name} is given twice")
        chosen[name] = os.fspath(path)
    if not chosen:
        raise InitFromError("--init-from: no model given")
    return chosen


def _shape(shape):
    return "x".join("?" if d is None else str(d) for d in shape) or "scalar"


def _weighted(model):
    return [layer for layer in model.layers if layer.weights]


def _signature(layer):
    return type(layer).__name__, [tuple(w.shape) for w in layer.weights]


def _difference(ours, theirs):
    """The first layer (by position) whose class or weight shapes differ, in words; or None."""
    mine, file = _weighted(ours), _weighted(theirs)
    for i, (a, b) in enumerate(zip(mine, file)):
        (cls_a, shapes_a), (cls_b, shapes_b) = _signature(a), _signature(b)
        names = a.name if a.name == b.name else f"{a.name} here, {b.name} in the file"
        where = f"layer {i + 1} ({names})"
        if cls_a != cls_b:
            return f"{where}: {cls_a} here, {cls_b} in the file"
        if shapes_a != shapes_b:
            diff = [
                f"{w.name} {_shape(s)} here, {_shape(t)} in the file"
                for w, s, t in zip(a.weights, shapes_a, shapes_b)
                if s != t
            ]
            if len(shapes_a) != len(shapes_b):
                diff.append(f"{len(shapes_a)} weights here, {len(shapes_b)} in the file")
            return f"{where}: {'; '.join(diff)}"
    if len(mine) != len(file):
        return f"{len(mine)} layers with weights here, {len(file)} in the file"
    return None


def _inputs(model):
    return ", ".join(_shape(t.shape[1:]) for t in model.inputs)


def _check(name, model, source, path):
    difference = _difference(model, source)
    if difference is None:
        return
    inputs = (_inputs(model), _inputs(source))
    sizes = f"; inputs {inputs[0]} here, {inputs[1]} in the file" if inputs[0] != inputs[1] else ""
    raise InitFromError(
        f"--init-from {name}={path}: the file does not fit {name}: {difference}{sizes}. Use the "
        "options the file was trained with (--img-size, --gf, --df, --norm, --latent-dim ...)"
    )


def initialize(models, init_from):
    """Copy the weights of the files ``init_from`` names into ``models`` (``{name: model}``).

    Returns ``{name: absolute path}`` of the files used. Raises :class:`InitFromError` for a model
    without a file, an unknown name, or a file whose layers do not fit, and
    :class:`keras_gans.saving.ModelFileError` (reworded with the model's name) for a bad file.
    """
    paths = resolve(init_from, models)
    sources = {}
    for name, path in paths.items():
        try:
            sources[name] = load_model(path)
        except ModelFileError as err:
            raise ModelFileError(f"--init-from {name}: {err}") from err
        _check(name, models[name], sources[name], path)
    for name, source in sources.items():
        model = models[name]
        for mine, theirs in zip(_weighted(model), _weighted(source)):
            for variable, value in zip(mine.weights, theirs.weights):
                variable.assign(value)
        sizes = (_inputs(model), _inputs(source))
        note = f" (saved for input {sizes[1]}, used at {sizes[0]})" if sizes[0] != sizes[1] else ""
        log.info("initialised %s from %s%s", name, os.path.abspath(paths[name]), note)
    return {name: os.path.abspath(path) for name, path in paths.items()}


def settle(trainer, resumed):
    """Record which files a run started from; returns the ``summary.json`` entries.

    A fresh start writes ``init_from.json`` in the output folder (or removes a stale one). A resumed
    run continues from its checkpoint and keeps the record of the run's start; files given that the
    run did not start from (not the same command again) are not used: a warning and
    ``init_from_ignored`` say so.
    """
    path = os.path.join(trainer.output_dir, RECORD)
    given = dict(trainer.init_sources)
    if resumed:
        recorded = reports.read_json(path) if os.path.isfile(path) else {}
        if given and given != recorded:
            log.warning(
                "resumed from the checkpoint in %s; --init-from %s not used "
                "(--no-resume starts from them)",
                trainer.checkpoint_dir,
                ", ".join(given.values()),
            )
            return {"init_from": recorded, "init_from_ignored": given}
        return {"init_from": recorded}
    if trainer.is_chief:
        if given:
            reports.write_json(path, given)
        elif os.path.exists(path):
            os.remove(path)
    return {"init_from": given}
