"""The skin-lesion report's central experiment in one command: does adding GAN images help the CNN?

``python -m keras_gans.classifier pipeline --data-dir ISIC --generator dcgan|biggan|progan`` runs the four
steps that :mod:`keras_gans.experiments.lesion_harness` otherwise leaves to the user:

1. the leakage-free split: a balanced test set held out first, the rest written as a training pool
   (``OUT/pool/<class>/``), as ``lesion_harness split`` does;
2. GAN training on the pool only: one DCGAN (or ProGAN) per class (the report trained its DCGAN on
   one class at a time) or one class-conditional BigGAN; each run resumes from its checkpoints;
3. generation, inside the harness, from the trained generators (``OUT/<gan>/models/``);
4. the harness over seeds, real vs real + GAN images (``OUT/evaluation/report.md``).

``OUT/pipeline.json`` records each stage: the pool counts, every GAN run's folder and summary, the
synthetic spec handed to the harness, and where the report went. Each stage is the same code as the
four-step recipe in README, which stays for those who want control over each step.
"""

import dataclasses
import os

from keras_gans import cli
from keras_gans.errors import ConfigError
from keras_gans.reports import write_json

GENERATORS = ("dcgan", "biggan", "progan")


@dataclasses.dataclass
class PipelineConfig:
    """The GAN stage of :func:`run_pipeline` (the harness stage takes a ``HarnessConfig``).

    ``gan_size``: the GAN's image side (``None``: the report's, 64 for the DCGAN, 128 for BigGAN
    and ProGAN);
    ``gan_epochs`` / ``gan_steps``: the GAN's length (``None``: its default epochs);
    ``gan_options``: more constructor arguments, e.g. ``{"gf": 32, "df": 32}`` or ``{"ch": 32}``;
    ``runtime``: the trainers' run options (checkpoints, strategy, ...).
    """

    generator: str = "dcgan"
    gan_size: int | None = None
    gan_epochs: int | None = None
    gan_steps: int | None = None
    gan_batch_size: int | None = None
    gan_options: dict = dataclasses.field(default_factory=dict)
    runtime: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if self.generator not in GENERATORS:
            raise ConfigError(
                f"--generator must be one of {', '.join(GENERATORS)}, got {self.generator!r}"
            )


def _train(trainer, config):
    summary = trainer.run(config.gan_epochs, config.gan_batch_size, 0, config.gan_steps)
    return {"output_dir": trainer.output_dir, "steps": summary["steps"]}


def train_generators(pool_dir, class_names, config, output_dir, seed=0):
    """Train the GAN(s) of ``config`` on ``pool_dir``; returns ``(synthetic spec, stage record)``."""
    if config.generator in ("dcgan", "progan"):  # one unconditional GAN per class
        from keras_gans import dcgan, progan

        module = dcgan if config.generator == "dcgan" else progan
        trainer_cls = dcgan.DCGAN if config.generator == "dcgan" else progan.ProGAN
        model = "generator.h5" if config.generator == "dcgan" else "g_ema.h5"
        size = config.gan_size or module.IMG_SIZE
        runs, spec = {}, []
        for name in class_names:
            trainer = trainer_cls(
                data_dir=pool_dir,
                class_name=name,
                img_size=size,
                output_dir=os.path.join(output_dir, f"{config.generator}_{name}"),
                seed=seed,
                **config.gan_options,
                **config.runtime,
            )
            runs[name] = _train(trainer, config)
            spec.append(f"{name}={os.path.join(trainer.models_dir, model)}")
        return ",".join(spec), {"generator": config.generator, "img_size": size, "runs": runs}
    from keras_gans import biggan

    size = config.gan_size or biggan.IMG_SIZE
    trainer = biggan.BigGAN(
        data_dir=pool_dir,
        img_size=size,
        class_names=tuple(class_names),
        num_classes=len(class_names),
        output_dir=os.path.join(output_dir, "biggan"),
        seed=seed,
        **config.gan_options,
        **config.runtime,
    )
    run = _train(trainer, config)
    spec = os.path.join(trainer.models_dir, "g_ema.h5")
    return spec, {"generator": "biggan", "img_size": size, "runs": {"all": run}}


def run_pipeline(data, harness_config, pipeline_config, output_dir, truncation=None):
    """Split, train the GAN(s) on the training pool, run the harness; returns the harness report.

    ``data``: the ISIC images in [0, 1] (:func:`data_loaders.isic.load_isic`); the harness's
    ``output_dir`` is set to ``OUTPUT_DIR/evaluation``.
    """
    from keras_gans.classifier import check_img_size
    from keras_gans.experiments import lesion_harness as harness

    check_img_size(data.images.shape[1])  # before hours of GAN training, not after
    pool_dir = os.path.join(output_dir, "pool")
    cfg = dataclasses.replace(harness_config, output_dir=os.path.join(output_dir, "evaluation"))
    record = {"pool": pool_dir, "generator": pipeline_config.generator}
    record["pool_counts"] = harness.export_training_pool(
        data, pool_dir, cfg.test_per_class, cfg.split_seed
    )
    spec, record["gan"] = train_generators(
        pool_dir, data.class_names, pipeline_config, output_dir, seed=cfg.seeds[0]
    )
    record["synthetic"] = spec
    synthetic = harness.SyntheticSource(spec, data.class_names, truncation)
    report = harness.run_experiment(data, cfg, synthetic)
    record["report"] = os.path.join(cfg.output_dir, "report.md")
    write_json(os.path.join(output_dir, "pipeline.json"), record)
    return report


# --- command line ---------------------------------------------------------------------------------
def _pipeline_args(parser):
    from keras_gans.experiments import lesion_harness as harness

    harness.run_arguments(parser, synthetic=False)
    add = parser.add_argument
    add("--generator", choices=GENERATORS, default="dcgan", help="the GAN trained on the pool")
    add("--gan-size", type=cli.positive_int, default=None, help="GAN image side (none: report's)")
    add("--gan-epochs", type=cli.positive_int, default=None, help="GAN epochs (none: its default)")
    add("--gan-steps", type=cli.positive_int, default=None, help="most GAN steps per run")
    add("--gan-batch-size", type=cli.positive_int, default=None, help="GAN batch (none: default)")
    add(
        "--gan-filters",
        type=cli.positive_int,
        default=None,
        help="DCGAN gf = df, BigGAN ch, or ProGAN fmap-max",
    )
    add("--checkpoint-every", type=cli.non_negative_int, default=500, help="GAN checkpoints")


def _pipeline(args):
    from keras_gans.experiments import lesion_harness as harness

    harness_config = harness.config_from_args(args)
    options = {}
    if args.gan_filters:
        keys = {"dcgan": ("gf", "df"), "biggan": ("ch",), "progan": ("fmap_max",)}[args.generator]
        options = dict.fromkeys(keys, args.gan_filters)
    config = PipelineConfig(
        generator=args.generator,
        gan_size=args.gan_size,
        gan_epochs=args.gan_epochs,
        gan_steps=args.gan_steps,
        gan_batch_size=args.gan_batch_size,
        gan_options=options,
        runtime={"checkpoint_every": args.checkpoint_every},
    )
    output_dir = args.output_dir or os.path.join("output", "pipeline", harness.data_name(args))
    data = harness.load_data(args)
    report = run_pipeline(data, harness_config, config, output_dir, args.truncation)
    print(harness.markdown_report(report))
    print(f"outputs in {os.path.abspath(output_dir)} (stages in pipeline.json)")
    return report


COMMAND = cli.Command(
    "pipeline",
    "The whole experiment in one command: split, train a GAN on the training pool (one DCGAN per "
    "class or one BigGAN), then the harness over seeds, real vs real + GAN images.",
    _pipeline_args,
    _pipeline,
)
