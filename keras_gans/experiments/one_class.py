"""One-class MNIST: each digit in turn is normal, AnoGAN against autoencoders, AUROC per digit.

The standard one-class protocol (as in Perera, Nallapati and Xiang, "OCGAN: One-class Novelty
Detection Using GANs with Constrained Latent Representations", CVPR 2019): a model learns the
images of one digit only; on held-out images of every digit it must score the other nine digits as
more anomalous; the AUROC of its scores is reported per normal digit and as the mean over the ten.
That paper's MNIST table gives the means quoted in
:data:`keras_gans.experiments.one_class_report.QUOTED` (trained on the full MNIST).

Here every model sees exactly AnoGAN's split (:mod:`keras_gans.experiments.anogan_eval`), seed by
seed: the normal digit's training images, and the *test half* of its balanced held-out set
(``eval_per_class / 2`` normal images and as many anomalous ones, drawn uniformly from the other
digits, seeded by the seed), which is what ``python -m keras_gans.anogan train --seed S`` reports
its test AUROC on. ``--half validation`` scores the validation half instead, for choosing a setting
without looking at the test half; either half scores with the models the other trained. Models:

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
from sklearn import metrics as skm
from tqdm.auto import tqdm

from keras_gans import anogan, autoencoder, cli, reports
from keras_gans.errors import ConfigError
from keras_gans.experiments.anogan_eval import (
    EVAL_PER_CLASS,
    class_index,
    evaluation_splits,
    load_splits,
)
from keras_gans.experiments.one_class_report import (
    build_report,
    format_markdown,
    write_outputs,
)
from keras_gans.saving import ModelFileError, load_model

log = logging.getLogger(__name__)

MODELS = ("anogan", "cae", "dae")
GAN_STEPS = 1000  # tkwoo's 10 epochs of 64 on MNIST's ones
DAE_NOISE_STD = 0.5  # in [-1, 1] units, 0.25 of the [0, 1] range (ours)
AE_STEPS = 1000  # ours: about 10 epochs of one digit of the full MNIST, as the DCGAN
SEEDS = (0,)
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
    """The DCGAN on ``normals`` (or one trained for this setting: :func:`_trained`), then AnoGAN's
    search for every image of x."""
    trained = _trained(config, "anogan", run["output_dir"], other_half)
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


def _trained(config, model, *folders):
    """``(summary, *models)`` of the first run in ``folders`` (this run's, the other half's) whose
    setting differs from ``config`` only in what is scored (:data:`SEARCH_KEYS`, the half); else
    ``None``. Its saved models are scored instead of training again."""
    names = ("generator", "discriminator") if model == "anogan" else ("encoder", "decoder")
    unscored = {k: v for k, v in config.setting(model).items() if k not in (*SEARCH_KEYS, "half")}
    for folder in folders:
        path = os.path.join(folder, "result.json")
        if not os.path.isfile(path):
            continue
        stored = reports.read_json(path)
        setting = stored.get("setting", {})
        if any(setting.get(k) != v for k, v in reports.jsonable(unscored).items()):
            continue
        try:
            models = [load_model(os.path.join(folder, "models", f"{n}.h5")) for n in names]
        except ModelFileError:
            continue
        log.info("%s: scoring again with its trained models", folder)
        return {"steps": stored["steps"]}, *models
    return None


def _autoencoder(config, model, normals, x, other_half, run):
    """The autoencoder on ``normals`` (or one trained for this setting: :func:`_trained`), then its
    reconstruction scores for every image of x."""
    noise = config.dae_noise_std if model == "dae" else 0.0
    trained = _trained(config, model, run["output_dir"], other_half)
    if trained is None:
        sizes = {"filters": config.filters, "code_dim": config.code_dim, "noise_std": noise}
        ae = autoencoder.Autoencoder(normals, **sizes, **run)
        trained = ae.run(None, config.ae_batch_size, 0, config.ae_steps), ae.encoder, ae.decoder
    summary, encoder, decoder = trained
    return summary, autoencoder.ReconstructionScorer(encoder, decoder).score(x)


def run_one(config, model, normals, split, digit, seed, folder):
    """Train ``model`` on ``normals``, score the ``split`` (x, labels, classes); the result dict
    (written to ``folder/result.json``, the scores to ``folder/scores.csv``)."""
    keras.backend.clear_session()  # ten digits of models would pile up in one process
    started = time.time()
    x, labels, classes = split
    run = dict(output_dir=folder, seed=seed, checkpoint_every=0, resume=False, **config.runtime)
    other = config.folder(model, digit, seed, HALVES[1 - HALVES.index(config.half)])
    if model == "anogan":
        summary, scored = _anogan(config, normals, x, other, run)
    else:
        summary, scored = _autoencoder(config, model, normals, x, other, run)
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
    digits = [class_index(d, classes, "--normal-digit") for d in (config.digits or classes)]
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
