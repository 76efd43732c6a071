"""Save and load keras_gans models, including ``.h5`` files written by tf.keras 2 (Keras-GAN code).

* :func:`save_model` writes ``<stem>.h5`` and/or ``<stem>.keras`` atomically: each file is written
  under a temporary name in the same folder and then renamed, so an interrupted save never leaves a
  half-written model under the final name. The files hold no optimizer state (checkpoints do)
  unless ``include_optimizer=True``.
* :func:`load_model` reads ``.keras`` archives and ``.h5`` files saved by Keras 3 (i.e. keras_gans)
  through Keras itself. ``.h5`` files saved by tf.keras 2 are read through a translation of their
  ``model_config``, because Keras 3 cannot load them as they are:

  - keras-contrib's ``InstanceNormalization`` (registered without a package prefix, so Keras 3
    reports "Unknown layer") becomes ``keras_gans.layers.InstanceNormalization`` with
    ``epsilon_mode="std"`` and the saved ``axis`` (``None`` in Keras-GAN: scalar gamma/beta);
  - tensorflow-addons' ``Addons>InstanceNormalization`` becomes the same layer with the saved
    ``axis`` (-1) and ``epsilon_mode="variance"``; its ``groups`` (saved as the channel count once
    built, not -1) is dropped;
  - ``LeakyReLU(alpha=...)`` becomes ``negative_slope``; a mixed-precision ``Policy`` dtype becomes
    its name; tf.keras 2 stores a single input/output as a one-element list, which Keras 3 would
    turn into a list-input model that warns on every call, so it is unwrapped.

  Weights are then loaded by layer name, and ``compile=True`` rebuilds the optimizer (not its
  state), loss and metrics from the ``training_config`` (Keras 3's own loader fails on these).
* Every problem with the file itself raises :class:`ModelFileError` naming the file and what was
  expected, instead of an h5py / zipfile / Keras traceback; an error of this module's own code is
  not disguised as one.
"""

import contextlib
import json
import logging
import os
import tempfile
import warnings
import zipfile

import h5py
import keras

from keras_gans import layers as _layers  # noqa: F401  (registers the custom layers)
from keras_gans.errors import KerasGansError

__all__ = ["ModelFileError", "save_model", "load_model"]

_IN_CLASS = "keras_gans>InstanceNormalization"
_EXPECTED = "a full Keras model saved as .h5 (HDF5) or .keras (zip archive)"
# Errors that, raised by h5py, zipfile or Keras while they read or deserialise a file, mean the file
# is bad (Keras raises TypeError for an unknown class, KeyError for a missing config entry).
_FILE_ERRORS = (OSError, EOFError, ValueError, KeyError, TypeError, zipfile.BadZipFile)


class ModelFileError(KerasGansError, ValueError):
    """A model file is missing, truncated, or not a Keras model."""


@contextlib.contextmanager
def _reading(path):
    """Turn a library's error on ``path`` into :class:`ModelFileError`. It wraps only the calls into
    h5py, zipfile and Keras, so a fault in this module's own code surfaces as itself."""
    try:
        yield
    except ModelFileError:
        raise
    except _FILE_ERRORS as e:
        raise ModelFileError(
            f"{path}: cannot be loaded as {_EXPECTED} ({type(e).__name__}: {e})"
        ) from e


@contextlib.contextmanager
def _quiet_legacy_h5_warning():
    """Keras logs "HDF5 ... is considered legacy" on every ``.h5`` save; `.h5` is asked for here
    (Keras-GAN users reuse such files), so the warning is noise."""
    absl_logger = logging.getLogger("absl")
    level = absl_logger.level
    absl_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        absl_logger.setLevel(level)


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save_model(model, path_stem, formats=("h5", "keras"), include_optimizer=False):
    """Save ``model`` as ``path_stem.h5`` and ``path_stem.keras``, atomically; returns the paths.

    The files are for reuse (inference, ``--init-from``, fine-tuning): unless ``include_optimizer``,
    they hold neither the optimizer's state nor the compile settings; checkpoints keep the optimizer.
    """
    if not include_optimizer and getattr(model, "optimizer", None) is not None:
        # The same layers and weights without the compiled state: the .keras format has no
        # include_optimizer switch, and an uncompiled model saves no optimizer in either format.
        model = keras.Model(model.input, model.output, name=model.name)
    path_stem = os.fspath(path_stem)
    folder = os.path.dirname(os.path.abspath(path_stem))
    os.makedirs(folder, exist_ok=True)
    paths = []
    for fmt in formats:
        fmt = fmt.lstrip(".")
        if fmt not in ("h5", "keras"):
            raise ValueError(f"formats must be 'h5' and/or 'keras', got {fmt!r}")
        final = f"{path_stem}.{fmt}"
        # Same folder as the target so that os.replace is an atomic rename (same filesystem);
        # the suffix must stay ".h5" / ".keras" because Keras picks the format from it.
        fd, tmp = tempfile.mkstemp(
            prefix=f".{os.path.basename(path_stem)}.", suffix=f".tmp.{fmt}", dir=folder
        )
        os.close(fd)
        try:
            with _quiet_legacy_h5_warning():
                model.save(tmp)
            # Flush to disk before the rename, or a crash could leave an empty file under `final`.
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a model file is for sharing
            os.replace(tmp, final)
        except BaseException:
            with contextlib.suppress(OSError):
                os.remove(tmp)
            raise
        paths.append(final)
    return paths


def load_model(path, compile=False, custom_objects=None):
    """Load a ``.h5`` / ``.keras`` model saved by keras_gans (Keras 3) or by tf.keras 2.

    Raises:
        ModelFileError: the file is missing, empty, truncated, weights-only, not a Keras model,
            or has an unknown extension.
    """
    path = os.fspath(path)
    name = os.path.basename(path)
    if name.endswith(".weights.h5"):
        raise ModelFileError(
            f"{path}: is a weights-only file; expected {_EXPECTED}. "
            "Build the model and call model.load_weights() instead."
        )
    ext = os.path.splitext(name)[1].lower()
    if ext not in (".h5", ".hdf5", ".keras"):
        raise ModelFileError(f"{path}: unknown extension {ext or '(none)'!r}; expected {_EXPECTED}")
    if not os.path.isfile(path):
        raise ModelFileError(f"{path}: no such model file; expected {_EXPECTED}")
    if os.path.getsize(path) == 0:
        raise ModelFileError(
            f"{path}: the file is empty (0 bytes, an interrupted save?); expected {_EXPECTED}"
        )
    if ext == ".keras":
        _check_keras_archive(path)
        with _reading(path):
            return keras.saving.load_model(path, compile=compile, custom_objects=custom_objects)
    return _load_h5(path, compile, custom_objects)


def _check_keras_archive(path):
    # A truncated zip loses its central directory (stored at the end), so is_zipfile fails.
    if not zipfile.is_zipfile(path):
        hint = " (it is an HDF5 file: rename it to .h5)" if h5py.is_hdf5(path) else ""
        raise ModelFileError(f"{path}: not a .keras zip archive, or truncated{hint}")
    with _reading(path), zipfile.ZipFile(path) as zf:
        if "config.json" not in zf.namelist():
            raise ModelFileError(f"{path}: zip archive without config.json, not a .keras model")
        # CRC-check every member now, so damage inside the weights is reported as such.
        bad = zf.testzip()
    if bad is not None:
        raise ModelFileError(f"{path}: damaged .keras archive (bad CRC in {bad})")


def _load_h5(path, compile, custom_objects):
    if not h5py.is_hdf5(path):
        hint = " (it is a zip archive: rename it to .keras)" if zipfile.is_zipfile(path) else ""
        raise ModelFileError(f"{path}: not an HDF5 file, or truncated{hint}; expected {_EXPECTED}")
    try:
        f = h5py.File(path, "r")
    except OSError as e:  # h5py checks the stored end-of-file address, so this catches truncation
        raise ModelFileError(f"{path}: truncated or damaged HDF5 file ({e})") from e
    with _reading(path), f:
        raw = f.attrs.get("model_config")
        if raw is None:
            # tf.keras 2 weights files carry "layer_names"; Keras 3 ones "layers" and "vars".
            weights_only = "layer_names" in f.attrs or {"layers", "vars"} <= set(f.keys())
            kind = "a weights-only file" if weights_only else "not a Keras model"
            raise ModelFileError(
                f"{path}: HDF5 file without a 'model_config' attribute ({kind}); "
                f"expected {_EXPECTED}"
            )
        version = _text(f.attrs.get("keras_version", "")) or "1"
        training = f.attrs.get("training_config")
        weights = f["model_weights"] if "model_weights" in f else f
        file_layers = [
            n for n in _h5_list(weights, "layer_names") if _h5_list(weights[n], "weight_names")
        ]
    if version.startswith("3."):
        # Written by Keras 3 (keras_gans): Keras reads its own files, compile included.
        with _reading(path):
            return keras.saving.load_model(path, compile=compile, custom_objects=custom_objects)

    with _reading(path):
        config = json.loads(_text(raw))
    # A legacy class the caller maps in custom_objects is theirs to build: leave it untranslated.
    config = _translate(config, keep=set(custom_objects or ()))
    model = _model_from_config(config, custom_objects, path)
    model_layers = [layer.name for layer in model.layers if layer.weights]
    if sorted(model_layers) != sorted(file_layers):
        raise ModelFileError(
            f"{path}: the saved weights are for layers {file_layers}, "
            f"but its model_config builds {model_layers}"
        )
    # By name rather than Keras's default (by order), checked above to cover every layer: were the
    # rebuilt layer order ever to differ from the saved one, same-shape weights (every contrib
    # norm's gamma/beta has shape (1,)) would otherwise load into the wrong layers silently.
    with _reading(path):
        model.load_weights(path, by_name=True)
    if compile and training is not None:
        with _reading(path):  # the file's training_config, read by Keras
            _compile(model, json.loads(_text(training)), path)
    return model


def _text(value):
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _h5_list(group, name):
    """An HDF5 string-list attribute; Keras splits long ones into ``name0``, ``name1``, ..."""
    if name in group.attrs:
        return [_text(v) for v in group.attrs[name]]
    values, i = [], 0
    while f"{name}{i}" in group.attrs:
        values += [_text(v) for v in group.attrs[f"{name}{i}"]]
        i += 1
    return values


def _translate(obj, keep=frozenset()):
    """Rewrite a tf.keras 2 config tree into one Keras 3 and keras_gans can deserialise.

    Class names in ``keep`` are left as they are.
    """
    if isinstance(obj, list):
        return [_translate(v, keep) for v in obj]
    if not isinstance(obj, dict):
        return obj
    obj = {k: _translate(v, keep) for k, v in obj.items()}
    cls, cfg = obj.get("class_name"), obj.get("config")
    if not isinstance(cfg, dict) or cls in keep:
        return obj
    cfg = dict(cfg)
    if cls == "InstanceNormalization":  # keras-contrib: epsilon added to the std
        cls = _IN_CLASS
        cfg["epsilon_mode"] = "std"
    elif cls == "Addons>InstanceNormalization":  # tensorflow-addons: per channel, eps on variance
        cls = _IN_CLASS
        cfg.pop("groups", None)
        cfg["axis"] = cfg.get("axis", -1)
        cfg["epsilon_mode"] = "variance"
    elif cls == "LeakyReLU" and "alpha" in cfg:
        cfg["negative_slope"] = cfg.pop("alpha")
    elif cls == "Policy" and set(cfg) == {"name"}:
        return cfg["name"]  # a mixed-precision dtype: Keras 3 takes the policy name
    elif cls in ("Functional", "Model") and "input_layers" in cfg:
        for key in ("input_layers", "output_layers"):
            if len(cfg.get(key) or []) == 1 and isinstance(cfg[key][0], list):
                cfg[key] = cfg[key][0]
    return {**obj, "class_name": cls, "config": cfg}


def _model_from_config(config, custom_objects, path):
    if not isinstance(config, dict) or not isinstance(config.get("config"), dict):
        raise ModelFileError(f"{path}: model_config is not a Keras model configuration")
    name = config.get("class_name")
    builtin = {"Functional": keras.Model, "Model": keras.Model, "Sequential": keras.Sequential}
    cls = builtin.get(name) or (custom_objects or {}).get(name)
    cls = cls or keras.saving.get_registered_object(name)
    if cls is None:
        raise ModelFileError(f"{path}: unknown model class {name!r}; pass it in custom_objects")
    with _reading(path), keras.saving.custom_object_scope(custom_objects or {}):
        return cls.from_config(config["config"], custom_objects=custom_objects)


def _compile(model, training, path):
    """Compile from a tf.keras 2 ``training_config``; the optimizer's state is not restored."""
    opt = dict(training["optimizer_config"])
    # tf.keras 2.11+ saves e.g. "Custom>Adam" with Keras-2-only keys (jit_compile,
    # is_legacy_optimizer, decay, lr); keep the arguments the Keras 3 class still takes.
    opt_cls = keras.optimizers.get(opt["class_name"].split(">")[-1].lower()).__class__
    cfg = dict(opt["config"])
    if "lr" in cfg:
        cfg.setdefault("learning_rate", cfg.pop("lr"))
    allowed = set(opt_cls().get_config())
    optimizer = opt_cls.from_config({k: v for k, v in cfg.items() if k in allowed})

    def metric(m):
        # tf.keras 2 wraps string metrics ("accuracy") as MeanMetricWrapper(fn="binary_accuracy").
        if isinstance(m, dict) and m.get("class_name") == "MeanMetricWrapper":
            return m["config"]["fn"]
        return keras.metrics.deserialize(m) if isinstance(m, dict) else m

    metrics = training.get("metrics") or None
    if metrics is not None:
        metrics = [
            [metric(m) for m in out] if isinstance(out, list) else metric(out) for out in metrics
        ]
        if len(metrics) == 1 and isinstance(metrics[0], list):
            metrics = metrics[0]  # one output: a flat list, as compile() expects
    loss = training.get("loss")  # a name, a serialised loss, or a list / dict of them per output
    loss = (
        keras.losses.deserialize(loss) if isinstance(loss, dict) and "class_name" in loss else loss
    )
    model.compile(
        optimizer=optimizer, loss=loss, metrics=metrics, loss_weights=training.get("loss_weights")
    )
    warnings.warn(
        f"{os.path.basename(path)}: compiled from its tf.keras 2 training_config; "
        "the optimizer state was not restored.",
        stacklevel=3,
    )
