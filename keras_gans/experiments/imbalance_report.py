"""The MNIST imbalance study's report: assembly, the printed summary and the files it writes.

:func:`build_report` turns the per-seed runs of
:func:`keras_gans.experiments.mnist_imbalance.run_experiment` into one JSON-ready dictionary
(setting, per-arm means with 95% t-intervals, paired per-seed differences, every run and confusion
matrix); :func:`write_outputs` writes it as ``report.json``, ``runs.csv`` and ``report.md`` (each
atomically, :mod:`keras_gans.reports`) and ``metrics.png``. The report's own result ("23/30",
"26/30") is quoted under ``reported_in_paper`` only, never beside a measured value.
"""

import os

from keras_gans import evaluation, plotting, reports

# Quoted from the report, never measured here: kept apart in report.json["reported_in_paper"].
REPORTED_IN_PAPER = {
    "quoted": True,
    "note": "the report's own result, quoted; not measured by this run",
    "baseline_correct": "23/30",
    "gan_correct": "26/30",
    "test_images": "10 per digit",
}


def build_report(setting, runs, confusion):
    """Setting, per-arm means with intervals, paired differences against baseline (and classic),
    and, apart from all measured values, the report's quoted result."""
    scalar = {
        arm: [{k: v for k, v in r.items() if k not in ("seed", "train_size")} for r in records]
        for arm, records in runs.items()
    }
    differences = evaluation.compare(scalar, "baseline")
    if "gan" in scalar and "classic" in scalar:
        pair = {"classic": scalar["classic"], "gan": scalar["gan"]}
        differences.update(evaluation.compare(pair, "classic"))
    return {
        "setting": setting,
        "summary": evaluation.summarize(scalar),
        "differences": differences,
        "runs": runs,
        "confusion_matrices": confusion,
        "reported_in_paper": REPORTED_IN_PAPER,
    }


def write_outputs(report, output_dir):
    """``report.json``, ``runs.csv``, ``report.md`` (atomic) and ``metrics.png``; returns paths."""
    rows = [{"arm": arm, **r} for arm, records in report["runs"].items() for r in records]
    paths = [
        reports.write_json(os.path.join(output_dir, "report.json"), report),
        reports.write_csv(os.path.join(output_dir, "runs.csv"), rows),
        reports.write_markdown(os.path.join(output_dir, "report.md"), format_markdown(report)),
    ]
    s = report["summary"]
    groups = {f"recall {n}": f"recall_{n}" for n in report["setting"]["counts_used"]}
    groups.update({"accuracy": "accuracy", "balanced acc.": "balanced_accuracy"})
    values = {g: {arm: s[arm][m]["mean"] for arm in s} for g, m in groups.items()}
    errors = {g: {arm: s[arm][m]["half_width"] or 0.0 for arm in s} for g, m in groups.items()}
    seeds = len(report["setting"]["seeds"])
    title = f"MNIST imbalance: mean over {seeds} seed(s), 95% t-interval"
    path = os.path.join(output_dir, "metrics.png")
    return [*paths, plotting.plot_bars(values, errors, path, title=title, ylabel="test score")]


def _rare(setting):
    used = setting["counts_used"]
    return [d for d, n in used.items() if n < setting["target_count"]] or list(used)


def _fmt(ci):
    half = ci["half_width"]
    return f"{ci['mean']:.3f}" + ("" if half is None else f" +/- {half:.3f}")


def _row(name, metrics, columns):
    return f"| {name} | " + " | ".join(_fmt(metrics[k]) for k in columns) + " |"


def format_summary(report):
    """Each arm's accuracy and rare-digit recall (mean +/- 95% half-width), and the differences."""
    s = report["setting"]
    lines = [
        f"digits {s['digits']}, train counts {s['counts_used']} -> {s['target_count']}, "
        f"{len(s['seeds'])} seed(s), test images {s['test_images']}"
    ]
    for name, metrics in [*report["summary"].items(), *report["differences"].items()]:
        recalls = ", ".join(f"recall {d} {_fmt(metrics[f'recall_{d}'])}" for d in _rare(s))
        lines.append(f"  {name:<18} accuracy {_fmt(metrics['accuracy'])}; {recalls}")
    return "\n".join(lines)


def format_markdown(report):
    """``report.md``: the setting, a table of the arms and one of the paired differences."""
    s = report["setting"]
    columns = ["accuracy", "balanced_accuracy", "macro_f1", *[f"recall_{d}" for d in _rare(s)]]
    head = "| | " + " | ".join(columns) + " |\n|---|" + "---|" * len(columns)
    lines = [
        "# MNIST class imbalance",
        "",
        f"Data: {s['source']}; digits {s['digits']}, train counts {s['counts_used']}, rare digits "
        f"filled to {s['target_count']}; {s['gan']} GAN, {s['gan_steps']} steps; classifier "
        f"{s['classifier_epochs']} epochs; seeds {s['seeds']}; test images {s['test_images']}.",
        "",
        f"## Arms (mean +/- {s['confidence']:.0%} half-width over seeds)",
        "",
        head,
        *[_row(arm, metrics, columns) for arm, metrics in report["summary"].items()],
        "",
        "## Paired differences (same seed, same draw, same initial weights)",
        "",
        head,
        *[_row(name, metrics, columns) for name, metrics in report["differences"].items()],
        "",
        "The report's own figures (quoted, not measured here) are in `report.json` under "
        "`reported_in_paper`.",
    ]
    return "\n".join(lines)
