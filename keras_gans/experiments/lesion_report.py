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

SCALAR_METRICS = ("accuracy", "balanced_accuracy", "sensitivity", "specificity", "roc_auc")


def slug(arm):
    """An arm's name in file names: ``real+synthetic`` -> ``real_synthetic``."""
    return arm.replace("+", "_")


def assemble_report(settings, data, runs, positive, test_idx):
    """The JSON-ready report: settings, data, per-run records, summaries and paired differences."""
    names = tuple(data.class_names)
    scalar = {arm: [r["metrics"] for r in records] for arm, records in runs.items()}
    defined = [
        m for m in SCALAR_METRICS if all(r[m] is not None for v in scalar.values() for r in v)
    ]
    scalar = {arm: [{m: r[m] for m in defined} for r in v] for arm, v in scalar.items()}
    test_labels = np.asarray(data.labels)[test_idx]
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
        "summary": evaluation.summarize(scalar),
        "differences": evaluation.compare(scalar, "real") if len(scalar) > 1 else {},
    }


def _fmt(stat, signed=False):
    if stat is None:
        return "n/a"
    mean = f"{stat['mean']:+.3f}" if signed else f"{stat['mean']:.3f}"
    if stat.get("low") is None:
        return mean
    return f"{mean} [{stat['low']:.3f}, {stat['high']:.3f}]"


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
        f"{'on' if s['augment'] else 'off'}, synthetic: `{s['synthetic']}`",
        "- a GAN must not have seen the test images: train it on the output of "
        "`python -m keras_gans.experiments.lesion_harness split` (same size, test size and split "
        "seed)",
        "",
    ]
    diff_key = next(iter(report["differences"]), None)
    header = "| metric | " + " | ".join(arms) + (f" | {diff_key} | p |" if diff_key else " |")
    lines += [header, "|" + "---|" * (header.count("|") - 1)]
    for m in SCALAR_METRICS:
        row = [m] + [_fmt(summary[a].get(m)) for a in arms]
        if diff_key:
            diff = report["differences"][diff_key].get(m)
            p = diff.get("p_value") if diff else None
            row += [_fmt(diff, signed=True), "n/a" if p is None else f"{p:.3g}"]
        lines.append("| " + " | ".join(row) + " |")
    n, n_test = len(s["seeds"]), sum(d["test_counts"].values())
    lines += [
        "",
        f"Mean over {n} seed(s) with a 95% t-interval over seeds; the difference column is the "
        "paired per-seed difference (same seed = same validation split, initial weights and "
        "augmentation) with a paired t-test p-value; an interval that contains 0 is no evidence "
        f"of a difference. The intervals cover training variation on this one test set of {n_test} "
        "images, not the test set's own sampling error (for an accuracy near 0.5 up to "
        f"+-{1.96 * math.sqrt(0.25 / max(n_test, 1)):.3f}).",
        "",
        "| arm | seed | accuracy | balanced acc. | sensitivity | specificity | ROC AUC | "
        "epochs (best) | training images |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for arm, records in report["runs"].items():
        for r in records:
            m = {k: ("n/a" if v is None else f"{v:.3f}") for k, v in r["metrics"].items()}
            train = ", ".join(f"{c} {v}" for c, v in r["train_counts"].items())
            lines.append(
                f"| {arm} | {r['seed']} | {m['accuracy']} | {m['balanced_accuracy']} | "
                f"{m['sensitivity']} | {m['specificity']} | {m['roc_auc']} | "
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
