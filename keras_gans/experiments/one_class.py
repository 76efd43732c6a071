"""One-class MNIST: each digit in turn is normal, AnoGAN against autoencoders, AUROC per digit.

The standard one-class protocol (as in Perera, Nallapati and Xiang, "OCGAN: One-class Novelty
Detection Using GANs with Constrained Latent Representations", CVPR 2019): a model learns the
images of one digit only; on held-out images of every digit it must score the other nine digits as
more anomalous; the AUROC of its scores is reported per normal digit and as the mean over the ten.
That paper's MNIST table gives the means quoted in :data:`QUOTED` (trained on the full MNIST).

Here every model sees exactly AnoGAN's split (:mod:`keras_gans.experiments.anogan_eval`), seed by
seed: the normal digit's training images, and the *test half* of its balanced held-out set
(``eval_per_class / 2`` normal images and as many anomalous ones, drawn uniformly from the other
digits, seeded by the seed), which is what ``python -m keras_gans.anogan train --seed S`` reports
its test AUROC on. ``--half validation`` scores the validation half instead, for choosing a setting
without looking at the test half; either half searches with the DCGANs the other trained. Models:

* ``anogan``: :class:`keras_gans.anogan.NormalDCGAN` trained for ``gan_steps``, then
  :class:`keras_gans.anogan.AnoGAN`'s latent search of ``iterations`` steps (the paper's 500);
* ``cae``: :class:`keras_gans.autoencoder.Autoencoder`, the convolutional autoencoder;
* ``dae``: the same with ``dae_noise_std`` of Gaussian corruption (the denoising autoencoder).

Over several seeds each AUROC is a mean with a 95% t-interval (:mod:`keras_gans.evaluation`), and
so is the mean over digits (one mean per seed). Every (model, digit, seed) run keeps its
``result.json`` under ``runs/``; a rerun with the same setting reads it instead of training again,
and one that changes only AnoGAN's search (:data:`SEARCH_KEYS`) searches again with the saved DCGAN.
Writes ``report.json``, ``runs.csv``, ``report.md`` and ``auroc.png`` (:mod:`keras_gans.reports`),
under ``validation/`` for the validation half.

CLI: ``python -m keras_gans.experiments.one_class --all-digits`` (or ``--normal-digit K``).
"""

import dataclasses
import logging
import os
import time

import keras
import numpy as np
from sklearn import metrics as skm
from tqdm.auto import tqdm

from keras_gans import anogan, autoencoder, cli, evaluation, plotting, reports
from keras_gans.errors import ConfigError
from keras_gans.experiments.anogan_eval import (
    EVAL_PER_CLASS,
    class_index,
    evaluation_splits,
    load_splits,
)
from keras_gans.saving import ModelFileError, load_model

log = logging.getLogger(__name__)

MODELS = ("anogan", "cae", "dae")
LABELS = {"anogan": "AnoGAN", "cae": "conv AE", "dae": "denoising AE"}
GAN_STEPS = 1000  # tkwoo's 10 epochs of 64 on MNIST's ones
DAE_NOISE_STD = 0.5  # in [-1, 1] units, 0.25 of the [0, 1] range (ours)
AE_STEPS = 1000  # ours: about 10 epochs of one digit of the full MNIST, as the DCGAN
SEEDS = (0,)
QUOTED = {
    "source": "Perera, Nallapati and Xiang, OCGAN, CVPR 2019: MNIST one-class table, mean AUROC "
    "over the ten digits (trained on the full MNIST)",
    "mean_auroc": {"DAE": 0.877, "VAE": 0.970, "AnoGAN": 0.913, "OCGAN": 0.975},
}
BESIDE = {"anogan": "AnoGAN", "dae": "DAE"}  # the quoted row each of ours sits beside
SEARCH_KEYS = ("iterations", "search_learning_rate")  # a change (or --half) reruns only the search
HALVES = ("test", "validation")  # of AnoGAN's held-out set: reported, and for choosing settings


@dataclasses.dataclass
class OneClassConfig:
    """The setting. ``digits=None``: every class of the data; ``runtime``: run options of every
    trainer (``strategy``, ``jit``, ...)."""

    digits: tuple | None = None
    models: tuple = MODELS
    seeds: tuple = SEEDS
    img_size: int = anogan.IMG_SIZE
    eval_per_class: int = EVAL_PER_CLASS
    gan_steps: int = GAN_STEPS
    gan_batch_size: int = anogan.BATCH_SIZE
    latent_dim: int = anogan.LATENT_DIM
    gf: int = anogan.GF
    df: int = anogan.DF
    iterations: int = anogan.ITERATIONS
    search_learning_rate: float = anogan.LEARNING_RATE
    search_batch_size: int | None = None  # None: the whole half at once
    half: str = "test"
    ae_steps: int = AE_STEPS
    ae_batch_size: int = autoencoder.BATCH_SIZE
    filters: int = autoencoder.FILTERS
    code_dim: int = autoencoder.CODE_DIM
    dae_noise_std: float = DAE_NOISE_STD
    output_dir: str = os.path.join("output", "one_class")
    runtime: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        unknown = [m for m in self.models if m not in MODELS]
        if unknown or not self.models:
            raise ConfigError(f"--models must be some of {', '.join(MODELS)}, got {unknown}")
        if not self.seeds:
            raise ConfigError("--seeds needs at least one seed")
        if self.half not in HALVES:
            raise ConfigError(f"--half must be 'test' or 'validation', got {self.half!r}")

    def setting(self, model):
        """What a ``model`` run depends on (a cached result must match it)."""
        keys = ["img_size", "eval_per_class"]
        keys += (
            ["gan_steps", "gan_batch_size", "latent_dim", "gf", "df", *SEARCH_KEYS]
            if model == "anogan"
            else ["ae_steps", "ae_batch_size", "filters", "code_dim"]
        )
        out = {k: getattr(self, k) for k in keys}
        out |= {"half": self.half} if self.half != "test" else {}  # test runs' settings as before
        return out | ({"noise_std": self.dae_noise_std} if model == "dae" else {})

    def folder(self, model, digit, seed, half=None):
        """The run folder; a validation run's is the test run's with ``_validation``."""
        suffix = "" if (half or self.half) == "test" else f"_{half or self.half}"
        return os.path.join(self.output_dir, "runs", model, f"digit{digit}_seed{seed}{suffix}")


# --- one run ----------------------------------------------------------------------------------------
def _anogan(config, normals, x, other_half, run):
    """The DCGAN on ``normals`` (or the one a run differing only in the search trained: this
    folder's, or the other half's run ``other_half``), then AnoGAN's search for every image of x."""
    trained = _trained_gan(config, run["output_dir"]) or _trained_gan(config, other_half)
    if trained is None:
        sizes = {"latent_dim": config.latent_dim, "gf": config.gf, "df": config.df}
        gan = anogan.NormalDCGAN(images=normals, **sizes, **run)
        summary = gan.run(None, config.gan_batch_size, 0, config.gan_steps)
        trained = summary, gan.generator, gan.discriminator
    summary, generator, discriminator = trained
    batch, jit = config.search_batch_size or len(x), config.runtime.get("jit", False)
    search = anogan.AnoGAN(
        generator,
        discriminator,
        iterations=config.iterations,
        learning_rate=config.search_learning_rate,
        batch_size=batch,
        jit=jit,
    )
    return summary, search.score(x, seed=run["seed"], progress=False)


def _trained_gan(config, folder):
    """``(summary, G, D)`` of the DCGAN in ``folder`` when its run's setting differs from
    ``config`` only in :data:`SEARCH_KEYS`; else ``None``."""
    path = os.path.join(folder, "result.json")
    if not os.path.isfile(path):
        return None
    stored = reports.read_json(path)
    wanted = {k: v for k, v in config.setting("anogan").items() if k not in (*SEARCH_KEYS, "half")}
    if any(stored.get("setting", {}).get(k) != v for k, v in reports.jsonable(wanted).items()):
        return None
    try:
        models = [
            load_model(os.path.join(folder, "models", f"{n}.h5"))
            for n in ("generator", "discriminator")
        ]
    except ModelFileError:
        return None
    log.info("%s: searching again with its trained DCGAN", folder)
    return {"steps": stored["steps"]}, *models


def _autoencoder(config, normals, x, noise_std, run):
    sizes = {"filters": config.filters, "code_dim": config.code_dim, "noise_std": noise_std}
    ae = autoencoder.Autoencoder(normals, **sizes, **run)
    summary = ae.run(None, config.ae_batch_size, 0, config.ae_steps)
    return summary, autoencoder.ReconstructionScorer(ae.encoder, ae.decoder).score(x)


def run_one(config, model, normals, split, digit, seed, folder):
    """Train ``model`` on ``normals``, score the ``split`` (x, labels, classes); the result dict
    (written to ``folder/result.json``, the scores to ``folder/scores.csv``)."""
    keras.backend.clear_session()  # ten digits of models would pile up in one process
    started = time.time()
    x, labels, classes = split
    run = dict(output_dir=folder, seed=seed, checkpoint_every=0, resume=False, **config.runtime)
    if model == "anogan":
        other = HALVES[1 - HALVES.index(config.half)]
        summary, scored = _anogan(config, normals, x, config.folder(model, digit, seed, other), run)
    else:
        noise = config.dae_noise_std if model == "dae" else 0.0
        summary, scored = _autoencoder(config, normals, x, noise, run)
    values = scored["anomaly_score"]
    result = {
        "model": model,
        "digit": digit,
        "seed": seed,
        "auroc": float(skm.roc_auc_score(labels, values)),
        "training_images": len(normals),
        "steps": summary["steps"],
        "test_normal": int((labels == 0).sum()),
        "test_anomalous": int(labels.sum()),
        "seconds": round(time.time() - started, 1),
    }
    if model == "anogan":  # the two terms of A(x) alone (Schlegl et al. Eq. 2 and 4)
        for part in ("residual", "discrimination"):
            auc = skm.roc_auc_score(labels, scored[f"{part}_score"])
            result[f"auroc_{part}_only"] = float(auc)
    rows = [
        {"class": int(c), "label": int(v), "anomaly_score": f"{s:.6g}"}
        for c, v, s in zip(classes, labels, values)
    ]
    reports.write_csv(os.path.join(folder, "scores.csv"), rows)
    stored = {**result, "setting": config.setting(model)}
    reports.write_json(os.path.join(folder, "result.json"), stored)
    return result


def _cached(config, model, folder):
    path = os.path.join(folder, "result.json")
    if not os.path.isfile(path):
        return None
    stored = reports.read_json(path)
    if stored.pop("setting", None) != reports.jsonable(config.setting(model)):
        return None
    return stored


# --- the experiment ---------------------------------------------------------------------------------
def run_experiment(config, train, test, classes, source=None):
    """Every model on every normal digit and seed; returns the report (also written)."""
    x, y = train
    digits = [class_index(d, classes) for d in (config.digits or classes)]
    runs = {m: [] for m in config.models}
    for digit in tqdm(digits, desc="normal digits"):
        normals = x[y == digit]
        for seed in config.seeds:
            split = evaluation_splits(*test, digit, config.eval_per_class, seed)[config.half]
            for model in config.models:
                folder = config.folder(model, classes[digit], seed)
                name = os.path.relpath(folder, os.path.join(config.output_dir, "runs"))
                result = _cached(config, model, folder) or run_one(
                    config, model, normals, split, classes[digit], seed, folder
                )
                log.info("%s: AUROC %.3f", name, result["auroc"])
                runs[model].append(result)
    report = build_report(config, runs, [classes[d] for d in digits], source)
    half = "" if config.half == "test" else config.half  # never over the test half's report
    write_outputs(report, os.path.join(config.output_dir, half))
    return report


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


# --- command line -----------------------------------------------------------------------------------
def _models(text):
    return tuple(m.strip() for m in text.split(",") if m.strip())


def _run_args(parser):
    add = parser.add_argument
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--all-digits", action="store_true", help="each class in turn is normal")
    which.add_argument("--normal-digit", default=None, help="only this class is normal")
    add("--data-dir", default=None, help="MNIST source or class folders (none: offline digits)")
    add("--models", type=_models, default=MODELS, help="some of anogan,cae,dae")
    add("--seeds", type=cli.seeds, default=list(SEEDS), help="e.g. 0,1,2")
    add(
        "--eval-per-class",
        type=cli.positive_int,
        default=EVAL_PER_CLASS,
        help="AnoGAN's held-out set per kind (halved: validation, test)",
    )
    add("--img-size", type=cli.positive_int, default=anogan.IMG_SIZE, help="a power of two >= 8")
    add("--gan-steps", type=cli.positive_int, default=GAN_STEPS, help="AnoGAN's DCGAN steps")
    add("--gan-batch-size", type=cli.positive_int, default=anogan.BATCH_SIZE, help="DCGAN batch")
    add("--latent-dim", type=cli.positive_int, default=anogan.LATENT_DIM, help="z size")
    add("--gf", type=cli.positive_int, default=anogan.GF, help="DCGAN G filters")
    add("--df", type=cli.positive_int, default=anogan.DF, help="DCGAN D filters")
    add(
        "--iterations",
        type=cli.positive_int,
        default=anogan.ITERATIONS,
        help="AnoGAN's search steps (paper: 500)",
    )
    add(
        "--search-learning-rate",
        type=cli.positive_float,
        default=anogan.LEARNING_RATE,
        help="Adam on z (a change reuses the trained DCGANs)",
    )
    add("--half", choices=HALVES, default="test", help="scored (validation: to choose settings)")
    add(
        "--search-batch-size",
        type=cli.positive_int,
        default=None,
        help="images searched at once (none: all)",
    )
    add("--ae-steps", type=cli.positive_int, default=AE_STEPS, help="autoencoder steps")
    add("--ae-batch-size", type=cli.positive_int, default=autoencoder.BATCH_SIZE, help="AE batch")
    add("--filters", type=cli.positive_int, default=autoencoder.FILTERS, help="AE filters")
    add("--code-dim", type=cli.positive_int, default=autoencoder.CODE_DIM, help="AE code size")
    add("--dae-noise-std", type=cli.positive_float, default=DAE_NOISE_STD, help="DAE corruption")
    add("--output-dir", default=OneClassConfig.output_dir, help="report folder")
    add("--jit", action="store_true", help="XLA for training and search")


def _run(args):
    train, test, classes = load_splits(args.data_dir, args.img_size)
    fields = {f.name for f in dataclasses.fields(OneClassConfig)} - {"digits", "seeds", "runtime"}
    config = OneClassConfig(
        digits=None if args.all_digits else (args.normal_digit,),
        seeds=tuple(args.seeds),
        runtime={"jit": args.jit},
        **{k: getattr(args, k) for k in fields},
    )
    report = run_experiment(config, train, test, classes, args.data_dir)
    print(format_markdown(report))
    return report


COMMANDS = [
    cli.Command(
        "run", "AUROC per normal digit: AnoGAN and autoencoders on AnoGAN's split.", _run_args, _run
    )
]


def main(argv=None):
    """``python -m keras_gans.experiments.one_class [run] --all-digits|--normal-digit K``."""
    prog = "python -m keras_gans.experiments.one_class"
    return cli.main(prog, __doc__.partition("\n")[0], COMMANDS, argv)


if __name__ == "__main__":
    main()
