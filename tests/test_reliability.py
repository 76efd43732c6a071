"""Reliability: resume after SIGKILL, damaged or mismatched checkpoints, bad data, a real NaN.

The NaN stop, roll-back and resume of every trainer are in tests/test_trainers.py."""

import json
import logging
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from data_loaders.images import BadImageError, NoImagesError
from data_loaders.sample import make_fruit_sample
from keras_gans import cyclegan, load_model
from keras_gans.cyclegan import CycleGAN
from keras_gans.errors import CheckpointError, DivergenceError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def fruit(tmp_path_factory):
    return make_fruit_sample(str(tmp_path_factory.mktemp("fruit")), n_train=8, n_test=2, size=32)


def tiny(data, out, **kw):
    kw.setdefault("checkpoint_every", 2)
    return CycleGAN(
        data_dir=data, img_rows=32, img_cols=32, gf=4, df=4, output_dir=str(out), seed=0, **kw
    )


def _cli(data, out):
    return [
        sys.executable,
        "-m",
        "keras_gans.cyclegan",
        "--data-dir",
        data,
        "--img-size",
        "32",
        "--gf",
        "4",
        "--df",
        "4",
        "--epochs",
        "3",
        "--batch-size",
        "2",
        "--checkpoint-every",
        "2",
        "--seed",
        "0",
        "--sample-interval",
        "1000",
        "--output-dir",
        str(out),
    ]


@pytest.mark.slow
def test_sigkill_and_resume_matches_an_uninterrupted_run(fruit, tmp_path):
    """A CLI run killed with SIGKILL after a checkpoint, then run again, ends with the weights of
    an uninterrupted run of the same options (here in-process)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    out = tmp_path / "killed"
    proc = subprocess.Popen(
        _cli(fruit, out), cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    state = out / "checkpoints" / "state.json"
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        if state.exists() and json.loads(state.read_text())["step"] >= 2:
            time.sleep(random.uniform(0.0, 0.5))
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = json.loads(state.read_text())["step"]
    assert killed_at < 12
    subprocess.run(
        _cli(fruit, out), check=True, cwd=ROOT, env=env, timeout=600, capture_output=True
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 12 and summary["epochs"] == 3
    steps = [int(line.split(",")[0]) for line in (out / "losses.csv").read_text().splitlines()[1:]]
    assert steps == list(range(1, 13))  # no step lost or logged twice
    reference = tiny(fruit, tmp_path / "ref")
    reference.train(epochs=3, batch_size=2, sample_interval=1000)
    for name in ("g_AB", "g_BA", "d_A", "d_B"):
        got = load_model(str(out / "models" / f"{name}.h5"))
        for a, b in zip(getattr(reference, name).weights, got.weights):
            np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6, err_msg=f"{name} {a.path}")


def test_a_truncated_latest_checkpoint_falls_back_to_the_previous(fruit, tmp_path, caplog):
    writer = tiny(fruit, tmp_path)
    for writer.step in (2, 4):  # checkpoints need no training
        writer.save_checkpoint()
    data = sorted((tmp_path / "checkpoints").glob("ckpt-4.data-*"))
    assert data, os.listdir(tmp_path / "checkpoints")
    data[0].write_bytes(data[0].read_bytes()[:100])
    gan = tiny(fruit, tmp_path)
    with caplog.at_level(logging.WARNING):
        assert gan.restore_checkpoint()
    assert gan.step == 2 and "ckpt-4" in caplog.text


def test_a_real_nan_diverges_before_any_checkpoint(fruit, tmp_path):
    gan = tiny(fruit, tmp_path, checkpoint_every=0)
    gan.combined.optimizer.learning_rate.assign(float("inf"))
    with pytest.raises(DivergenceError, match=r"diverged at step \d+: .*no checkpoint was written"):
        gan.train(epochs=2, batch_size=2, sample_interval=1000)


def test_broken_files_are_skipped_named_and_counted(tmp_path, caplog):
    root = make_fruit_sample(str(tmp_path / "data"), n_train=6, n_test=2, size=32)
    (tmp_path / "data" / "trainA" / "zero.png").write_bytes(b"")
    (tmp_path / "data" / "trainA" / "notes.jpg").write_text("this is not a JPEG")
    good = (tmp_path / "data" / "trainA" / "apple_0000.png").read_bytes()
    (tmp_path / "data" / "trainA" / "cut.png").write_bytes(good[: len(good) // 3])
    for i in range(3):  # as many B images as A files, so every epoch meets every A file
        (tmp_path / "data" / "trainB" / f"extra{i}.png").write_bytes(good)
    with caplog.at_level(logging.WARNING):
        gan = tiny(root, tmp_path / "out", checkpoint_every=0)
        summary = gan.train(epochs=3, batch_size=1, sample_interval=1000)
    assert summary["skipped_files"] == 3
    assert {os.path.basename(p) for p, _ in summary["skipped"]} == {
        "zero.png",
        "notes.jpg",
        "cut.png",
    }
    for name in ("zero.png", "notes.jpg", "cut.png"):
        assert name in caplog.text
    with pytest.raises(BadImageError, match="(zero|notes|cut)"):
        tiny(root, tmp_path / "strict", checkpoint_every=0, strict=True).data_loader  # noqa: B018


def test_a_folder_without_usable_images_is_a_clear_error(tmp_path):
    for split in ("trainA", "trainB"):
        (tmp_path / split).mkdir()
    (tmp_path / "trainA" / "readme.txt").write_text("no images")
    with pytest.raises(NoImagesError, match="trainA"):
        tiny(str(tmp_path), tmp_path / "out").train(epochs=1)


def test_a_checkpoint_of_other_hyper_parameters_is_refused_naming_them(fruit, tmp_path, capsys):
    writer = tiny(fruit, tmp_path)
    writer.step = 2
    writer.save_checkpoint()
    other = CycleGAN(data_dir=fruit, img_rows=32, img_cols=32, gf=8, df=4, output_dir=str(tmp_path))
    with pytest.raises(CheckpointError, match=r"gf: 4 there, 8 here"):
        other.train(epochs=1, batch_size=2)
    argv = ["--data-dir", fruit, "--img-size", "32", "--gf", "4", "--df", "4", "--norm", "instance"]
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        cyclegan.main([*argv, "--output-dir", str(tmp_path), "--max-steps", "3"])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2 and len(err) == 1 and "norm: 'contrib' there" in err[0]
    assert json.loads((tmp_path / "checkpoints" / "state.json").read_text())["step"] == 2
