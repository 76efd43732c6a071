"""``python -m keras_gans``: the reports and their commands."""

REPORTS = (
    ("CycleGAN apple2orange, 128x128", "keras_gans.cyclegan", "train | translate"),
    ("conv GAN on ISIC, 32x32", "keras_gans.gan", "train | generate"),
    ("DCGAN on ISIC, 64x64", "keras_gans.dcgan", "train | generate"),
    ("conditional BigGAN on ISIC, 128x128", "keras_gans.biggan", "train | generate"),
    ("ProGAN on ISIC, grown from 4x4 to 128x128", "keras_gans.progan", "train | generate"),
    ("conditional DCGAN (cGAN), MNIST or ISIC", "keras_gans.cgan", "train | generate"),
    ("AnoGAN: anomaly scores and maps", "keras_gans.anogan", "train | score"),
    ("semi-supervised GAN (SGAN), 100 MNIST labels", "keras_gans.sgan", "train | compare"),
    ("conv / denoising autoencoders, anomaly scores", "keras_gans.autoencoder", "train | score"),
    ("one-class MNIST: AnoGAN vs autoencoders", "keras_gans.experiments.one_class", "run"),
    (
        "lesion harness: do GAN images help the CNN?",
        "keras_gans.experiments.lesion_harness",
        "run | split",
    ),
    ("MNIST class imbalance", "keras_gans.experiments.mnist_imbalance", "run | generate"),
    ("FID, KID, IS, translation score", "keras_gans.metrics", "fid | kid | is | translation"),
    ("mode coverage of a digit generator", "keras_gans.mode_coverage", "score | classifier"),
    ("latent walks: slerp grids, class interpolation", "keras_gans.latent", "walk | arithmetic"),
    ("local multi-worker launcher", "keras_gans.distribute", "launch"),
)


def main():
    width = max(len(module) for _, module, _ in REPORTS)
    print(
        "keras_gans: Keras 3 reproductions of GAN reports. Run `python -m MODULE COMMAND --help`.\n"
    )
    for title, module, commands in REPORTS:
        print(f"  python -m {module:<{width}}  {commands:<30} {title}")
    print("\nThe first command of each is its default; README.md has the details.")


if __name__ == "__main__":
    main()
