"""Bad input for every entry point, through its real command line (``main(argv)``; two cases also as
a real ``python -m`` process): one line ``error: ...`` naming the argument or file, exit code 2, no
traceback, nothing written and no run started. Also: unexpected faults are not disguised as known
ones (a library bug is not "a bad file", a crash is not "offline")."""

import importlib
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from data_loaders.mnist import load_mnist
from data_loaders.sample import make_fruit_sample
from keras_gans import cyclegan, saving
from keras_gans.gan import build_discriminator, build_generator

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--img-size", "16", "--gf", "4", "--df", "4"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """``{name: path}``: folders and model files, good and bad, made once."""
    root = tmp_path_factory.mktemp("bad_input")
    (root / "empty").mkdir()
    (root / "noimg").mkdir()
    (root / "noimg" / "readme.txt").write_text("no images here")
    rng = np.random.default_rng(0)
    for i in range(4):  # 4 lesions, 2 per class: too few for a batch of 64
        pixels = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
        for folder in (root / "lesions" / ("melanoma", "nevus")[i % 2], root / "images"):
            folder.mkdir(parents=True, exist_ok=True)
            keras.utils.save_img(folder / f"{i}.png", pixels, scale=False)
    make_fruit_sample(str(root / "fruit"), n_train=2, n_test=1, size=16)
    saving.save_model(build_generator(8, 16, 3, 4, name="generator"), root / "g", ("h5",))
    saving.save_model(build_discriminator(16, 3, 4, name="discriminator"), root / "d", ("h5",))
    saving.save_model(cyclegan.build_generator((16, 16, 3), 4, name="g_AB"), root / "cg", ("h5",))
    saving.save_model(
        cyclegan.build_discriminator((16, 16, 3), 4, name="d_A"), root / "cd", ("h5",)
    )
    (root / "empty.h5").write_bytes(b"")
    good = (root / "g.h5").read_bytes()
    (root / "truncated.h5").write_bytes(good[: len(good) // 2])
    (root / "foreign.h5").write_text("a text file, not a model")
    ckpt = root / "other_run" / "checkpoints"  # a checkpoint of another --gf
    ckpt.mkdir(parents=True)
    (ckpt / "checkpoint").write_text(
        'model_checkpoint_path: "ckpt-2"\nall_model_checkpoint_paths: "ckpt-2"\n'
    )
    config = {"architecture": "gan", "img_size": 16, "channels": 3, "latent_dim": 100}
    state = {"step": 2, "epoch": 0, "batch_in_epoch": 2, "config": {**config, "gf": 8, "df": 4}}
    (ckpt / "state.json").write_text(json.dumps(state))
    return {p.name.replace(".", "_"): str(p) for p in root.iterdir()}


# (case id, module, argv; {name} is a path of `files`, {out} a folder that must stay unmade,
#  what the one line must say)
CASES = [
    # a missing folder, an empty one, one holding no images
    ("missing-data-dir", "cyclegan", "--data-dir {empty}/nope --output-dir {out}", "nope"),
    ("empty-cyclegan", "cyclegan", "--data-dir {empty} --output-dir {out}", "{empty}"),
    ("no-images-gan", "gan", "--data-dir {noimg} --output-dir {out}", "{noimg}"),
    ("empty-cgan", "cgan", "--data-dir {empty} --output-dir {out}", "{empty}"),
    ("missing-anogan", "anogan", "train --data-dir {empty}/nope --output-dir {out}", "nope"),
    (
        "missing-mnist",
        "experiments.mnist_imbalance",
        "run --data-dir {empty}/x --output-dir {out}",
        "x",
    ),
    (
        "empty-harness",
        "experiments.lesion_harness",
        "run --data-dir {empty} --output-dir {out}",
        "{empty}",
    ),
    (
        "missing-harness",
        "experiments.lesion_harness",
        "split --data-dir {empty}/x --output {out}",
        "x",
    ),
    (
        "no-images-fid",
        "metrics",
        "fid --real {noimg} --fake {noimg} --output {out}/f.json",
        "{noimg}",
    ),
    ("missing-real-a", "metrics", "translation --real-a {empty}/x --real-b {empty}", "x"),
    (
        "missing-input",
        "cyclegan",
        "translate --model {cg_h5} --input {empty}/x --output {out}",
        "--input",
    ),
    (
        "empty-input",
        "anogan",
        "score --model {g_h5} --discriminator {d_h5} --input {empty} --output-dir {out}",
        "{empty}",
    ),
    # wrong types, negative or zero numbers
    ("epochs-text", "cyclegan", "--epochs abc", "--epochs"),
    ("batch-zero", "gan", "--batch-size 0", "--batch-size"),
    ("img-size-negative", "dcgan", "--img-size -64", "--img-size"),
    ("ema-decay-1.5", "biggan", "--ema-decay 1.5", "--ema-decay"),
    ("latent-zero", "cgan", "--latent-dim 0", "--latent-dim"),
    ("iterations-negative", "anogan", "train --iterations -1", "--iterations"),
    ("lambda-negative", "cyclegan", "--lambda-cycle -1", "--lambda-cycle"),
    ("seed-negative", "gan", "generate --model {g_h5} --output {out} --seed -1", "--seed"),
    ("n-zero", "mnist_generate", "generate --model {g_h5} --output {out} --n 0", "--n"),
    (
        "subset-text",
        "metrics",
        "kid --real {images} --fake {images} --subset-size x",
        "--subset-size",
    ),
    ("seeds-negative", "experiments.lesion_harness", "run --seeds 0,-1", "--seeds"),
    ("gan-steps-zero", "experiments.mnist_imbalance", "run --gan-steps 0", "--gan-steps"),
    ("workers-zero", "distribute", "launch --workers 0 -- true", "--workers"),
    # sizes that cannot work, a batch larger than the data
    ("cyclegan-size-24", "cyclegan", "--img-size 24 --output-dir {out}", "multiple of 16"),
    (
        "batch-over-data",
        "gan",
        "--data-dir {lesions} {tiny} --batch-size 64 --output-dir {out}",
        "--batch-size 64",
    ),
    (
        "batch-over-fruit",
        "cyclegan",
        "--data-dir {fruit} {tiny} --batch-size 64 --output-dir {out}",
        "--batch-size 64",
    ),
    # multi-worker without TF_CONFIG
    ("multiworker", "cyclegan", "--strategy multiworker --output-dir {out}", "TF_CONFIG"),
    (
        "multiworker-study",
        "experiments.mnist_imbalance",
        "run --strategy multiworker --output-dir {out}",
        "TF_CONFIG",
    ),
    # a checkpoint written with other hyper-parameters (nothing in it may change)
    (
        "other-checkpoint",
        "gan",
        "--data-dir {lesions} {tiny} --batch-size 2 --output-dir {other_run}",
        "gf: 8 there, 4 here",
    ),
    # a discriminator where a generator is expected
    (
        "d-as-g-generate",
        "gan",
        "generate --model {d_h5} --output {out}",
        "{d_h5} is not a generator",
    ),
    (
        "d-as-g-translate",
        "cyclegan",
        "translate --model {cd_h5} --input {images} --output {out}",
        "{cd_h5} is not a CycleGAN generator",
    ),
    (
        "d-as-g-biggan",
        "biggan",
        "generate --model {d_h5} --n 1 --output {out}",
        "{d_h5} is not a generator",
    ),
    (
        "d-as-g-anogan",
        "anogan",
        "score --model {d_h5} --discriminator {d_h5} --output-dir {out}",
        "{d_h5} is not a generator",
    ),
    (
        "g-as-d-anogan",
        "anogan",
        "score --model {g_h5} --discriminator {g_h5} --output-dir {out}",
        "{g_h5} is not a discriminator of (16, 16, 3) images",
    ),
    (
        "d-as-g-synthetic",
        "experiments.lesion_harness",
        "run --synthetic melanoma={d_h5} --output-dir {out}",
        "{d_h5}",
    ),
    (
        "unconditional-biggan",
        "biggan",
        "generate --model {g_h5} --n 1 --output {out}",
        "class-conditional",
    ),
    # a foreign, truncated or empty model file
    ("foreign-model", "gan", "generate --model {foreign_h5} --output {out}", "{foreign_h5}"),
    (
        "truncated-model",
        "cyclegan",
        "translate --model {truncated_h5} --input {images} --output {out}",
        "{truncated_h5}: truncated",
    ),
    (
        "empty-model",
        "cgan",
        "generate --model {empty_h5} --output {out}",
        "{empty_h5}: the file is empty",
    ),
    (
        "truncated-extractor",
        "metrics",
        "fid --real {images} --fake {images} --extractor {truncated_h5}:x --output {out}/f.json",
        "{truncated_h5}",
    ),
    (
        "empty-anogan",
        "anogan",
        "score --model {empty_h5} --discriminator {d_h5} --output-dir {out}",
        "{empty_h5}",
    ),
    # a --synthetic spec naming a missing file
    (
        "synthetic-missing-g",
        "experiments.lesion_harness",
        "run --synthetic melanoma={empty}/g.h5 --output-dir {out}",
        "{empty}/g.h5",
    ),
    (
        "synthetic-missing-file",
        "experiments.lesion_harness",
        "run --synthetic {empty}/G.h5 --output-dir {out}",
        "{empty}/G.h5",
    ),
    (
        "synthetic-missing-folder",
        "experiments.lesion_harness",
        "run --synthetic {empty}/x --output-dir {out}",
        "{empty}/x",
    ),
]
MODULES = {"mnist_generate": "experiments.mnist_imbalance"}


def _fill(text, files, out):
    values = {**files, "out": str(out), "tiny": " ".join(TINY)}
    return text.format(**values)


def _listing(folder):
    return sorted(
        os.path.relpath(os.path.join(d, f), folder) for d, _, fs in os.walk(folder) for f in fs
    )


@pytest.mark.parametrize("case, module, argv, expected", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    case, module, argv, expected, files, tmp_path, monkeypatch, capsys
):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)  # a default output folder would appear here
    out = tmp_path / "out"
    other_run = _listing(files["other_run"])
    main = importlib.import_module(f"keras_gans.{MODULES.get(module, module)}").main
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main(_fill(argv, files, out).split())
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if not line.startswith(("INFO ", "WARNING "))]
    assert info.value.code == 2 and len(lines) == 1, err
    assert lines[0].startswith("error: ") and _fill(expected, files, out) in lines[0], lines[0]
    assert "Traceback" not in err
    assert os.listdir(tmp_path) == [], os.listdir(tmp_path)  # no output folder, no default one
    assert _listing(files["other_run"]) == other_run


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["keras_gans.cyclegan", "--img-size", "24"], id="size"),
        pytest.param(
            [
                "keras_gans.cyclegan",
                "translate",
                "--model",
                "{truncated_h5}",
                "--input",
                "{images}",
            ],
            id="truncated-model",
            marks=pytest.mark.slow,  # a second TensorFlow start; the in-process table has the case
        ),
    ],
)
def test_a_real_process_prints_only_the_one_line(argv, files, tmp_path):
    argv = [_fill(a, files, tmp_path) for a in argv]
    if "translate" in argv:
        argv += ["--output", str(tmp_path / "out")]
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "TF_CONFIG")}
    proc = subprocess.run(
        [sys.executable, "-m", *argv],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert not (tmp_path / "out").exists()


# --- unexpected faults surface as themselves ----------------------------------------------------
def test_a_fault_in_the_loader_is_not_called_a_bad_file(monkeypatch):
    def bug(config, keep=frozenset()):
        raise TypeError("a bug in the translation")

    monkeypatch.setattr(saving, "_translate", bug)
    legacy = os.path.join(ROOT, "tests", "fixtures", "legacy", "contrib_generator.h5")
    with pytest.raises(TypeError, match="a bug in the translation"):
        saving.load_model(legacy)


def test_only_network_errors_are_called_offline(monkeypatch, tmp_path):
    from data_loaders.download import DownloadError
    from keras_gans import metrics

    def fails_with(err):
        def fail(*args, **kwargs):
            raise err

        return fail

    monkeypatch.setattr(keras.datasets.mnist, "load_data", fails_with(MemoryError("no memory")))
    with pytest.raises(MemoryError):
        load_mnist("keras")
    monkeypatch.setattr(
        keras.datasets.mnist, "load_data", fails_with(Exception("URL fetch failure"))
    )
    with pytest.raises(DownloadError, match="Offline"):
        load_mnist("keras")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))  # no cached weights: Keras would download
    monkeypatch.setattr(keras.applications, "InceptionV3", fails_with(RuntimeError("a bug")))
    with pytest.raises(RuntimeError, match="a bug"):
        metrics.inception_model()
    weights = tmp_path / "other.h5"
    weights.write_bytes(b"")
    monkeypatch.setattr(keras.applications, "InceptionV3", fails_with(ValueError("layer count")))
    with pytest.raises(metrics.InceptionWeightsError, match="from .*other.h5: layer count"):
        metrics.inception_model(weights=str(weights))
