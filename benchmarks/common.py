"""Measuring helpers shared by the benchmarks: peak matmul rate, memory, FLOPs, timing, JSON.

Conventions (also in ``benchmarks/README.md``):

* **FLOPs** are counted from the layers: a multiply-add is 2 FLOPs; ``Conv2D`` costs
  ``2 * kh * kw * (cin / groups) * cout * H_out * W_out``, ``Conv2DTranspose``
  ``2 * kh * kw * cin * cout * H_in * W_in``, ``Dense`` ``2 * in * out`` per position. Bias adds,
  activations, normalization, up-sampling and concatenation are memory-bound and not counted (about
  1% of a CycleGAN's FLOPs). Training FLOPs are derived from forward FLOPs ``F``: a path whose
  weights are trained costs ``3F`` (forward, input gradients, weight gradients), a frozen network
  that gradients pass through ``2F`` (forward, input gradients), an inference call ``F``.
* **Memory** is resident set size (RSS), the only number that includes TensorFlow's allocator (which
  ``tracemalloc`` does not see): sampled every few milliseconds from ``psutil`` if installed, else
  ``/proc/self/statm``; ``ru_maxrss`` gives the process-wide peak.
* **Rates** are medians over repeats of a timed block, after warm-up (tracing is never timed).
"""

import datetime
import json
import os
import platform
import resource
import statistics
import sys
import threading
import time

RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


# --- machine -------------------------------------------------------------------------------------
def matmul_gflops(n=2048, repeats=5, dtype="float32", seconds=0.5):
    """Dense ``n x n`` matmul rate of this machine in GFLOP/s (median of ``repeats`` timed blocks).

    Runs on TensorFlow's default device (the GPU if there is one) with its default thread pools,
    i.e. what the training step gets. Each block runs about ``seconds``.
    """
    import tensorflow as tf

    a = tf.random.stateless_normal((n, n), seed=(1, 2), dtype=dtype)
    b = tf.random.stateless_normal((n, n), seed=(3, 4), dtype=dtype)

    @tf.function
    def mm(x, y, k):
        acc = tf.zeros((), dtype)
        for _ in tf.range(k):  # a loop inside the graph: no Python overhead between matmuls
            acc += tf.reduce_sum(tf.matmul(x, y)[:1, :1])
        return acc

    mm(a, b, tf.constant(1)).numpy()  # trace and warm up
    start = time.perf_counter()
    mm(a, b, tf.constant(2)).numpy()
    per = max((time.perf_counter() - start) / 2, 1e-6)
    k = tf.constant(max(1, int(seconds / per)))
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        mm(a, b, k).numpy()
        rates.append(2.0 * n**3 * int(k) / (time.perf_counter() - start) / 1e9)
    return statistics.median(rates)


def machine_info():
    """What the numbers were measured on: CPU, cores, load, devices and library versions."""
    import keras
    import tensorflow as tf

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    gpus = []
    for gpu in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        gpus.append(details.get("device_name", gpu.name))
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()]
        if hasattr(os, "getloadavg")
        else None,
        "gpus": gpus,
        "device": gpus[0] if gpus else f"CPU ({os.cpu_count()} cores): {cpu}",
        "python": sys.version.split()[0],
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "platform": platform.platform(),
    }


def source_digests(*modules):
    """``{module: sha256 of its file, first 12 hex}``: which code the numbers were measured on."""
    import hashlib
    import importlib

    out = {}
    for name in modules:
        path = importlib.import_module(name).__file__
        with open(path, "rb") as f:
            out[name] = hashlib.sha256(f.read()).hexdigest()[:12]
    return out


# --- memory --------------------------------------------------------------------------------------
def rss_mb():
    """Current resident set size of this process in MiB."""
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    except ImportError:
        pass
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError):
        return max_rss_mb()


def max_rss_mb():
    """Peak resident set size of this process so far in MiB (``ru_maxrss``)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return (
        peak / 2**20 if sys.platform == "darwin" else peak / 2**10
    )  # bytes on macOS, KiB on Linux


class PeakMemory:
    """Context manager sampling RSS in a thread; ``start_mb``, ``peak_mb``, ``growth_mb`` after it.

    A sampler is needed because ``ru_maxrss`` only ever grows over the whole process, so it cannot
    tell one measured section from the next.
    """

    def __init__(self, interval=0.005):
        self.interval = interval
        self.start_mb = self.peak_mb = 0.0
        self._stop = threading.Event()

    def _sample(self):
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, rss_mb())
            self._stop.wait(self.interval)

    def __enter__(self):
        self.start_mb = self.peak_mb = rss_mb()
        self._stop.clear()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, rss_mb())
        return False

    @property
    def growth_mb(self):
        return self.peak_mb - self.start_mb


# --- FLOPs ---------------------------------------------------------------------------------------
def _prod(values):
    out = 1
    for v in values:
        out *= int(v)
    return out


def layer_flops(layer):
    """Forward FLOPs of one call of ``layer`` for one sample (see the module docstring)."""
    from keras import layers

    kind = type(layer).__name__
    if isinstance(layer, layers.Conv2DTranspose) or kind.endswith("Transpose"):
        in_shape = layer.input.shape
        kernel = _prod(layer.kernel_size)
        return 2 * kernel * in_shape[-1] * layer.filters * _prod(in_shape[1:-1])
    if isinstance(layer, (layers.SeparableConv2D, layers.SeparableConv1D)):
        in_ch = layer.input.shape[-1]
        out_shape = layer.output.shape
        depth = (
            2 * _prod(layer.kernel_size) * in_ch * layer.depth_multiplier * _prod(out_shape[1:-1])
        )
        point = 2 * in_ch * layer.depth_multiplier * layer.filters * _prod(out_shape[1:-1])
        return depth + point
    if isinstance(layer, (layers.DepthwiseConv2D, layers.DepthwiseConv1D)):
        out_shape = layer.output.shape
        return 2 * _prod(layer.kernel_size) * out_shape[-1] * _prod(out_shape[1:-1])
    if isinstance(layer, (layers.Conv1D, layers.Conv2D, layers.Conv3D)):
        in_ch = layer.input.shape[-1]
        out_shape = layer.output.shape
        groups = getattr(layer, "groups", 1) or 1
        return (
            2
            * _prod(layer.kernel_size)
            * (in_ch // groups)
            * layer.filters
            * _prod(out_shape[1:-1])
        )
    if isinstance(layer, layers.Dense):
        in_shape = layer.input.shape
        return 2 * in_shape[-1] * layer.units * _prod(in_shape[1:-1])
    return 0


def forward_flops(model, by_layer=False):
    """Forward FLOPs of ``model`` for one sample, summed over its layers.

    Nested models are entered and counted once each; a sub-model called several times inside
    ``model`` (a CycleGAN ``combined``) must be counted by the caller from the sub-models' counts.
    With ``by_layer``, returns ``(total, {layer name: flops})``.
    """
    import keras

    per_layer = {}
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            sub_total, sub = forward_flops(layer, by_layer=True)
            per_layer.update({f"{layer.name}/{k}": v for k, v in sub.items()})
        else:
            per_layer[layer.name] = layer_flops(layer)
    total = sum(per_layer.values())
    return (total, per_layer) if by_layer else total


# --- timing --------------------------------------------------------------------------------------
def cpu_seconds():
    """User + system CPU seconds of this process so far (all its threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def time_interleaved(steps, batches, n_steps, repeats):
    """Time several step functions taking turns step by step, so outside load hits all alike.

    ``steps`` is ``{name: step}``; each ``step(*batch)`` must return only after its device work is
    done (a step that returns Python floats). Each repeat runs ``n_steps`` rounds, each round one
    step of every function, the order rotating from round to round. Returns ``{name: {"wall":
    [seconds per repeat], "cpu": [process CPU seconds per repeat]}}``.
    """
    names = list(steps)
    out = {name: {"wall": [], "cpu": []} for name in names}
    i = 0
    for _ in range(repeats):
        wall = dict.fromkeys(names, 0.0)
        cpu = dict.fromkeys(names, 0.0)
        for _ in range(n_steps):
            k = i % len(names)
            for name in names[k:] + names[:k]:
                batch = batches[i % len(batches)]
                c0, t0 = cpu_seconds(), time.perf_counter()
                steps[name](*batch)
                wall[name] += time.perf_counter() - t0
                cpu[name] += cpu_seconds() - c0
            i += 1
        for name in names:
            out[name]["wall"].append(wall[name])
            out[name]["cpu"].append(cpu[name])
    return out


def summarize(wall_per_block, n_steps, batch_size, cpu_per_block=None):
    """Median and spread of steps/s and images/s (and CPU ms per step) from the timed blocks."""
    rates = [n_steps / s for s in wall_per_block]
    median = statistics.median(rates)
    out = {
        "steps_per_s": median,
        "steps_per_s_min": min(rates),
        "steps_per_s_max": max(rates),
        "steps_per_s_all": rates,
        "ms_per_step": 1000.0 / median,
        "images_per_s": median * batch_size,
    }
    if cpu_per_block is not None:
        out["cpu_ms_per_step"] = 1000.0 * statistics.median(cpu_per_block) / n_steps
    return out


# --- output --------------------------------------------------------------------------------------
def timestamp():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def write_results(name, data, results_dir=None):
    """Write ``<name>-<timestamp>.json`` and ``<name>-latest.json``; returns both paths."""
    results_dir = results_dir or RESULTS_DIR
    os.makedirs(results_dir, exist_ok=True)
    stamp = data.get("timestamp") or timestamp()
    paths = []
    for fname in (f"{name}-{stamp}.json", f"{name}-latest.json"):
        path = os.path.join(results_dir, fname)
        tmp = f"{path}.tmp"
        with open(tmp, "w") as f:
            json.dump(data, f, indent=2, default=_jsonable)
            f.write("\n")
        os.replace(tmp, path)
        paths.append(path)
    return paths


def read_latest(name, results_dir=None):
    """The last ``<name>-latest.json`` written, or ``None``."""
    path = os.path.join(results_dir or RESULTS_DIR, f"{name}-latest.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def _jsonable(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


def format_table(rows, columns):
    """A plain-text table: ``columns`` is a list of ``(header, key, format)``."""
    cells = [[h for h, _, _ in columns]]
    for row in rows:
        cells.append(
            [fmt.format(row[k]) if row.get(k) is not None else "-" for _, k, fmt in columns]
        )
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    lines = [
        "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
        for r in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
