"""``python -m benchmarks.cyclegan``: the CycleGAN training step, three ways, in one process.

Variants, all on the models and compiled train functions of one
:class:`keras_gans.cyclegan.CycleGAN`, on the same random batches:

``literal``
    The report's Keras-GAN loop ported line by line: ``g_AB.predict``, ``g_BA.predict``,
    ``d_A.train_on_batch`` real then fake, the same for ``d_B``, then ``combined.train_on_batch``.
    The only additions are the ``trainable`` flips without which Keras 3 would not train D at all (a
    baseline that is both wrong and falsely fast); the benchmark checks that D's kernels move.
``keras_gans``
    :meth:`keras_gans.cyclegan.CycleGAN.train_step` as is (one traced call of both generators, then
    five ``train_on_batch`` calls through :func:`keras_gans.distribute.train_on_batch`).
``fused``
    :class:`keras_gans.fused.FusedCycleGANStep`: the same losses and update sequence as one
    ``tf.function`` (the practical ceiling of this machine for these networks).

For each: steps/s and images/s (median of ``--repeats`` timed blocks of ``--steps`` steps after
warm-up; the variants take turns step by step so that load from other processes hits all alike),
RSS memory, FLOPs per step counted from the layers (:mod:`benchmarks.common`), the machine's dense
matmul GFLOP/s and the achieved fraction of it. Prints a table and writes
``benchmarks/results/cyclegan-<timestamp>.json`` and ``cyclegan-latest.json``.
"""

import argparse
import gc
import os
import shutil
import statistics
import sys
import tempfile
import time

import numpy as np

from benchmarks import common

VARIANTS = ("literal", "keras_gans", "fused")
TARGETS = {"keras_gans_vs_literal": 1.25, "keras_gans_vs_fused": 0.9}


def stub_data_dir(root):
    """A dataset root, one tiny image per split (the timed step never reads it)."""
    from PIL import Image

    for split in ("trainA", "trainB", "testA", "testB"):
        os.makedirs(os.path.join(root, split), exist_ok=True)
        Image.new("RGB", (16, 16), (128, 128, 128)).save(os.path.join(root, split, "stub.png"))
    return root


def build_gan(args, workdir, name):
    """A :class:`CycleGAN` with the benchmark's options; the same seed gives the same weights."""
    from keras_gans.cyclegan import CycleGAN

    return CycleGAN(
        data_dir=os.path.join(workdir, "data"),
        img_rows=args.img_size,
        img_cols=args.img_size,
        gf=args.gf,
        df=args.df,
        output_dir=os.path.join(workdir, name),
        seed=args.seed,
        mixed_precision=args.mixed_precision,
        jit=args.jit,
        checkpoint_every=0,
        resume=False,
        run_eagerly=False,  # what real runs take, whatever KERAS_GANS_RUN_EAGERLY says
    )


class LiteralLoop:
    """One iteration of Keras-GAN's ``CycleGAN.train`` loop body, Keras 3 port (see module doc)."""

    def __init__(self, gan):
        self.gan = gan

    def __call__(self, imgs_A, imgs_B, valid, fake):
        g = self.gan
        # Translate images to opposite domain
        fake_B = g.g_AB.predict(imgs_A, verbose=0)
        fake_A = g.g_BA.predict(imgs_B, verbose=0)
        # Train the discriminators (original images = real / translated = fake); Keras 3 needs the
        # flips, the report relied on Keras 2 compiling D before freezing it.
        g.d_A.trainable = True
        dA_loss_real = g.d_A.train_on_batch(imgs_A, valid)
        dA_loss_fake = g.d_A.train_on_batch(fake_A, fake)
        dA_loss = 0.5 * np.add(dA_loss_real, dA_loss_fake)
        g.d_B.trainable = True
        dB_loss_real = g.d_B.train_on_batch(imgs_B, valid)
        dB_loss_fake = g.d_B.train_on_batch(fake_B, fake)
        dB_loss = 0.5 * np.add(dB_loss_real, dB_loss_fake)
        d_loss = 0.5 * np.add(dA_loss, dB_loss)
        g.d_A.trainable = False
        g.d_B.trainable = False
        # Train the generators
        g_loss = g.combined.train_on_batch(
            [imgs_A, imgs_B], [valid, valid, imgs_A, imgs_B, imgs_A, imgs_B]
        )
        return {"D_loss": float(d_loss[0]), "D_acc": float(d_loss[1]), "G_loss": float(g_loss[0])}


def make_step(variant, gan):
    """The callable ``step(imgs_A, imgs_B, valid, fake) -> logs`` of a variant."""
    if variant == "literal":
        return LiteralLoop(gan)
    if variant == "keras_gans":
        return lambda imgs_A, imgs_B, valid, fake: gan.train_step((imgs_A, imgs_B))
    if variant == "fused":
        from keras_gans.fused import FusedCycleGANStep

        return FusedCycleGANStep(gan)
    raise ValueError(f"unknown variant {variant!r}; choose from {', '.join(VARIANTS)}")


def model_flops(gan):
    """Forward FLOPs per image of one generator and one discriminator (counted from the layers)."""
    return common.forward_flops(gan.g_AB), common.forward_flops(gan.d_A)


def step_flops(fg, fd, variant):
    """FLOPs of one training step per image from forward FLOPs ``fg`` (G or F) and ``fd`` (D).

    Every variant trains D_X and D_Y on real and fake (4 x 3 fd), and G and F through six generator
    calls (G(x), F(y), F(G(x)), G(F(y)), F(x), G(y): 6 x 3 fg) and two frozen D calls that gradients
    pass through (2 x 2 fd). ``literal`` and ``keras_gans`` also run G(x) and F(y) once more for the
    D fakes (2 x fg); ``fused`` reuses the generator loss's forward pass.
    """
    required = 18 * fg + 16 * fd
    return required if variant == "fused" else required + 2 * fg


def _kernels(*models):
    return {
        f"{m.name}/{w.path}": w.numpy().copy()
        for m in models
        for w in m.weights
        if "kernel" in w.path
    }


def check_updates(gan, step, batch):
    """Run one step; ``{model: every kernel moved}`` (D must train in every variant)."""
    models = (gan.d_A, gan.d_B, gan.g_AB, gan.g_BA)
    before = _kernels(*models)
    step(*batch)
    after = _kernels(*models)
    return {
        m.name: all(
            not np.array_equal(before[k], after[k]) for k in before if k.startswith(m.name + "/")
        )
        for m in models
    }


def _graph_step(model):
    """The traced ``one_step_on_data`` behind ``model.train_on_batch`` (Keras 3, TF backend)."""
    for cell in model.train_function.__closure__ or ():
        if getattr(cell.cell_contents, "__name__", "") == "one_step_on_data":
            return cell.cell_contents
    raise RuntimeError("cannot find the traced train step of " + model.name)


def _timed(times, name, fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    times[name] = times.get(name, 0.0) + time.perf_counter() - start
    return out


def _sync(logs):
    """Wait for a traced step: read one of its logs (what ``train_on_batch`` does for all)."""
    return float(next(iter(logs.values())))


def _profile_calls(gan, A, B, valid, fake):
    """One ``train_step`` done piece by piece as it runs, each piece timed."""
    times, start = {}, time.perf_counter()
    fake_B, fake_A = _timed(times, "translate", gan.translate, A, B)
    for d, real, fakes in ((gan.d_A, A, fake_A), (gan.d_B, B, fake_B)):
        _timed(times, "set_trainable flips", gan.set_trainable, d, True)
        _timed(times, f"{d.name} real train_on_batch", gan.train_on_batch, d, real, valid)
        _timed(times, f"{d.name} fake train_on_batch", gan.train_on_batch, d, fakes, fake)
    _timed(times, "set_trainable flips", gan.set_trainable, gan.d_A, False)
    _timed(times, "set_trainable flips", gan.set_trainable, gan.d_B, False)
    targets = [valid, valid, A, B, A, B]
    _timed(times, "combined train_on_batch", gan.train_on_batch, gan.combined, [A, B], targets)
    times["sum of the pieces"] = time.perf_counter() - start
    return times


def _profile_graphs(gan, graph, A, B, valid, fake):
    """The same traced functions called on tensors, without the ``train_on_batch`` wrapper."""
    times, targets = {}, [valid, valid, A, B, A, B]

    def translate():
        fb, fa = gan._translate(A, B)
        fb[0, 0, 0, 0].numpy()  # waits for the device
        return fb, fa

    fake_B, fake_A = _timed(times, "graph: translate", translate)
    for name, x, y in (("d_A real", A, valid), ("d_A fake", fake_A, fake)):
        _timed(times, f"graph: {name}", lambda x, y: _sync(graph["d_A"]((x, y, None))), x, y)
    for name, x, y in (("d_B real", B, valid), ("d_B fake", fake_B, fake)):
        _timed(times, f"graph: {name}", lambda x, y: _sync(graph["d_B"]((x, y, None))), x, y)
    _timed(times, "graph: combined", lambda: _sync(graph["combined"](([A, B], targets, None))))

    def chained():
        fb, fa = gan._translate(A, B)
        logs = [
            graph["d_A"]((A, valid, None)),
            graph["d_A"]((fa, fake, None)),
            graph["d_B"]((B, valid, None)),
            graph["d_B"]((fb, fake, None)),
            graph["combined"](([A, B], targets, None)),
        ]
        return [_sync(entry) for entry in logs]

    _timed(times, "chained graphs, one sync", chained)
    return times


def profile_keras_gans(gan, batches, n_steps):
    """Where the time of :meth:`CycleGAN.train_step` goes: median ms per step of each piece.

    Pieces of ``train_step`` as it runs: ``translate``, the ``trainable`` flips, the five
    ``train_on_batch`` calls. ``graph:`` pieces: the same traced steps called directly on tensors
    (no ``train_on_batch`` wrapper, ``reset_metrics`` or log conversion), each waited for, so a call
    minus its graph piece is its per-call overhead. ``chained graphs, one sync``: the generators'
    forward and the five traced steps enqueued back to back, waited for once: the floor of a step
    that keeps five separate updates. Every piece runs real updates: profile a ``gan`` whose
    timings are done.
    """
    import tensorflow as tf

    graph = {m.name: _graph_step(m) for m in (gan.d_A, gan.d_B, gan.combined)}
    steps = [_profile_calls(gan, *batches[i % len(batches)]) for i in range(n_steps)]
    for i in range(n_steps):
        tensors = [tf.constant(v) for v in batches[i % len(batches)]]
        steps[i].update(_profile_graphs(gan, graph, *tensors))
    return {k: 1000 * statistics.median(st[k] for st in steps) for k in steps[0]}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.cyclegan",
        description="Time the report's CycleGAN loop, keras_gans' step and a fused step.",
    )
    parser.add_argument("--img-size", type=int, default=128, help="default: 128 (the report's)")
    parser.add_argument("--batch-size", type=int, default=1, help="default: 1 (the report's)")
    parser.add_argument("--steps", type=int, default=10, help="steps per timed block (default: 10)")
    parser.add_argument(
        "--repeats", type=int, default=5, help="timed blocks per variant (default: 5)"
    )
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (default: 3)")
    parser.add_argument(
        "--variants", default=",".join(VARIANTS), help=f"comma list (default: {','.join(VARIANTS)})"
    )
    parser.add_argument("--gf", type=int, default=32, help="generator filters (default: 32)")
    parser.add_argument("--df", type=int, default=64, help="discriminator filters (default: 64)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--mixed-precision", default=None, choices=("mixed_float16", "mixed_bfloat16")
    )
    parser.add_argument(
        "--jit", action="store_true", help="XLA for every variant's train functions"
    )
    parser.add_argument("--matmul-size", type=int, default=2048, help="n of the n x n matmul peak")
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="N",
        help="after timing, profile N keras_gans steps piece by piece (see profile_keras_gans)",
    )
    parser.add_argument("--results-dir", default=None, help="default: benchmarks/results")
    parser.add_argument("--name", default="cyclegan", help="JSON file prefix (default: cyclegan)")
    args = parser.parse_args(argv)
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    for v in args.variants:
        if v not in VARIANTS:
            parser.error(f"unknown variant {v!r}; choose from {', '.join(VARIANTS)}")
    return args


def run(argv=None):
    """Run the benchmark; returns the results dict (also written as JSON)."""
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    workdir = tempfile.mkdtemp(prefix="keras_gans_bench_")
    stub_data_dir(os.path.join(workdir, "data"))
    try:
        info = common.machine_info()
        print(f"device: {info['device']}; load average {info['load_average']}", flush=True)
        matmul_start = common.matmul_gflops(args.matmul_size)
        print(f"dense matmul {args.matmul_size}^2 float32: {matmul_start:.1f} GFLOP/s", flush=True)

        rng = np.random.default_rng(args.seed)
        shape = (args.batch_size, args.img_size, args.img_size, 3)
        pool = [
            (
                rng.uniform(-1, 1, shape).astype(np.float32),
                rng.uniform(-1, 1, shape).astype(np.float32),
            )
            for _ in range(4)
        ]
        patch = (args.batch_size, args.img_size // 16, args.img_size // 16, 1)
        valid, fake = np.ones(patch, np.float32), np.zeros(patch, np.float32)
        batches = [(a, b, valid, fake) for a, b in pool]

        # One CycleGAN for all variants: the same weights and compiled models, each compiled train
        # function traced once (tracing dominates a short run), and one seeding only (every
        # CycleGAN calls tf.random.set_seed, which clears the process' kernel caches and would make
        # the variants built earlier re-instantiate their graphs inside the timed blocks).
        with common.PeakMemory() as mem:
            start = time.perf_counter()
            gan = build_gan(args, workdir, "bench")
            build = {"build_s": time.perf_counter() - start, "rss_growth_build_mb": mem.growth_mb}
        fg, fd = model_flops(gan)
        print(f"built in {build['build_s']:.1f} s: G {fg / 1e9:.2f}, D {fd / 1e9:.2f} GFLOP/image")
        runs = {}
        for variant in args.variants:
            runs[variant] = {
                "step": make_step(variant, gan),
                "result": {
                    "variant": variant,
                    "generator_forward_flops": fg,
                    "discriminator_forward_flops": fd,
                    "flops_per_step": step_flops(fg, fd, variant) * args.batch_size,
                },
            }
        for variant in args.variants:
            run_, start = runs[variant], time.perf_counter()
            with common.PeakMemory() as mem:
                updates = check_updates(gan, run_["step"], batches[0])  # traces what is new
                first_s = time.perf_counter() - start
                for i in range(args.warmup):
                    run_["step"](*batches[(i + 1) % len(batches)])
            run_["result"].update(
                first_step_s=first_s,
                warmup_s=time.perf_counter() - start,
                rss_peak_mb=mem.peak_mb,
                rss_growth_warmup_mb=mem.growth_mb,
                every_kernel_updated=updates,
            )
            print(f"{variant}: first step (traces) {first_s:.1f} s; kernels moved: {updates}")
            if not all(updates.values()):
                print(f"WARNING: {variant} left kernels unchanged: {updates}", file=sys.stderr)

        # Timed: the variants take turns step by step (rotating), so other load hits all alike.
        steps = {v: runs[v]["step"] for v in args.variants}
        with common.PeakMemory(interval=0.05) as mem:
            timed = common.time_interleaved(steps, batches, args.steps, args.repeats)
        for variant in args.variants:
            runs[variant]["result"].update(
                common.summarize(
                    timed[variant]["wall"], args.steps, args.batch_size, timed[variant]["cpu"]
                )
            )
            print(f"{variant}: {runs[variant]['result']['steps_per_s']:.2f} steps/s", flush=True)

        profile = None
        if args.profile and "keras_gans" in runs:
            profile = profile_keras_gans(gan, batches, args.profile)
            print("\nkeras_gans step, median ms per step:")
            for key, ms in profile.items():
                print(f"  {key:28s} {ms:8.2f}")
        matmul_end = common.matmul_gflops(args.matmul_size)
        matmul = max(matmul_start, matmul_end)
        results = []
        for variant in args.variants:
            res = runs[variant]["result"]
            res["achieved_gflops"] = res["flops_per_step"] * res["steps_per_s"] / 1e9
            res["achieved_fraction_of_matmul"] = res["achieved_gflops"] / matmul
            results.append(res)
        by = {r["variant"]: r for r in results}
        ratios = {}
        if "keras_gans" in by and "literal" in by:
            ratios["keras_gans_vs_literal"] = (
                by["keras_gans"]["steps_per_s"] / by["literal"]["steps_per_s"]
            )
        if "keras_gans" in by and "fused" in by:
            ratios["keras_gans_vs_fused"] = (
                by["keras_gans"]["steps_per_s"] / by["fused"]["steps_per_s"]
            )
        data = {
            "benchmark": "cyclegan",
            "timestamp": common.timestamp(),
            "command": "python -m benchmarks.cyclegan "
            + " ".join(argv if argv is not None else sys.argv[1:]),
            "options": {k: v for k, v in vars(args).items() if k not in ("results_dir", "name")},
            "machine": {**info, "load_average_end": list(os.getloadavg())},
            "sources": common.source_digests(
                "keras_gans.cyclegan", "keras_gans.distribute", "keras_gans.fused"
            ),
            "precision": keras.mixed_precision.global_policy().name,
            "matmul_gflops": matmul,
            "matmul_gflops_start": matmul_start,
            "matmul_gflops_end": matmul_end,
            "flops_convention": (
                "forward FLOPs of Conv2D/Dense layers (2 per multiply-add); trained path = 3x "
                "forward, frozen D that gradients pass through = 2x, inference = 1x; "
                "see benchmarks/common.py"
            ),
            "rss_peak_timed_mb": mem.peak_mb,
            "process_max_rss_mb": common.max_rss_mb(),
            **build,
            "variants": results,
            "ratios": ratios,
            "profile_keras_gans_ms": profile,
            "targets": {
                k: {"target": t, "value": ratios.get(k), "met": ratios.get(k, 0) >= t}
                for k, t in TARGETS.items()
                if k in ratios
            },
        }
        paths = common.write_results(args.name, data, args.results_dir)
        print()
        print(table(data))
        print(f"\nwrote {paths[0]}")
        runs.clear()  # free the models before anything else runs in this process
        del gan
        gc.collect()
        return data
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def table(data):
    """The printed summary of a results dict."""
    rows = [
        dict(r, gflop=r["flops_per_step"] / 1e9, pct=100 * r["achieved_fraction_of_matmul"])
        for r in data["variants"]
    ]
    columns = [
        ("variant", "variant", "{}"),
        ("steps/s", "steps_per_s", "{:.2f}"),
        ("min", "steps_per_s_min", "{:.2f}"),
        ("max", "steps_per_s_max", "{:.2f}"),
        ("images/s", "images_per_s", "{:.2f}"),
        ("ms/step", "ms_per_step", "{:.1f}"),
        ("GFLOP/step", "gflop", "{:.1f}"),
        ("GFLOP/s", "achieved_gflops", "{:.1f}"),
        ("% matmul", "pct", "{:.0f}"),
        ("CPU ms/step", "cpu_ms_per_step", "{:.0f}"),
        ("RSS peak MiB", "rss_peak_mb", "{:.0f}"),
        ("+warm-up MiB", "rss_growth_warmup_mb", "{:.0f}"),
    ]
    opts = data["options"]
    lines = [
        f"CycleGAN {opts['img_size']}x{opts['img_size']}, batch {opts['batch_size']}, "
        f"{data['precision']}{', XLA' if opts['jit'] else ''} on {data['machine']['device']}; "
        f"matmul peak {data['matmul_gflops']:.0f} GFLOP/s",
        common.format_table(rows, columns),
    ]
    for key, t in data.get("targets", {}).items():
        lines.append(
            f"{key}: {t['value']:.2f}x (target >= {t['target']}x: "
            + ("met)" if t["met"] else "NOT met)")
        )
    return "\n".join(lines)


def main(argv=None):
    return run(argv)


if __name__ == "__main__":
    main()
