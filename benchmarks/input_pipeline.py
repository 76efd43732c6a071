"""``python -m benchmarks.input_pipeline``: can the CycleGAN loader outrun the training step?

Measures :meth:`data_loaders.unpaired.UnpairedImages.dataset` (decode, resize, flip, batch,
prefetch) on the built-in sample (or ``--data-dir``): whole epochs, a fresh dataset per epoch as
``CycleGAN.train`` builds them, nothing else running in the process. Reports decoded and resized
images/s (two per pair) and batches/s, and compares batches/s with the steps/s the training step
consumes: taken from ``benchmarks/results/cyclegan-latest.json`` (the ``keras_gans`` variant at the
same image and batch size), or measured here with ``--measure-step N``, which also runs N real
training steps fed by the pipeline and reports how long each step waited for its batch.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

from benchmarks import common

TARGET = 10.0  # the pipeline must deliver at least 10x what the step consumes


def pipeline_rate(images, batch_size, epochs, seed=0):
    """``(pairs/s, batches/s, pairs)`` for iterating ``epochs`` fresh epochs of ``images``."""
    start, pairs, batches = time.perf_counter(), 0, 0
    for epoch in range(epochs):
        for imgs_A, _ in images.dataset(batch_size, seed, epoch):
            pairs += int(imgs_A.shape[0])
            batches += 1
    seconds = time.perf_counter() - start
    return pairs / seconds, batches / seconds, pairs


def step_rate_from_results(img_size, batch_size, results_dir=None, variant="keras_gans"):
    """steps/s of ``variant`` in the latest cyclegan benchmark at the same sizes, else ``None``."""
    data = common.read_latest("cyclegan", results_dir)
    if not data:
        return None
    opts = data.get("options", {})
    if opts.get("img_size") != img_size or opts.get("batch_size") != batch_size:
        return None
    for res in data.get("variants", []):
        if res["variant"] == variant:
            return {
                "steps_per_s": res["steps_per_s"],
                "source": f"cyclegan-latest.json ({data['timestamp']})",
            }
    return None


def measure_step(root, img_size, batch_size, n_steps, seed=0):
    """Run ``CycleGAN.train_step`` on pipeline batches: steps/s and per-step wait for data."""

    from keras_gans.cyclegan import CycleGAN

    with tempfile.TemporaryDirectory(prefix="keras_gans_bench_") as out:
        gan = CycleGAN(
            data_dir=root,
            img_rows=img_size,
            img_cols=img_size,
            output_dir=out,
            seed=seed,
            checkpoint_every=0,
            resume=False,
            run_eagerly=False,
        )
        data = gan.data_loader.train
        waits, steps_s = [], []
        epoch = 0
        it = iter(data.dataset(batch_size, seed, epoch).as_numpy_iterator())
        warm = 2
        for i in range(n_steps + warm):
            t0 = time.perf_counter()
            try:
                imgs_A, imgs_B = next(it)
            except StopIteration:
                epoch += 1
                it = iter(data.dataset(batch_size, seed, epoch).as_numpy_iterator())
                imgs_A, imgs_B = next(it)
            t1 = time.perf_counter()
            gan.train_step((imgs_A, imgs_B))
            t2 = time.perf_counter()
            if i >= warm:
                waits.append(t1 - t0)
                steps_s.append(t2 - t0)
        return {
            "steps_per_s": len(steps_s) / sum(steps_s),
            "wait_ms_median": 1000 * statistics.median(waits),
            "wait_ms_max": 1000 * max(waits),
            "wait_fraction": sum(waits) / sum(steps_s),
            "source": f"measured here ({n_steps} CycleGAN.train_step calls fed by the pipeline)",
        }


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.input_pipeline",
        description="Images/s of the unpaired loader against the rate the CycleGAN step consumes.",
    )
    parser.add_argument("--data-dir", default=None, help="trainA/trainB root (default: the sample)")
    parser.add_argument("--img-size", type=int, default=128, help="default: 128")
    parser.add_argument("--batch-size", type=int, default=1, help="default: 1")
    parser.add_argument(
        "--epochs", type=int, default=2, help="epochs per timed repeat (default: 2)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats (default: 3)")
    parser.add_argument(
        "--measure-step",
        type=int,
        default=0,
        metavar="N",
        help="time N training steps fed by the pipeline instead of reading cyclegan-latest.json",
    )
    parser.add_argument("--results-dir", default=None, help="default: benchmarks/results")
    parser.add_argument("--name", default="input_pipeline", help="JSON file prefix")
    return parser.parse_args(argv)


def run(argv=None):
    """Run the benchmark; returns the results dict (also written as JSON)."""
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from data_loaders.unpaired import UnpairedImages, resolve_dataset

    root = resolve_dataset("sample", args.data_dir)
    images = UnpairedImages(root, args.img_size)
    info = common.machine_info()
    pipeline_rate(images, args.batch_size, 1)  # warm-up: file cache, tf.data and PIL start-up
    rates = [pipeline_rate(images, args.batch_size, args.epochs) for _ in range(args.repeats)]
    pairs_per_s = statistics.median(r[0] for r in rates)
    batches_per_s = statistics.median(r[1] for r in rates)

    step = None
    if args.measure_step:
        step = measure_step(root, args.img_size, args.batch_size, args.measure_step)
    else:
        step = step_rate_from_results(args.img_size, args.batch_size, args.results_dir)
    ratio = batches_per_s / step["steps_per_s"] if step else None
    data = {
        "benchmark": "input_pipeline",
        "timestamp": common.timestamp(),
        "command": "python -m benchmarks.input_pipeline "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "options": {k: v for k, v in vars(args).items() if k not in ("results_dir", "name")},
        "machine": info,
        "dataset": "sample" if args.data_dir is None else os.path.abspath(args.data_dir),
        "pairs_per_epoch": images.n_batches(args.batch_size) * args.batch_size,
        "source_size": _source_size(images.paths_A[0]),
        "images_per_s": 2 * pairs_per_s,
        "pairs_per_s": pairs_per_s,
        "batches_per_s": batches_per_s,
        "batches_per_s_all": [r[1] for r in rates],
        "step": step,
        "ratio_to_step": ratio,
        "target": {"target": TARGET, "value": ratio, "met": ratio is not None and ratio >= TARGET},
    }
    paths = common.write_results(args.name, data, args.results_dir)
    print(table(data))
    print(f"\nwrote {paths[0]}")
    return data


def _source_size(path):
    from PIL import Image

    with Image.open(path) as img:
        return list(img.size)


def table(data):
    opts = data["options"]
    lines = [
        f"UnpairedImages.dataset on {data['dataset']} ({data['source_size'][0]}x"
        f"{data['source_size'][1]} files -> {opts['img_size']}x{opts['img_size']}, batch "
        f"{opts['batch_size']}) on {data['machine']['device']}",
        f"  decoded + resized images/s: {data['images_per_s']:.1f}  "
        f"(pairs/s {data['pairs_per_s']:.1f}, batches/s {data['batches_per_s']:.1f})",
    ]
    step = data["step"]
    if step:
        lines.append(
            f"  training step consumes: {step['steps_per_s']:.2f} batches/s ({step['source']})"
        )
        if "wait_ms_median" in step:
            lines.append(
                f"  step waited for data: median {step['wait_ms_median']:.2f} ms, max "
                f"{step['wait_ms_max']:.1f} ms, {100 * step['wait_fraction']:.1f}% of step time"
            )
        met = "met" if data["target"]["met"] else "NOT met"
        lines.append(
            f"  pipeline / step: {data['ratio_to_step']:.1f}x (target >= {TARGET:.0f}x: {met})"
        )
    else:
        lines.append(
            "  no step rate: run python -m benchmarks.cyclegan first, or pass --measure-step N"
        )
    return "\n".join(lines)


def main(argv=None):
    return run(argv)


if __name__ == "__main__":
    main()
