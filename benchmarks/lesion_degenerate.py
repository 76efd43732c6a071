"""``python -m benchmarks.lesion_degenerate``: why the lesion CNN calls (nearly) every image one class.

Issue 22: on a few hundred ISIC images the report's CNN (BatchNorm momentum 0.99, batch 64) answered
"melanoma" for nearly every test image while its ROC AUC stayed above 0.5. This script trains the
CNN as the harness does (same splits, class weights, augmentation, early stopping) on a small real
ISIC folder and on the built-in drawn sample, then scores the kept model on the test set five ways:

``moving``
    inference mode with the moving statistics the model ends with (what the harness reported);
``training_mode``
    ``model(x, training=True)`` on the whole test set as one batch: BatchNorm normalises with the
    test batch's own statistics (dropout is on as well);
``recomputed_train``
    inference mode after :func:`keras_gans.classifier.recompute_bn_statistics` on the training
    images (what ``bn_stats="recompute"`` does after training);
``recomputed_test``
    the same on the test images themselves (a diagnostic only: it looks at the test set);
``remedy``
    a second model trained from the same seed with ``bn_stats="recompute"``, so validation, early
    stopping and the learning-rate schedule all see recomputed statistics.

For each it records the share of test images predicted melanoma, the flag of
:func:`keras_gans.evaluation.prediction_check`, sensitivity, specificity, balanced accuracy,
ROC AUC and the spread of p(melanoma). For every BatchNorm layer it compares the moving statistics
with the exact statistics of the layer's inputs on the training images. Prints a table and writes
``benchmarks/results/lesion_degenerate-<timestamp>.json`` and ``lesion_degenerate-latest.json``.

    python -m benchmarks.lesion_degenerate --data-dir ../shared/data/isic_dev --img-size 64
"""

import argparse
import os
import time

import numpy as np

from benchmarks import common

MODES = ("moving", "training_mode", "recomputed_train", "recomputed_test", "remedy")


def _scores(evaluation, y, probs, pos):
    m = evaluation.classification_metrics(y, probs, pos, probs.shape[1])
    check = evaluation.prediction_check(y, probs.argmax(1), probs.shape[1])
    keys = ("sensitivity", "specificity", "balanced_accuracy", "roc_auc")
    return {
        "positive_share": float(np.mean(probs.argmax(1) == pos)),
        "degenerate": check["degenerate"],
        **{k: m[k] for k in keys},
        "p_positive_std": float(probs[:, pos].std()),
    }


def _bn_gap(model, images, batch_size):
    """Moving vs exact statistics of every BatchNorm layer's inputs on ``images``."""
    from keras_gans.classifier import recompute_bn_statistics

    norms = [layer for layer in model.layers if "bn" in layer.name]
    moving = {n.name: (n.moving_mean.numpy(), n.moving_variance.numpy()) for n in norms}
    saved = model.get_weights()
    recompute_bn_statistics(model, images, batch_size)
    out = {}
    for n in norms:
        mean, var = n.moving_mean.numpy(), n.moving_variance.numpy()
        m_mean, m_var = moving[n.name]
        out[n.name] = {
            "mean_gap_in_std": float(np.mean(np.abs(m_mean - mean) / np.sqrt(var + 1e-3))),
            "median_var_ratio": float(np.median((m_var + 1e-3) / (var + 1e-3))),
        }
    model.set_weights(saved)
    return out


def run_one(data, seed, args):
    import keras

    from data_loaders.images import to_uint8
    from keras_gans import classifier as C
    from keras_gans import evaluation
    from keras_gans.experiments.lesion_harness import leakage_groups, split_indices

    images = to_uint8(data.images, (0.0, 1.0))
    labels = np.asarray(data.labels, np.int64)
    split = split_indices(labels, leakage_groups(images, data.lesion_ids), seed=seed)
    tr, va, te = split["train"], split["val"], split["test"]
    pos, k = 0, len(data.class_names)
    weights = C.class_weights(labels[tr], k)
    common_args = dict(
        train=(images[tr], labels[tr]),
        val=(images[va], labels[va]),
        n_classes=k,
        class_weight=weights,
        seed=seed,
        epochs=args.epochs,
        batch_size=args.batch_size,
    )
    start = time.perf_counter()
    model, history = C.train_classifier(**common_args, bn_stats="moving")
    x_test = images[te].astype(np.float32) / 255.0
    probs = {
        "moving": C.predict_proba(model, images[te], args.batch_size),
        "training_mode": np.asarray(model(x_test, training=True)),
    }
    gap = _bn_gap(model, images[tr], args.batch_size)
    saved = model.get_weights()
    C.recompute_bn_statistics(model, images[tr], args.batch_size)
    probs["recomputed_train"] = C.predict_proba(model, images[te], args.batch_size)
    model.set_weights(saved)
    C.recompute_bn_statistics(model, images[te], args.batch_size)
    probs["recomputed_test"] = C.predict_proba(model, images[te], args.batch_size)
    keras.backend.clear_session()
    remedy, remedy_history = C.train_classifier(**common_args, bn_stats="recompute")
    probs["remedy"] = C.predict_proba(remedy, images[te], args.batch_size)
    keras.backend.clear_session()
    return {
        "seed": seed,
        "train": int(len(tr)),
        "val": int(len(va)),
        "test": int(len(te)),
        "steps_per_epoch": int(np.ceil(len(tr) / args.batch_size)),
        "moving": {
            "epochs_run": len(history["loss"]),
            "best_epoch": int(np.argmin(history["val_loss"])) + 1,
        },
        "remedy": {
            "epochs_run": len(remedy_history["loss"]),
            "best_epoch": int(np.argmin(remedy_history["val_loss"])) + 1,
        },
        "bn_moving_vs_exact_on_train": gap,
        "modes": {m: _scores(evaluation, labels[te], probs[m], pos) for m in MODES},
        "seconds": time.perf_counter() - start,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    default_dir = os.path.join(here, "..", "shared", "data", "isic_dev")
    parser.add_argument("--data-dir", default=default_dir, help="real ISIC folder ('' to skip)")
    parser.add_argument("--no-sample", action="store_true", help="skip the built-in drawn sample")
    parser.add_argument("--img-size", type=int, default=64)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--results-dir", default=None)
    parser.add_argument("--name", default="lesion_degenerate")
    args = parser.parse_args(argv)

    from data_loaders.isic import load_isic

    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    sets = {}
    if args.data_dir and os.path.isdir(args.data_dir):
        sets[os.path.basename(os.path.normpath(args.data_dir))] = args.data_dir
    if not args.no_sample:
        sets["drawn_sample"] = None
    results = {
        "machine": common.machine_info(),
        "timestamp": common.timestamp(),
        "settings": {k: v for k, v in vars(args).items() if k not in ("results_dir",)},
        "datasets": {},
    }
    rows = []
    for name, folder in sets.items():
        data = load_isic(folder, args.img_size, ("melanoma", "nevus"), (0.0, 1.0))
        runs = [run_one(data, seed, args) for seed in seeds]
        results["datasets"][name] = {"counts": np.bincount(data.labels).tolist(), "runs": runs}
        for r in runs:
            for mode in MODES:
                s = r["modes"][mode]
                best = r["remedy" if mode == "remedy" else "moving"]["best_epoch"]
                rows.append({"data": name, "seed": r["seed"], "mode": mode, "best": best, **s})
    columns = [
        ("data", "data", "{}"),
        ("seed", "seed", "{}"),
        ("mode", "mode", "{}"),
        ("best ep.", "best", "{}"),
        ("mel. share", "positive_share", "{:.3f}"),
        ("flag", "degenerate", "{}"),
        ("sens.", "sensitivity", "{:.3f}"),
        ("spec.", "specificity", "{:.3f}"),
        ("bal. acc.", "balanced_accuracy", "{:.3f}"),
        ("AUC", "roc_auc", "{:.3f}"),
        ("std p", "p_positive_std", "{:.3f}"),
    ]
    print(common.format_table(rows, columns))
    for name, d in results["datasets"].items():
        for r in d["runs"]:
            gaps = ", ".join(
                f"{layer} {g['mean_gap_in_std']:.2f} sd / var x{g['median_var_ratio']:.2f}"
                for layer, g in r["bn_moving_vs_exact_on_train"].items()
            )
            print(
                f"{name} seed {r['seed']} ({r['steps_per_epoch']} steps/epoch): moving - exact: {gaps}"
            )
    paths = common.write_results(args.name, results, args.results_dir)
    print(f"results: {paths[0]}")
    return results


if __name__ == "__main__":
    main()
