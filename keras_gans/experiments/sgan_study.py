"""SGAN vs supervised-only: does the unlabelled data help the classifier? Over seeds, paired.

For every seed both arms share the labelled subset (``labels_per_class`` per class, drawn from the
seed) and the initial weights of D (both build it first after ``keras.utils.set_random_seed``):

* ``sgan``: :class:`keras_gans.sgan.SGAN` on the labelled subset plus every other training image
  unlabelled;
* ``supervised``: the same D (its K logits, the same Gaussian noise layers) trained on the labelled
  subset alone with the same optimizer, batch size and number of steps, the labelled images repeated
  and reshuffled as in the SGAN's labelled stream.

Both arms classify with the moving average of their D's weights (the SGAN's ``d_average``, the same
decay and warm-up after every supervised step), as Salimans et al.'s code tests its averaged D.
Each run also records ``last_step_accuracy``, that of the D of the last step, unaveraged.

Both are scored on the whole test split as test accuracy (argmax of the logits), with the share of
the most-predicted class (:func:`keras_gans.evaluation.prediction_check`), reported as means with
95% t-intervals over seeds and the paired per-seed difference ``sgan - supervised``
(:mod:`keras_gans.evaluation`). ``report.json``, ``runs.csv`` and ``report.md`` are written
atomically after every seed (:mod:`keras_gans.reports`). Salimans et al.'s number is kept apart
under ``quoted``: it was not measured here.

Seeds are independent, so they can run as separate processes (``--seeds 0``, ``--seeds 1``, ... each
with its own ``--output-dir``) and be combined by :func:`merge_reports` (``compare --merge DIR ...``)
into the report one process would have written. Each SGAN run is checkpointed every 1,000 steps
(``--checkpoint-every``, or ``runtime["checkpoint_every"]`` of :func:`run_study`), so a stopped
study, or one rerun with more steps, continues each run from its last checkpoint; the supervised
arm (minutes) is trained again.

CLI: ``python -m keras_gans.sgan compare`` (this module with ``-m`` runs the same command).
"""

import logging
import os
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from keras_gans import cli, evaluation, initialization, reports
from keras_gans import sgan as sgan_module
from keras_gans.averaging import WeightAverage, warmup_decay
from keras_gans.errors import ConfigError
from keras_gans.saving import ModelFileError

log = logging.getLogger(__name__)

SEEDS = (0, 1, 2)
ARMS = ("supervised", "sgan")
CHECKPOINT_EVERY = 1000  # SGAN steps; the API and the CLI alike, so a stopped study resumes
# Salimans et al. 2016, Table 1 (feature matching, permutation-invariant MNIST, all 60,000 images).
QUOTED = {
    "source": "Salimans et al. 2016, arXiv:1606.03498, Table 1 (quoted, not measured here)",
    "labels": 100,
    "test_errors_of_10000": "93 +/- 6.5",
    "test_accuracy": 0.9907,
    "data": "MNIST, 60,000 training images (100 labelled), 10,000 test images",
}


def labelled_stream(labelled, steps, batch_size, seed):
    """``steps * batch_size`` indices: the labelled subset repeated, each repeat reshuffled."""
    rng = np.random.default_rng([seed, 1])
    repeats = -(-steps * batch_size // len(labelled))
    order = np.concatenate([labelled[rng.permutation(len(labelled))] for _ in range(repeats)])
    return order[: steps * batch_size]


def _option(options, name):
    """``options[name]``, else the SGAN's default (``sgan.NAME``)."""
    return options.get(name, getattr(sgan_module, name.upper()))


def _d_shape(x, n_classes, options):
    """The arguments of ``sgan.build_discriminator`` for ``options`` (the SGAN's defaults)."""
    noise = (_option(options, "input_noise"), _option(options, "hidden_noise"))
    return (n_classes, _option(options, "d_units"), x.shape[1], x.shape[3], *noise)


def supervised_classifier(x, y, labelled, n_classes, seed, options, run_eagerly=False):
    """The SGAN's D, built first after ``set_random_seed(seed)`` as the SGAN builds it (the same
    kernels), its weight-norm scales and biases initialised on its own labelled images, compiled."""
    keras.utils.set_random_seed(seed)
    d = sgan_module.build_discriminator(*_d_shape(x, n_classes, options))
    sgan_module.data_init(d, x[labelled])
    d.compile(
        optimizer=keras.optimizers.Adam(
            _option(options, "learning_rate"),
            beta_1=_option(options, "beta_1"),
            epsilon=sgan_module.ADAM_EPSILON,
        ),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        run_eagerly=run_eagerly,
    )
    return d


class _Averaging(keras.callbacks.Callback):
    """After every training batch, one step of ``average`` with the SGAN's warm-up decay."""

    def __init__(self, average, decay):
        super().__init__()
        self.average, self.decay = average, decay

    def on_train_batch_end(self, batch, logs=None):
        self.average.update(warmup_decay(self.decay, batch))


def train_supervised(x, y, labelled, n_classes, seed, steps, batch_size, options, eager=False):
    """:func:`supervised_classifier` trained on ``x[labelled]`` alone for ``steps`` steps; returns
    the moving average of its weights (the SGAN's ``average_decay``, the arm's classifier) and the
    last step's D."""
    d = supervised_classifier(x, y, labelled, n_classes, seed, options, eager)
    average = sgan_module.average_model(d, _d_shape(x, n_classes, options))
    decay = _option(options, "average_decay")
    averaging = _Averaging(WeightAverage([average], [d], eager), decay)
    # Gathered a batch at a time: the stream holds steps * batch_size images (4.7 GB at 15,000).
    # Positions in the labelled subset: the stream's order depends only on its size and the seed.
    stream = labelled_stream(np.arange(len(labelled)), steps, batch_size, seed)
    images, labels = tf.constant(x[labelled]), tf.constant(y[labelled])
    batches = tf.data.Dataset.from_tensor_slices(stream).batch(batch_size)
    batches = batches.map(lambda i: (tf.gather(images, i), tf.gather(labels, i)))
    d.fit(batches, epochs=1, shuffle=False, verbose=0, callbacks=[averaging])
    return average, d


def _record(arm, seed, metrics, last, seconds, steps):
    check = metrics["prediction_check"]
    return {
        "arm": arm,
        "seed": seed,
        "accuracy": metrics["accuracy"],
        "last_step_accuracy": last["accuracy"],
        "test_errors": None,
        "top_class_share": check["share"],
        "degenerate": check["degenerate"],
        "steps": steps,
        "seconds": round(seconds, 1),
    }


def _reuse_finished(gan, steps, batch_size):
    """Load the models of the SGAN run already finished in ``gan.output_dir`` with this setting
    (``steps``, batch, config, labelled subset): a study stopped after a seed, or seeds run as
    separate processes, do not train it again. Its ``summary.json``; ``None`` where there is none."""
    path = os.path.join(gan.output_dir, "summary.json")
    if not os.path.isfile(path):
        return None
    done = reports.read_json(path)
    wanted = {"steps": steps, "batch_size": batch_size, "config": gan.config()}
    wanted["labelled_indices"] = gan.labelled.tolist()
    if any(done.get(k) != v for k, v in reports.jsonable(wanted).items()):
        return None
    files = {name: os.path.join(gan.output_dir, "models", f"{name}.h5") for name in gan.models}
    try:
        initialization.initialize(gan.models, files)
    except (initialization.InitFromError, ModelFileError):
        return None
    log.info("%s: finished with this setting; reusing its models", gan.output_dir)
    return done


def run_study(
    train,
    test,
    seeds=SEEDS,
    output_dir=os.path.join("output", "sgan_study"),
    epochs=None,
    max_steps=None,
    batch_size=sgan_module.BATCH_SIZE,
    source=None,
    options=None,
    runtime=None,
):
    """Both arms for every seed in ``seeds``; writes and returns the report (see the module).

    ``train`` / ``test``: ``(images, labels)``; ``options`` go to :class:`keras_gans.sgan.SGAN`
    (``labels_per_class``, ``g_loss``, sizes, ``learning_rate``), ``runtime`` to its run.
    """
    if not seeds:
        raise ConfigError("--seeds must name at least one seed")
    options, runtime = dict(options or {}), dict(runtime or {})
    runtime.setdefault("checkpoint_every", CHECKPOINT_EVERY)
    (x, y), (x_test, y_test) = train, test
    n_classes = int(np.max(y)) + 1
    rows = []
    for seed in seeds:
        gan = sgan_module.SGAN(
            x,
            y,
            test=test,
            seed=seed,
            output_dir=os.path.join(output_dir, "sgan", f"seed_{seed}"),
            **options,
            **runtime,
        )
        done = _reuse_finished(gan, gan.total_steps(epochs, batch_size, max_steps), batch_size)
        done = done or gan.run(epochs, batch_size, 0, max_steps)
        steps, seconds = done["steps"], done["seconds"]
        last = sgan_module.classifier_metrics(gan.discriminator, x_test, y_test)
        rows.append(_record("sgan", seed, gan.score(), last, seconds, steps))
        start = time.time()
        average, d = train_supervised(
            x, y, gan.labelled, n_classes, seed, steps, batch_size, options, gan.run_eagerly
        )
        metrics = sgan_module.classifier_metrics(average, x_test, y_test)
        last = sgan_module.classifier_metrics(d, x_test, y_test)
        rows.append(_record("supervised", seed, metrics, last, time.time() - start, steps))
        for row in rows[-2:]:
            row["test_errors"] = int(round((1 - row["accuracy"]) * len(y_test)))
        setting = {
            "labelled": len(gan.labelled),
            "unlabelled": len(gan.unlabelled),
            "test_images": len(y_test),
            "steps": steps,
            "source": source,
            "batch_size": batch_size,
            "epochs": epochs,
            "max_steps": max_steps,
            **options,
        }
        report = _report(rows, seeds, setting)
        write_outputs(report, output_dir)
    return report


def merge_reports(dirs, output_dir):
    """The ``report.json`` of each folder in ``dirs`` (runs of other seeds, same setting) as one."""
    rows, seeds, setting = [], [], None
    for folder in dirs:
        path = os.path.join(folder, "report.json")
        if not os.path.isfile(path):
            raise ConfigError(f"--merge {folder}: no report.json (run compare there first)")
        part = reports.read_json(path)
        other = {k: v for k, v in part["setting"].items() if k != "seeds"}
        setting = other if setting is None else setting
        changed = sorted(k for k in {*setting, *other} if setting.get(k) != other.get(k))
        if changed:
            raise ConfigError(f"--merge {folder}: its {changed[0]} differs from {dirs[0]}'s")
        repeated = set(seeds) & set(part["setting"]["seeds"])
        if repeated:
            raise ConfigError(f"--merge {folder}: seed {min(repeated)} appears twice")
        seeds += part["setting"]["seeds"]
        rows += part["runs"]
    report = _report(rows, seeds, setting)
    write_outputs(report, output_dir)
    return report


def _report(rows, seeds, setting):
    metrics = ("accuracy", "top_class_share")
    runs = {arm: [{k: r[k] for k in metrics} for r in rows if r["arm"] == arm] for arm in ARMS}
    done = {arm: records for arm, records in runs.items() if records}
    return {
        "setting": {"seeds": list(seeds), **setting},
        "runs": rows,
        "summary": evaluation.summarize(done),
        "paired": evaluation.compare(done, "supervised"),
        "quoted": QUOTED,
    }


def _interval(stat, scale=100):
    text = f"{scale * stat['mean']:.2f}"
    if stat["low"] is not None:
        text += f" [{scale * stat['low']:.2f}, {scale * stat['high']:.2f}]"
    return text


def format_summary(report):
    """A markdown table: test accuracy (%) per arm, mean [95% CI], then the paired difference."""
    s = report["setting"]
    lines = [
        "# SGAN vs supervised-only",
        "",
        f"{s['labelled']} labelled + {s['unlabelled']} unlabelled training images, "
        f"{s['test_images']} test images, {s['steps']} steps a run, seeds {s['seeds']} "
        f"({len(report['runs']) // len(ARMS)} done).",
        "",
        "| arm | test accuracy % of the averaged D (mean [95% CI]) | per seed | last step's D, "
        "per seed | degenerate runs |",
        "|---|---|---|---|---|",
    ]
    for arm, stats in report["summary"].items():
        acc = stats["accuracy"]
        seeds = ", ".join(f"{100 * v:.2f}" for v in acc["values"])
        runs = [r for r in report["runs"] if r["arm"] == arm]
        last = ", ".join(f"{100 * r['last_step_accuracy']:.2f}" for r in runs)
        degenerate = sum(r["degenerate"] for r in runs)
        lines.append(f"| {arm} | {_interval(acc)} | {seeds} | {last} | {degenerate} |")
    for name, diff in report["paired"].items():
        d = diff["accuracy"]
        p = "n/a" if d["p_value"] is None else f"{d['p_value']:.3g}"
        lines += ["", f"Paired difference {name}: {_interval(d)} points, p = {p}."]
    q = report["quoted"]
    lines += ["", f"Quoted: {q['source']}: {q['test_errors_of_10000']} test errors of 10,000 "]
    lines[-1] += f"with {q['labels']} labels ({q['data']})."
    return "\n".join(lines)


def write_outputs(report, output_dir):
    reports.write_json(os.path.join(output_dir, "report.json"), report)
    reports.write_csv(os.path.join(output_dir, "runs.csv"), report["runs"])
    reports.write_markdown(os.path.join(output_dir, "report.md"), format_summary(report))


# --- command line (``python -m keras_gans.sgan compare``) -----------------------------------------
def add_arguments(parser):
    sgan_module.model_args(parser)
    add = parser.add_argument
    add("--seeds", type=cli.seeds, default=",".join(map(str, SEEDS)), help="one run per seed")
    add("--epochs", type=cli.positive_int, default=None, help=f"default {sgan_module.EPOCHS}")
    add("--max-steps", type=cli.positive_int, default=None, help="SGAN steps per seed")
    add("--batch-size", type=cli.positive_int, default=sgan_module.BATCH_SIZE, help="each part")
    add("--output-dir", default=os.path.join("output", "sgan_study"), help="report folder")
    add(
        "--checkpoint-every",
        type=cli.non_negative_int,
        default=CHECKPOINT_EVERY,
        help="SGAN steps between checkpoints (0 = never); a rerun, or one with more steps, resumes",
    )
    add("--run-eagerly", action="store_true", default=None, help="no tf.function (debugging)")
    add("--merge", nargs="+", metavar="DIR", help="combine these runs' reports into --output-dir")


def run_from_args(args):
    if args.merge:
        report = merge_reports(args.merge, args.output_dir)
        print(format_summary(report))
        return report
    train, test = sgan_module.load_data(args.data_dir, args.img_size)
    report = run_study(
        train,
        test,
        seeds=tuple(args.seeds),
        output_dir=args.output_dir,
        epochs=args.epochs,
        max_steps=args.max_steps,
        batch_size=args.batch_size,
        source=args.data_dir or "scikit-learn digits",
        options=sgan_module.model_kwargs(args),
        runtime={"run_eagerly": args.run_eagerly, "checkpoint_every": args.checkpoint_every},
    )
    print(format_summary(report))
    return report


def main(argv=None):
    """``python -m keras_gans.experiments.sgan_study ARGS``, the same as ``sgan compare ARGS``."""
    return sgan_module.main(["compare", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    main()
