"""``python -m benchmarks.gan_comparison``: ProGAN at 64 and 128 vs DCGAN at 64 and BigGAN at 128.

Issue 19. On one ISIC folder and one split, each GAN trains on the same training pool for the same
number of real images, and is judged two ways:

1. **split**: a balanced test set (``--test-per-class``, ``--split-seed``) is held out first; every
   other image goes to ``OUT/pool/<class>/`` at 128 px (:func:`keras_gans.experiments.lesion_splits.
   export_training_pool`), the only images any GAN sees;
2. **GANs** on the pool, each shown ``len(ProGAN phases) * --images-per-stage`` real images per
   class: ``progan64`` / ``progan128`` (one ProGAN per class), ``dcgan64`` (one DCGAN per class),
   ``biggan128`` (one class-conditional BigGAN, shown twice as many, both classes);
3. **harness**: the lesion harness (:mod:`keras_gans.experiments.lesion_harness`, ``--clf-size``
   px, ``--seeds``), ``real`` vs ``real+synthetic`` with the ``--harness`` GANs' images (as many
   per class as real training images), one run per GAN on the same seeds and split;
4. **features**: the first run's ``real`` CNN of the first seed, up to its ``fc`` layer, is the one
   feature extractor (ImageNet weights are not available offline);
5. **KID / FID** per class of ``--n-fake`` generated images against the pool's real images of that
   class (:func:`keras_gans.metrics.kid_from_features` over 100 subsets of half the real images,
   mean and standard deviation; :func:`~keras_gans.metrics.fid_from_features`), every image resized
   to the extractor's input; the held-out test images, scored the same way, give the floor.

Writes ``OUT/comparison.json``, ``benchmarks/results/gan_comparison-<timestamp>.json`` and
``gan_comparison-latest.json``, and prints a markdown table. Each GAN run resumes from its
checkpoints and a finished GAN or harness run is read back instead of run again, so a stopped
comparison continues where it was, and GANs can be added later::

    python -m benchmarks.gan_comparison --data-dir ../shared/data/isic_dev
"""

import argparse
import dataclasses
import math
import os
import time

import numpy as np

from benchmarks import common

GANS = ("progan64", "dcgan64", "progan128", "biggan128")
CLASSES = ("melanoma", "nevus")


def _train_gan(kind, pool, out, args):
    """Train ``kind`` on ``pool``; returns ``({class: generator file}, seconds)``."""
    from keras_gans import biggan, dcgan, progan
    from keras_gans.progan_networks import phases

    size = int(kind[-3:] if kind.endswith("128") else kind[-2:])
    images = len(phases(size)) * args.images_per_stage  # per class, as a ProGAN at this size
    steps = math.ceil(images / args.batch_size)
    common_kw = dict(data_dir=pool, img_size=size, seed=0, checkpoint_every=50)
    started, files = time.time(), {}
    if kind == "biggan128":
        folder = os.path.join(out, kind)
        gan = biggan.BigGAN(**common_kw, ch=args.biggan_ch, class_names=CLASSES, output_dir=folder)
        gan.run(batch_size=args.batch_size, sample_interval=0, max_steps=2 * steps)
        return {"conditional": os.path.join(gan.models_dir, "g_ema.h5")}, time.time() - started
    for name in CLASSES:
        folder = os.path.join(out, f"{kind}_{name}")
        if kind.startswith("progan"):
            gan = progan.ProGAN(
                **common_kw,
                class_name=name,
                fmap_base=args.fmap_base,
                fmap_max=args.fmap_max,
                latent_dim=args.latent_dim,
                images_per_stage=args.images_per_stage,
                output_dir=folder,
                run_eagerly=args.eager_progan or None,
            )
            model = "g_ema.h5"
        else:
            gan = dcgan.DCGAN(
                **common_kw,
                class_name=name,
                gf=args.dcgan_filters,
                df=args.dcgan_filters,
                output_dir=folder,
            )
            model = "generator.h5"
        gan.run(batch_size=args.batch_size, sample_interval=0, max_steps=steps)
        files[name] = os.path.join(gan.models_dir, model)
    return files, time.time() - started


def _fakes(files, n, seed=0):
    """``{class: n images}`` from per-class or conditional generators, clipped to [-1, 1] as any
    written image is (ProGAN's output layer is linear, as the paper's)."""
    from keras_gans import biggan, sampling

    if "conditional" in files:
        images = {
            c: biggan.generate_images(files["conditional"], n, i, seed=seed)
            for i, c in enumerate(CLASSES)
        }
    else:
        images = {c: sampling.generate_images(files[c], n, seed=seed) for c in CLASSES}
    return {c: np.clip(x, -1.0, 1.0) for c, x in images.items()}


def _extractor(classifier_path):
    """Images in [-1, 1] -> the harness CNN's ``fc`` features (the CNN takes [0, 1])."""
    import keras

    from keras_gans import load_model

    cnn = load_model(classifier_path)
    x = keras.Input(cnn.input_shape[1:])
    h = keras.layers.Rescaling(0.5, offset=0.5)(x)
    features = keras.Model(cnn.inputs, cnn.get_layer("fc").output)(h)
    return keras.Model(x, features, name="lesion_cnn_fc")


def _scores(extractor, real, fake):
    from keras_gans.metrics import FeatureExtractor, fid_from_features, kid_from_features

    fx = FeatureExtractor(extractor)
    a, b = fx(real), fx(fake)
    kid, kid_sd = kid_from_features(a, b, num_subsets=100, subset_size=max(2, len(a) // 2))
    return {"kid": kid, "kid_sd": kid_sd, "fid": fid_from_features(a, b), "n_real": len(a)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    add = parser.add_argument
    add("--data-dir", required=True, help="an ISIC folder (e.g. ../shared/data/isic_dev)")
    add("--output", default=os.path.join("output", "gan_comparison"), help="work folder")
    add("--gans", default=",".join(GANS), help=f"some of {','.join(GANS)}")
    add("--harness", default="progan64,dcgan64", help="GANs given a real+synthetic arm")
    add("--test-per-class", type=int, default=15)
    add("--split-seed", type=int, default=0)
    add("--images-per-stage", type=int, default=160, help="ProGAN; sets every GAN's length")
    add("--batch-size", type=int, default=16)
    add("--fmap-base", type=int, default=1024, help="ProGAN widths (paper: 8192)")
    add("--fmap-max", type=int, default=64, help="ProGAN widest layer (paper: 512)")
    add("--latent-dim", type=int, default=128, help="ProGAN z (paper: 512)")
    add("--dcgan-filters", type=int, default=32, help="DCGAN gf = df (default 64)")
    add("--biggan-ch", type=int, default=8, help="BigGAN ch (default 32)")
    add("--clf-size", type=int, default=64, help="the harness CNN's image side")
    add("--clf-epochs", type=int, default=10)
    add("--seeds", default="0,1,2")
    add("--n-fake", type=int, default=100, help="generated images per class for KID / FID")
    add("--results-dir", default=None, help="none: benchmarks/results")
    add("--eager-progan", action="store_true", help="ProGAN without a trace per phase")
    args = parser.parse_args(argv)

    from data_loaders.isic import load_isic
    from keras_gans import reports
    from keras_gans.experiments import lesion_harness as harness
    from keras_gans.experiments.lesion_splits import export_training_pool
    from keras_gans.experiments.lesion_synthetic import SyntheticSource

    started = time.time()
    out = os.path.abspath(args.output)
    pool = os.path.join(out, "pool")
    result = {"settings": vars(args), "gans": {}, "harness": {}}
    if not os.path.exists(os.path.join(pool, "test_ids.txt")):
        full = load_isic(args.data_dir, 128, CLASSES, (0.0, 1.0))
        result["pool_counts"] = export_training_pool(
            full, pool, args.test_per_class, args.split_seed
        )
    gans = [g for g in args.gans.split(",") if g]
    for kind in gans:  # a GAN trained by an earlier invocation is not trained again
        record = os.path.join(out, f"{kind}.json")
        if not os.path.exists(record):
            files, seconds = _train_gan(kind, pool, out, args)
            reports.write_json(record, {"files": files, "seconds": round(seconds, 1)})
            print(f"{kind}: trained in {seconds:.0f} s", flush=True)
        result["gans"][kind] = reports.read_json(record)

    data = load_isic(args.data_dir, args.clf_size, CLASSES, (0.0, 1.0))
    seeds = tuple(int(s) for s in args.seeds.split(","))
    cfg = harness.HarnessConfig(
        seeds=seeds,
        epochs=args.clf_epochs,
        test_per_class=args.test_per_class,
        split_seed=args.split_seed,
    )
    arms = [g for g in args.harness.split(",") if g] or [None]
    for kind in arms:  # each run repeats the real arm (the same seeds: the same numbers)
        folder = os.path.join(out, f"harness_{kind or 'real'}")
        source = None
        if kind:
            files = result["gans"][kind]["files"]
            spec = files.get("conditional") or ",".join(f"{c}={files[c]}" for c in CLASSES)
            source = SyntheticSource(spec, CLASSES)
        if os.path.exists(os.path.join(folder, "report.json")):  # an earlier invocation's
            report = reports.read_json(os.path.join(folder, "report.json"))
        else:
            run_cfg = dataclasses.replace(cfg, output_dir=folder)
            report = harness.run_experiment(data, run_cfg, source)
        result["harness"][kind or "real"] = report
    with open(os.path.join(pool, "test_ids.txt")) as f:
        pool_test = sorted(f.read().split())
    result["same_test_set"] = sorted(report["data"]["test_ids"]) == pool_test

    first = os.path.join(out, f"harness_{arms[0] or 'real'}", "models", f"real_seed{seeds[0]}.h5")
    extractor = _extractor(first)
    result["extractor"] = f"{first}: fc"
    reals = load_isic(pool, args.clf_size, CLASSES, (-1.0, 1.0), cache=False)
    # The floor: held-out real images (the test set) scored like a generator's.
    held_out = np.isin([str(i) for i in data.ids], pool_test)
    result["held_out_real"] = {
        c: _scores(
            extractor,
            reals.images[reals.labels == i],
            data.images[held_out & (data.labels == i)] * 2 - 1,
        )
        for i, c in enumerate(CLASSES)
    }
    for kind in gans:
        fakes = _fakes(result["gans"][kind]["files"], args.n_fake)
        scores = {}
        for i, c in enumerate(CLASSES):
            scores[c] = _scores(extractor, reals.images[reals.labels == i], fakes[c])
        result["gans"][kind]["scores"] = scores
    result["seconds"] = round(time.time() - started, 1)
    common.write_results("gan_comparison", result, args.results_dir)
    reports.write_json(os.path.join(out, "comparison.json"), result)
    print(_table(result))
    return result


def _interval(stat):
    if stat.get("low") is None:
        return f"{stat['mean']:.3f}"
    return f"{stat['mean']:.3f} [{stat['low']:.3f}, {stat['high']:.3f}]"


def _table(result):
    rows = ["| GAN | class | KID (mean +- sd) | FID | train s |", "|---|---|---|---|---|"]
    for c, s in result.get("held_out_real", {}).items():
        kid = f"{s['kid']:.4f} +- {s['kid_sd']:.4f}"
        rows.append(f"| held-out real images | {c} | {kid} | {s['fid']:.1f} | |")
    for kind, r in result["gans"].items():
        for c, s in r.get("scores", {}).items():
            kid = f"{s['kid']:.4f} +- {s['kid_sd']:.4f}"
            rows.append(f"| {kind} | {c} | {kid} | {s['fid']:.1f} | {r['seconds']} |")
    metrics = ("balanced_accuracy", "roc_auc")
    rows += ["", "| harness run | arm | " + " | ".join(metrics) + " |", "|---|---|---|---|"]
    for kind, report in result["harness"].items():
        for arm, stats in report["summary"].items():
            cells = " | ".join(_interval(stats[m]) for m in metrics)
            rows.append(f"| {kind} | {arm} | {cells} |")
        for pair, stats in report["differences"].items():
            cells = " | ".join(_interval(stats[m]) for m in metrics)
            rows.append(f"| {kind} | {pair} (paired) | {cells} |")
    return "\n".join(rows)


if __name__ == "__main__":
    main()
