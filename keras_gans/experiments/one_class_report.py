"""The one-class experiment's report (:mod:`keras_gans.experiments.one_class`): the AUROC table per
normal digit, the means beside the published table (quoted, never measured here), the files.

Each AUROC over several seeds is a mean with a 95% t-interval (:mod:`keras_gans.evaluation`); the
mean over digits is taken per seed, then over seeds. Only a test-half report sits beside the quoted
table: a validation half is for choosing settings.
"""

import dataclasses
import os

import numpy as np

from keras_gans import evaluation, plotting, reports

LABELS = {"anogan": "AnoGAN", "cae": "conv AE", "dae": "denoising AE"}
QUOTED = {
    "source": "Perera, Nallapati and Xiang, OCGAN, CVPR 2019: MNIST one-class table, mean AUROC "
    "over the ten digits (trained on the full MNIST)",
    "mean_auroc": {"DAE": 0.877, "VAE": 0.970, "AnoGAN": 0.913, "OCGAN": 0.975},
}
BESIDE = {"anogan": "AnoGAN", "dae": "DAE"}  # the quoted row each of ours sits beside


def build_report(config, runs, digits, source=None):
    """Per model: AUROC per digit (mean and 95% interval over seeds) and the mean over digits
    (one per seed, then over seeds); the quoted table apart, labelled quoted."""
    summary = {}
    for model, records in runs.items():
        per_digit = {
            d: evaluation.mean_ci([r["auroc"] for r in records if r["digit"] == d]) for d in digits
        }
        by_seed = [np.mean([r["auroc"] for r in records if r["seed"] == s]) for s in config.seeds]
        summary[model] = {"per_digit": per_digit, "mean_over_digits": evaluation.mean_ci(by_seed)}
    setting = dataclasses.asdict(config) | {
        "digits": digits,
        "source": source or "scikit-learn digits",
    }
    setting.pop("runtime")
    anogan_mean = summary.get("anogan", {}).get("mean_over_digits", {}).get("mean")
    check = None
    if anogan_mean is not None and config.half == "test":  # a validation mean is no result
        check = {
            "quoted": QUOTED["mean_auroc"]["AnoGAN"],
            "measured": anogan_mean,
            "at_or_above": bool(anogan_mean >= QUOTED["mean_auroc"]["AnoGAN"]),
            "all_ten_digits": len(digits) == 10,
        }
    return {
        "setting": setting,
        "summary": summary,
        "runs": runs,
        "anogan_vs_quoted": check,
        "quoted": QUOTED,
    }


def _fmt(ci):
    if ci["half_width"] is None:
        return f"{ci['mean']:.3f}"
    return f"{ci['mean']:.3f} ± {ci['half_width']:.3f}"


def format_markdown(report):
    """The measured table (digits x models), then ours beside the quoted means."""
    s, summary = report["setting"], report["summary"]
    models = list(summary)
    seeds = len(s["seeds"])
    lines = [
        "# One-class MNIST: AUROC per normal digit (measured)",
        "",
        f"Data: {s['source']}, {s['img_size']} px. Scored: AnoGAN's {s['half']} half, "
        f"{s['eval_per_class'] // 2} normal + {s['eval_per_class'] // 2} anomalous images per "
        f"digit and seed. Seeds: {', '.join(map(str, s['seeds']))}"
        + (" (mean ± 95% half-width over seeds)." if seeds > 1 else "."),
        f"AnoGAN: DCGAN {s['gan_steps']} steps of {s['gan_batch_size']}, gf = df = {s['gf']}, "
        f"{s['iterations']} search iterations (paper: 500), Adam at "
        f"{s['search_learning_rate']:g} on z. Autoencoders: {s['ae_steps']} steps "
        f"of {s['ae_batch_size']}, filters {s['filters']}, code {s['code_dim']}; DAE noise std "
        f"{s['dae_noise_std']}.",
        "",
        "| normal digit | " + " | ".join(LABELS[m] for m in models) + " |",
        "|---" * (len(models) + 1) + "|",
    ]
    for d in s["digits"]:
        lines.append(
            f"| {d} | " + " | ".join(_fmt(summary[m]["per_digit"][d]) for m in models) + " |"
        )
    lines.append(
        "| **mean** | " + " | ".join(_fmt(summary[m]["mean_over_digits"]) for m in models) + " |"
    )
    if s["half"] != "test":
        note = "Validation halves choose settings; only test halves sit beside the published table."
        return "\n".join([*lines, "", note]) + "\n"
    some = "mean over digits " + ", ".join(s["digits"])
    label = "mean over the ten digits" if len(s["digits"]) == 10 else some
    lines += [
        "",
        f"## Beside the published table ({label})",
        "",
        "| method | quoted | measured here |",
        "|---|---|---|",
    ]
    measured = {BESIDE[m]: m for m in models if m in BESIDE}
    for name, value in report["quoted"]["mean_auroc"].items():
        ours = _fmt(summary[measured[name]]["mean_over_digits"]) if name in measured else "not run"
        lines.append(f"| {name} | {value:.3f} (quoted) | {ours} |")
    for m in models:
        if m not in BESIDE:
            lines.append(
                f"| {LABELS[m]} | no published number | {_fmt(summary[m]['mean_over_digits'])} |"
            )
    lines += ["", f"Quoted: {report['quoted']['source']}."]
    check = report["anogan_vs_quoted"]
    if check:
        verb = "reaches" if check["at_or_above"] else "does not reach"
        lines += [
            "",
            f"AnoGAN's measured mean {check['measured']:.3f} {verb} the quoted "
            f"{check['quoted']:.3f}"
            + ("" if check["all_ten_digits"] else " (not all ten digits run)")
            + ".",
        ]
    return "\n".join(lines) + "\n"


def write_outputs(report, output_dir):
    """``report.json``, ``runs.csv``, ``report.md`` (atomic) and ``auroc.png``."""
    rows = [r for records in report["runs"].values() for r in records]
    reports.write_json(os.path.join(output_dir, "report.json"), report)
    reports.write_csv(os.path.join(output_dir, "runs.csv"), rows)
    reports.write_markdown(os.path.join(output_dir, "report.md"), format_markdown(report))
    summary = report["summary"]
    groups = [*report["setting"]["digits"], "mean"]
    pick = lambda m, d: (
        summary[m]["mean_over_digits"] if d == "mean" else summary[m]["per_digit"][d]
    )
    values = {str(d): {LABELS[m]: pick(m, d)["mean"] for m in summary} for d in groups}
    errors = {str(d): {LABELS[m]: pick(m, d)["half_width"] or 0.0 for m in summary} for d in groups}
    path = os.path.join(output_dir, "auroc.png")
    plotting.plot_bars(values, errors, path, "One-class AUROC per normal digit", "AUROC")
