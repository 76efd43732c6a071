"""One strategy for every trainer: CPU, one GPU, several GPUs, several machines, TPU.

Every trainer in keras_gans builds its models, optimizers and compiled ``train_on_batch`` models inside
``strategy.scope()`` and treats ``batch_size`` as the *global* batch. Keras 3's own ``train_on_batch``
hands the whole batch to every replica, so with more than one replica :func:`train_on_batch` below splits
the global batch into one slice per replica and runs the model's own ``train_step`` on each (the loss is
scaled by ``1 / num_replicas`` inside Keras, so the summed gradient is the global-batch gradient).
"""

import json
import logging
import os

import keras
import numpy as np
import tensorflow as tf

from keras_gans.errors import ConfigError

log = logging.getLogger(__name__)

STRATEGIES = ("auto", "default", "mirrored", "multiworker", "tpu")
PRECISIONS = ("mixed_float16", "mixed_bfloat16")


_MULTIWORKER = None


def get_strategy(name="auto"):
    """A ``tf.distribute.Strategy`` from its name, or ``name`` itself if it already is one.

    ``auto``: MirroredStrategy when more than one GPU is visible, else the default strategy;
    ``default``: the default strategy (one GPU or the CPU); ``mirrored``: all local GPUs (or the
    logical CPUs when none); ``multiworker``: MultiWorkerMirroredStrategy from ``TF_CONFIG``;
    ``tpu``: TPUStrategy on the TPU named by ``TPU_NAME`` (or the local one).
    """
    global _MULTIWORKER
    if isinstance(name, tf.distribute.Strategy):
        strategy = name
    elif name in (None, "auto"):
        gpus = tf.config.list_logical_devices("GPU")
        strategy = (
            tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()
        )
    elif name == "default":
        strategy = tf.distribute.get_strategy()
    elif name == "mirrored":
        devices = [d.name for d in tf.config.list_logical_devices("GPU")]
        devices = devices or [d.name for d in tf.config.list_logical_devices("CPU")]
        strategy = tf.distribute.MirroredStrategy(devices)
    elif name == "multiworker":
        check_strategy(name)
        # TensorFlow configures collective ops once per process: a second strategy would fail,
        # so every trainer of one process (a notebook, a driver script) shares the first.
        if _MULTIWORKER is None:
            _MULTIWORKER = tf.distribute.MultiWorkerMirroredStrategy()
        strategy = _MULTIWORKER
    elif name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(os.environ.get("TPU_NAME", ""))
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        strategy = tf.distribute.TPUStrategy(resolver)
    else:
        raise ConfigError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")
    log.info(
        "distribution strategy: %s with %d replica(s)",
        type(strategy).__name__,
        strategy.num_replicas_in_sync,
    )
    return strategy


def check_strategy(name):
    """Refuse, before anything is built, ``multiworker`` without a usable ``TF_CONFIG``."""
    if name != "multiworker":
        return
    example = (
        '(e.g. {"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
        '"task": {"type": "worker", "index": 0}}); see README "Scaling out"'
    )
    text = os.environ.get("TF_CONFIG")
    if not text:
        raise ConfigError(
            f"--strategy multiworker needs the TF_CONFIG environment variable {example}"
        )
    try:
        config = json.loads(text)
        ok = isinstance(config["cluster"], dict) and isinstance(config["task"], dict)
    except (ValueError, KeyError, TypeError):
        ok = False
    if not ok:
        raise ConfigError(f"TF_CONFIG {text!r} is not JSON with a cluster and a task {example}")


def is_chief(strategy=None):
    """True on the one worker that writes logs, images and models."""
    strategy = strategy or tf.distribute.get_strategy()
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    return task_type in (None, "chief") or (task_type == "worker" and task_id == 0)


def worker_config():
    """``(task_type, task_index, n_workers)`` from ``TF_CONFIG`` (``(None, 0, 1)`` without it)."""
    config = json.loads(os.environ.get("TF_CONFIG", "{}"))
    task = config.get("task", {})
    n = sum(len(v) for v in config.get("cluster", {}).values()) or 1
    return task.get("type"), int(task.get("index", 0)), n


def set_precision(policy=None):
    """Set Keras' global dtype policy for ``--mixed-precision``; returns the policy name in force.

    ``mixed_float16`` needs a GPU (on a CPU it would be far slower, not faster), so there it is refused
    with a clear error; ``mixed_bfloat16`` runs everywhere. Keras' ``compile`` wraps the optimizer in
    a ``LossScaleOptimizer`` under ``mixed_float16``; builders keep their last layer in float32.
    """
    if policy in (None, "", "float32", "none"):
        keras.mixed_precision.set_global_policy("float32")
        return "float32"
    if policy not in PRECISIONS:
        raise ConfigError(
            f"--mixed-precision must be one of {', '.join(PRECISIONS)}, got {policy!r}"
        )
    if policy == "mixed_float16" and not tf.config.list_physical_devices("GPU"):
        raise ConfigError(
            "--mixed-precision mixed_float16 needs a GPU (none is visible); "
            "use mixed_bfloat16 on a CPU or TPU, or leave the flag off"
        )
    keras.mixed_precision.set_global_policy(policy)
    return policy


def jit_setting(jit):
    """``jit_compile`` for ``Model.compile``: XLA on request; 'auto' lets Keras decide."""
    if jit in (True, "true", "on", 1):
        return True
    if jit in (False, None, "false", "off", 0):
        return False
    return "auto"


def _split(value, index, n):
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return type(value)(_split(v, index, n) for v in value)
    value = np.asarray(value)
    per = value.shape[0] // n
    return value[index * per : (index + 1) * per]


def _check_divisible(x, n):
    first = x[0] if isinstance(x, (list, tuple)) else x
    if np.shape(first)[0] % n:
        raise ValueError(
            f"the global batch ({np.shape(first)[0]}) must be divisible by the number of "
            f"replicas ({n}); choose --batch-size as a multiple of {n}"
        )


def train_on_batch(model, x, y, strategy=None):
    """``model.train_on_batch(x, y, return_dict=True)`` with the global batch split across replicas.

    On one replica this is exactly Keras' ``train_on_batch``. On several it runs ``model.train_step``
    under ``strategy.run`` with replica ``i`` taking slice ``i`` of the batch, in one traced function
    cached on the model; the returned logs are averaged over replicas.
    """
    strategy = strategy or model.distribute_strategy
    n = strategy.num_replicas_in_sync
    if n == 1:
        # Outside a strategy scope Keras makes the compiled loss and metric variables in the first
        # trace of the train function, and variables made in a trace make tf.function trace it
        # twice (a tiny CycleGAN's first step: 3 s more); built here first (once: compile() resets
        # train_function), it traces once. A Keras without this private method only traces twice
        # (tests/test_distribute.py tells).
        build = getattr(model, "_symbolic_build", None)
        if build is not None and model.train_function is None and not model.run_eagerly:
            build(data_batch=(x, y, None))
        return model.train_on_batch(x, y, return_dict=True)
    _check_divisible(x, n)
    fn = getattr(model, "_keras_gans_distributed_step", None)
    if fn is None:
        model._maybe_symbolic_build(data_batch=(_split(x, 0, n), _split(y, 0, n), None))

        @tf.function(reduce_retracing=True)
        def fn(data):
            out = strategy.run(model.train_step, args=(data,))
            return {k: strategy.reduce("MEAN", v, axis=None) for k, v in out.items()}

        model._keras_gans_distributed_step = fn
    model.reset_metrics()
    data = strategy.experimental_distribute_values_from_function(
        lambda ctx: (
            _split(x, ctx.replica_id_in_sync_group, n),
            _split(y, ctx.replica_id_in_sync_group, n),
        )
    )
    logs = fn(data)
    return {k: float(v) for k, v in logs.items()}


def free_ports(n):
    """``n`` free TCP ports on 127.0.0.1 (bound, read, released)."""
    import socket

    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def launch_local(command, n_workers=2, timeout=600, env=None, log_dir=None):
    """Run ``command`` as ``n_workers`` MultiWorkerMirroredStrategy workers on this machine.

    Each worker gets its own ``TF_CONFIG`` on free 127.0.0.1 ports. If any worker fails, or the
    run outlasts ``timeout`` seconds, the others are terminated (then killed), so a failed worker
    never leaves its peers waiting forever in a collective. Returns the workers' exit codes.
    """
    import subprocess
    import time

    hosts = [f"127.0.0.1:{p}" for p in free_ports(n_workers)]
    procs = []
    try:
        for index in range(n_workers):
            worker_env = dict(os.environ if env is None else env)
            worker_env["TF_CONFIG"] = json.dumps(
                {"cluster": {"worker": hosts}, "task": {"type": "worker", "index": index}}
            )
            out = None
            if log_dir is not None:
                os.makedirs(log_dir, exist_ok=True)
                out = open(os.path.join(log_dir, f"worker{index}.log"), "w")
            procs.append(
                subprocess.Popen(
                    command, env=worker_env, stdout=out, stderr=subprocess.STDOUT if out else None
                )
            )
        deadline = time.time() + timeout
        while time.time() < deadline:
            codes = [p.poll() for p in procs]
            if all(c is not None for c in codes):
                return codes
            if any(c not in (None, 0) for c in codes):
                log.error("a worker failed (exit codes %s); stopping the others", codes)
                break
            time.sleep(0.2)
        else:
            log.error("workers did not finish within %s s; stopping them", timeout)
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    return [p.returncode for p in procs]


def main(argv=None):
    """``python -m keras_gans.distribute launch --workers N -- CMD ...``: a local multi-worker run."""
    import sys

    from keras_gans import cli  # cli imports this module

    parser = cli.Parser(prog="python -m keras_gans.distribute")
    parser.add_argument("action", choices=["launch"])
    parser.add_argument("--workers", type=cli.positive_int, default=2)
    parser.add_argument("--timeout", type=cli.positive_float, default=24 * 3600)
    parser.add_argument("--log-dir", default=None, help="one log file per worker (default: stdout)")
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--" not in argv:
        parser.error("give the worker command after --, e.g. -- python -m keras_gans.cyclegan ...")
    split = argv.index("--")
    args, command = parser.parse_args(argv[:split]), argv[split + 1 :]
    codes = launch_local(command, args.workers, args.timeout, log_dir=args.log_dir)
    print(f"worker exit codes: {codes}")
    sys.exit(max(abs(c or 0) for c in codes))


if __name__ == "__main__":
    main()
