"""The lesion harness's report: assembly, the markdown table, and the files it writes.

:func:`assemble_report` turns the per-run records of
:func:`keras_gans.experiments.lesion_harness.run_experiment` into one JSON-ready dictionary (settings,
data, runs, per-arm summaries with 95% t-intervals, paired differences); :func:`write_outputs`
writes ``report.json``, ``report.md``, ``roc.png``, ``confusion_<arm>.png`` and
``predictions.npz``, each file atomically (a crash mid-write leaves the previous file whole).
"""

import math
import os

import numpy as np

from keras_gans import evaluation, plotting, reports

THRESHOLD_METRICS = ("accuracy", "balanced_accuracy", "sensitivity", "specificity")
SCALAR_METRICS = (*THRESHOLD_METRICS, "roc_auc")
AT_VAL = "_at_val_threshold"  # suffix: at the threshold chosen on the validation split
REPORTED_METRICS = (*SCALAR_METRICS, *(m + AT_VAL for m in THRESHOLD_METRICS))
FLAG_KEYS = {"": "prediction_check", AT_VAL: "prediction_check_at_val_threshold"}


def slug(arm):
    """An arm's name in file names: ``real+synthetic`` -> ``real_synthetic``."""
    return arm.replace("+", "_")


def score_run(y_test, p_test, y_val, p_val, positive, n_classes):
    """One run's test scores at 0.5 and at the validation split's Youden threshold.

    Returns ``{"metrics", "confusion_matrix", "prediction_check", "val_threshold",
    "confusion_matrix_at_val_threshold", "prediction_check_at_val_threshold"}``; ``metrics`` holds
    :data:`REPORTED_METRICS` (``None`` at the validation threshold when validation has one class).
    """
    half = evaluation.classification_metrics(y_test, p_test, positive, n_classes)
    threshold = evaluation.youden_threshold(y_val, p_val[:, positive], positive)
    at_val = None
    if threshold is not None:
        at_val = evaluation.classification_metrics(y_test, p_test, positive, n_classes, threshold)
    metrics = {m: half[m] for m in SCALAR_METRICS}
    metrics.update({m + AT_VAL: at_val[m] if at_val else None for m in THRESHOLD_METRICS})
    return {
        "metrics": metrics,
        "confusion_matrix": half["confusion_matrix"],
        "prediction_check": half["prediction_check"],
        "val_threshold": threshold,
        "confusion_matrix_at_val_threshold": at_val["confusion_matrix"] if at_val else None,
        "prediction_check_at_val_threshold": at_val["prediction_check"] if at_val else None,
    }


def degenerate_seeds(records, suffix=""):
    """Seeds of ``records`` whose predictions at 0.5 (``suffix=""``) or at the validation
    threshold (``AT_VAL``) are (nearly) one class (:func:`keras_gans.evaluation.prediction_check`)."""
    key = FLAG_KEYS[suffix]
    return [r["seed"] for r in records if (r.get(key) or {}).get("degenerate")]


def _flag_metrics(stats, counts):
    """Add ``degenerate_runs`` to each threshold metric's summary from ``{suffix: count}``."""
    for m, stat in stats.items():
        for suffix, n in counts.items():
            if m in {t + suffix for t in THRESHOLD_METRICS}:
                stat["degenerate_runs"] = n


def assemble_report(settings, data, runs, positive, test_idx):
    """The JSON-ready report: settings, data, per-run records, summaries and paired differences.

    Threshold metrics of arms with degenerate runs carry ``degenerate_runs`` (how many) in the
    summary and the differences, and ``degenerate`` lists the seeds per arm and threshold.
    """
    names = tuple(data.class_names)
    scalar = {arm: [r["metrics"] for r in records] for arm, records in runs.items()}
    defined = [
        m for m in REPORTED_METRICS if all(r.get(m) is not None for v in scalar.values() for r in v)
    ]
    scalar = {arm: [{m: r[m] for m in defined} for r in v] for arm, v in scalar.items()}
    test_labels = np.asarray(data.labels)[test_idx]
    flags = {arm: {s: degenerate_seeds(rs, s) for s in FLAG_KEYS} for arm, rs in runs.items()}
    summary = evaluation.summarize(scalar)
    for arm, stats in summary.items():
        _flag_metrics(stats, {s: len(seeds) for s, seeds in flags[arm].items()})
    differences = evaluation.compare(scalar, "real") if len(scalar) > 1 else {}
    for key, stats in differences.items():
        pair = (key.split(" - ")[0], "real")
        either = {s: len(set(flags[pair[0]][s]) | set(flags["real"][s])) for s in FLAG_KEYS}
        _flag_metrics(stats, either)
    return {
        "settings": settings,
        "data": {
            "root": getattr(data, "root", ""),
            "class_names": list(names),
            "positive": positive,
            "counts": {c: int(np.sum(np.asarray(data.labels) == i)) for i, c in enumerate(names)},
            "test_counts": {c: int(np.sum(test_labels == i)) for i, c in enumerate(names)},
            "test_ids": [str(data.ids[i]) for i in test_idx],
        },
        "runs": {
            arm: [{k: v for k, v in r.items() if k != "roc"} for r in rs]
            for arm, rs in runs.items()
        },
        "summary": summary,
        "differences": differences,
        "degenerate": {
            arm: {"threshold_0.5": f[""], "val_threshold": f[AT_VAL]} for arm, f in flags.items()
        },
        "degenerate_rule": f"more than {evaluation.DEGENERATE_SHARE:.0%} of the balanced test "
        "set predicted as one class",
    }


def _fmt(stat, signed=False):
    if stat is None:
        return "n/a"
    mean = f"{stat['mean']:+.3f}" if signed else f"{stat['mean']:.3f}"
    if stat.get("low") is None:
        return mean
    return f"{mean} [{stat['low']:.3f}, {stat['high']:.3f}]"


def _label(metric):
    if metric.endswith(AT_VAL):
        return f"{metric[: -len(AT_VAL)]} (val. threshold)"
    return f"{metric} (0.5)" if metric in THRESHOLD_METRICS else metric


def _cell(stat, n_runs, signed=False):
    """A summary cell; one built on degenerate runs says so first, so it is never read plainly."""
    text = _fmt(stat, signed)
    flagged = (stat or {}).get("degenerate_runs")
    return f"DEGENERATE in {flagged}/{n_runs} runs: {text}" if flagged else text


def _one_class(check, names):
    if not check:
        return "n/a"
    return (
        f"DEGENERATE ({check['share']:.0%} {names[check['class']]})"
        if check["degenerate"]
        else "no"
    )


def warning_lines(report):
    """One line per degenerate run (printed on the terminal and at the top of report.md)."""
    names, lines = report["data"]["class_names"], []
    for arm, records in report["runs"].items():
        for r in records:
            for suffix, key in FLAG_KEYS.items():
                check = r.get(key)
                if check and check["degenerate"]:
                    where = (
                        "0.5"
                        if not suffix
                        else f"the validation threshold {r['val_threshold']:.3f}"
                    )
                    lines.append(
                        f"{arm}, seed {r['seed']}: at {where}, {check['share']:.0%} of the balanced "
                        f"test set is predicted {names[check['class']]}: a degenerate classifier, its "
                        "threshold metrics measure the class mix, not the images"
                    )
    return lines


def markdown_report(report):
    """``report.md``: settings, the summary table with paired differences, and every run."""
    s, d, summary = report["settings"], report["data"], report["summary"]
    arms = list(summary)
    counts = ", ".join(f"{c} {n}" for c, n in d["counts"].items())
    test = ", ".join(f"{c} {n}" for c, n in d["test_counts"].items())
    lines = [
        "# Does adding GAN images help the lesion classifier?",
        "",
        f"- data: `{d['root']}` ({counts}); positive class: {d['positive']}",
        f"- test set (held out, the same for every run): {test}",
        f"- {s['img_size']} px, seeds {', '.join(map(str, s['seeds']))}, "
        f"up to {s['epochs']} epochs, "
        f"batch {s['batch_size']}, class weight `{s['class_weight']}`, augmentation "
        f"{'on' if s['augment'] else 'off'}, BatchNorm statistics `{s.get('bn_stats', 'moving')}`, "
        f"synthetic: `{s['synthetic']}`",
        "- a GAN must not have seen the test images: train it on the output of "
        "`python -m keras_gans.experiments.lesion_harness split` (same size, test size and split "
        "seed)",
        "",
    ]
    warnings = warning_lines(report)
    if warnings:
        lines += [
            f"**Warning: {len(warnings)} degenerate result(s)** ({report['degenerate_rule']}):",
            "",
            *[f"- {w}" for w in warnings],
            "",
        ]
    diff_key = next(iter(report["differences"]), None)
    header = "| metric | " + " | ".join(arms) + (f" | {diff_key} | p |" if diff_key else " |")
    lines += [header, "|" + "---|" * (header.count("|") - 1)]
    n = len(s["seeds"])
    for m in REPORTED_METRICS:
        if not any(m in summary[a] for a in arms):
            continue
        row = [_label(m)] + [_cell(summary[a].get(m), n) for a in arms]
        if diff_key:
            diff = report["differences"][diff_key].get(m)
            p = diff.get("p_value") if diff else None
            row += [_cell(diff, n, signed=True), "n/a" if p is None else f"{p:.3g}"]
        lines.append("| " + " | ".join(row) + " |")
    n_test = sum(d["test_counts"].values())
    lines += [
        "",
        "(0.5): the arg-max of the softmax; (val. threshold): p(positive) >= the threshold with "
        "the highest Youden's J on that run's validation split. ROC AUC needs no threshold.",
        "",
        f"Mean over {n} seed(s) with a 95% t-interval over seeds; the difference column is the "
        "paired per-seed difference (same seed = same validation split, initial weights and "
        "augmentation) with a paired t-test p-value; an interval that contains 0 is no evidence "
        f"of a difference. The intervals cover training variation on this one test set of {n_test} "
        "images, not the test set's own sampling error (for an accuracy near 0.5 up to "
        f"+-{1.96 * math.sqrt(0.25 / max(n_test, 1)):.3f}).",
        "",
        "| arm | seed | accuracy | balanced acc. | sensitivity | specificity | one class? | "
        "ROC AUC | val. threshold | balanced acc. / sens. / spec. there | one class there? | "
        "epochs (best) | training images |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    names = d["class_names"]
    for arm, records in report["runs"].items():
        for r in records:
            m = {k: ("n/a" if v is None else f"{v:.3f}") for k, v in r["metrics"].items()}
            at = [m.get(f"{k}{AT_VAL}", "n/a") for k in THRESHOLD_METRICS[1:]]
            t = r.get("val_threshold")
            train = ", ".join(f"{c} {v}" for c, v in r["train_counts"].items())
            lines.append(
                f"| {arm} | {r['seed']} | {m['accuracy']} | {m['balanced_accuracy']} | "
                f"{m['sensitivity']} | {m['specificity']} | "
                f"{_one_class(r.get('prediction_check'), names)} | {m['roc_auc']} | "
                f"{'n/a' if t is None else f'{t:.3f}'} | {' / '.join(at)} | "
                f"{_one_class(r.get('prediction_check_at_val_threshold'), names)} | "
                f"{r['epochs_run']} ({r['best_epoch']}) | {train} |"
            )
    return "\n".join(lines) + "\n"


def write_outputs(report, runs, output_dir):
    """Write ``report.json``, ``report.md``, ``roc.png`` (mean per arm), ``confusion_*.png``."""
    os.makedirs(output_dir, exist_ok=True)
    reports.write_json(os.path.join(output_dir, "report.json"), report)
    reports.write_markdown(os.path.join(output_dir, "report.md"), markdown_report(report))
    grid = np.linspace(0.0, 1.0, 201)
    curves = {}
    for arm, records in runs.items():
        tprs = [np.interp(grid, *r["roc"]) for r in records]
        aucs = [r["metrics"]["roc_auc"] for r in records if r["metrics"]["roc_auc"] is not None]
        label = f"{arm}, mean of {len(records)} seed(s)"
        curves[label] = (
            grid,
            np.mean(tprs, axis=0),
            float(np.mean(aucs)) if aucs else float("nan"),
        )
    plotting.plot_roc(curves, os.path.join(output_dir, "roc.png"), title="ROC on the test set")
    names = report["data"]["class_names"]
    for arm, records in runs.items():
        total = np.sum([r["confusion_matrix"] for r in records], axis=0)
        plotting.plot_confusion(
            total,
            names,
            os.path.join(output_dir, f"confusion_{slug(arm)}.png"),
            title=f"{arm}: summed over {len(records)} seed(s)",
        )


def write_predictions(path, **arrays):
    """``np.savez`` to ``path`` atomically (see :func:`keras_gans.reports.write_npz`)."""
    return reports.write_npz(path, **arrays)
