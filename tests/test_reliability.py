"""Reliability: resume after SIGKILL, a stop on SIGTERM / Ctrl-C, one run per folder, saves that a
kill or a full disk cannot tear, damaged or mismatched checkpoints, bad data, a real NaN.

The NaN stop, roll-back and resume of every trainer are in tests/test_trainers.py; bad command-line
input for every entry point in tests/test_bad_input.py."""

import errno
import json
import logging
import os
import random
import signal
import socket
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from data_loaders.images import BadImageError, NoImagesError
from data_loaders.sample import make_fruit_sample
from keras_gans import cyclegan, gan, load_model, run_guard
from keras_gans.cyclegan import CycleGAN
from keras_gans.errors import CheckpointError, DiskFullError, DivergenceError, TrainingInterrupted
from tests.trainers import TRAINERS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def fruit(tmp_path_factory):
    return make_fruit_sample(str(tmp_path_factory.mktemp("fruit")), n_train=8, n_test=2, size=32)


def tiny(data, out, **kw):
    kw.setdefault("checkpoint_every", 2)
    return CycleGAN(
        data_dir=data, img_rows=16, img_cols=16, gf=4, df=4, output_dir=str(out), seed=0, **kw
    )


@pytest.mark.slow
def test_sigkill_and_resume_matches_an_uninterrupted_run(tmp_path, lesions, monkeypatch):
    """A CLI run killed with SIGKILL after a checkpoint, then run again, ends with the weights of
    an uninterrupted run of the same options (here in-process)."""
    out, steps = tmp_path / "killed", 40
    monkeypatch.setenv("KERAS_GANS_RUN_EAGERLY", "0")  # 40 steps: traced is faster
    argv = _gan_argv(out, steps, lesions)
    argv[argv.index("--checkpoint-every") + 1] = "4"
    command = [sys.executable, "-m", "keras_gans.gan", *argv]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = out / "checkpoints" / "state.json"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if state.exists() and json.loads(state.read_text())["step"] >= 4:
            time.sleep(random.uniform(0.0, 0.3))
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = json.loads(state.read_text())["step"]
    assert 4 <= killed_at < steps
    subprocess.run(command, check=True, cwd=ROOT, timeout=300, capture_output=True)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == steps
    rows = [int(line.split(",")[0]) for line in (out / "losses.csv").read_text().splitlines()[1:]]
    assert rows == list(range(1, steps + 1))  # no step lost or logged twice
    reference = gan.main(_gan_argv(tmp_path / "reference", steps, lesions))
    for name, model in reference.models.items():
        got = load_model(str(out / "models" / f"{name}.h5"))
        for a, b in zip(model.weights, got.weights):
            np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=f"{name} {a.path}")


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


def test_a_resumed_run_counts_the_seconds_its_checkpoint_had_spent(fruit, tmp_path):
    writer = tiny(fruit, tmp_path)
    writer._started -= 100.0  # as if it had trained for 100 s
    writer.step = 2
    writer.save_checkpoint()
    resumed = tiny(fruit, tmp_path)
    assert resumed.restore_checkpoint() and resumed.step == 2
    assert 100.0 <= resumed.seconds() < 200.0
    older = tiny(fruit, tmp_path)  # a checkpoint older than state.json's: its time is unknown
    older.restore_checkpoint(str(tmp_path / "checkpoints" / "ckpt-2"))
    older.step = 4
    older.save_checkpoint()
    again = tiny(fruit, tmp_path)
    again.restore_checkpoint(str(tmp_path / "checkpoints" / "ckpt-2"))
    assert again.seconds() < 100.0


def test_a_real_nan_diverges_before_any_checkpoint(fruit, tmp_path):
    gan = tiny(fruit, tmp_path, checkpoint_every=0)
    gan.combined.optimizer.learning_rate.assign(float("inf"))
    with pytest.raises(DivergenceError, match=r"diverged at step \d+: .*no checkpoint was written"):
        gan.train(epochs=2, batch_size=2, sample_interval=1000)


def test_broken_files_are_skipped_named_and_counted(tmp_path, caplog):
    root = make_fruit_sample(str(tmp_path / "data"), n_train=2, n_test=2, size=32)
    (tmp_path / "data" / "trainA" / "zero.png").write_bytes(b"")
    (tmp_path / "data" / "trainA" / "notes.jpg").write_text("this is not a JPEG")
    good = (tmp_path / "data" / "trainA" / "apple_0000.png").read_bytes()
    (tmp_path / "data" / "trainA" / "cut.png").write_bytes(good[: len(good) // 3])
    for i in range(3):  # as many B images as A files, so every epoch meets every A file
        (tmp_path / "data" / "trainB" / f"extra{i}.png").write_bytes(good)
    with caplog.at_level(logging.WARNING):
        gan = tiny(root, tmp_path / "out", checkpoint_every=0)
        summary = gan.train(epochs=1, batch_size=1, sample_interval=1000)
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


def test_a_checkpoint_of_other_models_is_called_a_mismatch_not_unreadable(fruit, tmp_path):
    writer = tiny(fruit, tmp_path)
    writer.step = 2
    writer.save_checkpoint()
    os.remove(tmp_path / "checkpoints" / "state.json")  # as an older version wrote them: no config
    other = CycleGAN(data_dir=fruit, img_rows=32, img_cols=32, gf=8, df=4, output_dir=str(tmp_path))
    with pytest.raises(CheckpointError, match=r"ckpt-2 does not fit the models built here"):
        other.restore_checkpoint()


# --- SIGTERM / SIGINT ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def lesions(tmp_path_factory):
    """32 small images in melanoma/ and nevus/: an ISIC folder the GAN's command line reads."""
    root = tmp_path_factory.mktemp("lesions")
    rng = np.random.default_rng(0)
    for i in range(32):
        folder = root / ("melanoma", "nevus")[i % 2]
        folder.mkdir(exist_ok=True)
        pixels = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
        keras.utils.save_img(folder / f"{i:02d}.png", pixels, scale=False)
    return str(root)


def _gan_argv(out, steps, data):
    return [
        *("--data-dir", data, "--img-size", "16", "--gf", "4", "--df", "4", "--seed", "0"),
        "--latent-dim",
        "8",
        *("--batch-size", "2", "--max-steps", str(steps), "--sample-interval", "0"),
        *("--checkpoint-every", "0", "--output-dir", str(out)),
    ]


def _assert_same_weights(a, b):
    for name, model in a.models.items():
        for x, y in zip(model.weights, b.models[name].weights):
            np.testing.assert_array_equal(x.numpy(), y.numpy(), err_msg=f"{name} {x.path}")


@pytest.mark.slow
def test_sigterm_stops_after_a_step_with_a_checkpoint_and_the_run_resumes_exactly(
    tmp_path, lesions, monkeypatch
):
    """A real SIGTERM to a training process: it finishes the step, writes a checkpoint (though
    --checkpoint-every 0), names it and exits 143; run again, it ends where an uninterrupted run
    ends."""
    out, steps = tmp_path / "stopped", 120
    monkeypatch.setenv("KERAS_GANS_RUN_EAGERLY", "0")  # 120 steps: traced is ten times faster
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "keras_gans.gan", *_gan_argv(out, steps, lesions)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    losses = out / "losses.csv"
    deadline = time.time() + 300
    while proc.poll() is None and time.time() < deadline:
        if losses.exists() and len(losses.read_text().splitlines()) > 3:  # a header, 3 steps
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the run ended before the signal"
    sent = time.time()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and time.time() - sent < 30, err[-2000:]
    last = err.strip().splitlines()[-1]
    stopped_at = json.loads((out / "checkpoints" / "state.json").read_text())["step"]
    assert 3 <= stopped_at < steps
    assert last.startswith(f"stopped: SIGTERM at step {stopped_at}: checkpoint written to ")
    assert last.endswith("to resume") and f"ckpt-{stopped_at}" in last
    assert not (out / run_guard.LOCK_NAME).exists()
    resumed = gan.main(_gan_argv(out, steps, lesions))
    reference = gan.main(_gan_argv(tmp_path / "reference", steps, lesions))
    assert resumed.step == reference.step == steps
    rows = [int(line.split(",")[0]) for line in losses.read_text().splitlines()[1:]]
    assert rows == list(range(1, steps + 1))
    _assert_same_weights(resumed, reference)


def test_ctrl_c_in_a_notebook_checkpoints_and_run_continues(tmp_path):
    """A KeyboardInterrupt (SIGINT, as a notebook's interrupt sends) during a step: the step ends, a
    checkpoint is written, the handlers are restored; run() again continues to the end, with the
    weights of an uninterrupted run."""
    trainer = TRAINERS["gan"](str(tmp_path / "stopped"), seed=0, checkpoint_every=0, resume=False)
    train_step = trainer.train_step

    def interrupted_step(batch):
        if trainer.step == 2:
            os.kill(os.getpid(), signal.SIGINT)
        return train_step(batch)

    trainer.train_step = interrupted_step
    with pytest.raises(TrainingInterrupted, match=r"SIGINT at step 3: checkpoint .*ckpt-3") as info:
        trainer.run(max_steps=6, batch_size=2, sample_interval=0)
    assert isinstance(info.value, KeyboardInterrupt) and info.value.exit_code == 130
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    assert trainer.step == 3 and not (tmp_path / "stopped" / run_guard.LOCK_NAME).exists()
    assert trainer.run(max_steps=6, batch_size=2, sample_interval=0)["steps"] == 6
    reference = TRAINERS["gan"](str(tmp_path / "reference"), seed=0, checkpoint_every=0)
    reference.run(max_steps=6, batch_size=2, sample_interval=0)
    _assert_same_weights(trainer, reference)
    rows = trainer.loss_log.rows()
    assert [int(r["step"]) for r in rows] == list(range(1, 7))


# --- one run per output folder ----------------------------------------------------------------------
def _write_lock(folder, pid, host=None):
    folder.mkdir(parents=True, exist_ok=True)
    holder = {"pid": pid, "host": host or socket.gethostname(), "command": "python -m other"}
    (folder / run_guard.LOCK_NAME).write_text(json.dumps(holder))


def test_a_second_run_on_a_folder_is_refused_at_once(tmp_path, capsys, lesions):
    out = tmp_path / "busy"
    _write_lock(out, os.getppid())  # a live process that is not this one
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        gan.main(_gan_argv(out, 2, lesions))
    err = capsys.readouterr().err.strip().splitlines()
    assert info.value.code == 2 and len(err) == 1, err
    assert err[0].startswith(f"error: {out} is in use by another run (pid {os.getppid()} on ")
    assert os.listdir(out) == [run_guard.LOCK_NAME]  # nothing written, nothing built
    _write_lock(out, os.getpid(), host="another-host")  # cannot tell if it lives: refused too
    with pytest.raises(run_guard.RunLockedError, match="another-host"):
        TRAINERS["gan"](str(out))


def test_a_dead_runs_lock_is_taken_over_held_during_the_run_and_released(tmp_path, caplog):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    out = tmp_path / "stale"
    _write_lock(out, gone.pid)
    trainer = TRAINERS["gan"](str(out), checkpoint_every=0)
    train_step, held = trainer.train_step, []

    def step(batch):
        held.append(json.loads((out / run_guard.LOCK_NAME).read_text())["pid"])
        return train_step(batch)

    trainer.train_step = step
    with caplog.at_level(logging.WARNING):
        trainer.run(max_steps=2, batch_size=2, sample_interval=0)
    assert "taking over" in caplog.text and str(gone.pid) in caplog.text
    assert held == [os.getpid()] * 2 and not (out / run_guard.LOCK_NAME).exists()
    with pytest.raises(ValueError):  # released on an error too
        trainer.run(max_steps=2, batch_size=2, sample_interval=0, epochs=-1)
    assert not (out / run_guard.LOCK_NAME).exists()


# --- atomic saves, a full disk -----------------------------------------------------------------------
_KILLED_SAVE = """
import resource, signal, sys
import keras
import numpy as np
from keras_gans.saving import save_model
model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(512, name="dense")], name="m")
model.get_layer("dense").kernel.assign(np.ones((64, 512), "float32"))
paths = save_model(model, sys.argv[1])
model.get_layer("dense").kernel.assign(np.zeros((64, 512), "float32"))
limit = 32 * 1024  # a file may not grow past it: the kernel kills the process (SIGXFSZ) mid-write
signal.signal(signal.SIGXFSZ, signal.SIG_DFL)  # Python ignores SIGXFSZ; the default is to die
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
save_model(model, sys.argv[1])
"""


def test_a_process_killed_in_the_middle_of_a_save_leaves_the_previous_model(tmp_path):
    stem = tmp_path / "models" / "m"
    proc = subprocess.run(
        [sys.executable, "-c", _KILLED_SAVE, str(stem)], cwd=ROOT, capture_output=True, timeout=300
    )
    assert proc.returncode == -signal.SIGXFSZ, proc.stderr.decode()[-2000:]
    leftovers = [f for f in os.listdir(stem.parent) if f.endswith(".tmp.h5")]
    assert leftovers and os.path.getsize(stem.parent / leftovers[0]) == 32 * 1024  # torn mid-write
    for ext in ("h5", "keras"):
        kernel = load_model(f"{stem}.{ext}").get_layer("dense").kernel.numpy()
        assert (kernel == 1).all(), ext  # the first save, whole


def test_a_full_disk_during_a_checkpoint_is_one_line_and_keeps_the_previous(tmp_path, monkeypatch):
    trainer = TRAINERS["gan"](str(tmp_path), seed=0, checkpoint_every=2)
    trainer.run(max_steps=2, batch_size=2, sample_interval=0)
    before = {w.path: w.numpy() for w in trainer.generator.weights}
    manager = trainer._checkpoint()
    real_save = keras.Model.save

    def full_disk_save(self, path, *args, **kwargs):  # a few bytes written, then no space left
        with open(path, "wb") as f:
            f.write(b"\x89HDF\r\n")
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(keras.Model, "save", full_disk_save)
    first = trainer.generator.weights[0]
    first.assign(first + 1.0)
    trainer.step = 3  # its checkpoint is written, then the models meet the full disk
    with pytest.raises(DiskFullError, match=r"step 3 .*latest readable checkpoint is .*ckpt-3 \("):
        trainer.save_checkpoint()
    monkeypatch.setattr(keras.Model, "save", real_save)
    models = tmp_path / "models"
    assert not [f for f in os.listdir(models) if ".tmp" in f]
    saved = load_model(models / "generator.h5")
    for w in saved.weights:
        np.testing.assert_array_equal(w.numpy(), before[w.path])

    def torn_checkpoint(checkpoint_number=None, **kwargs):  # TF's own error for ENOSPC
        (tmp_path / "checkpoints" / f"ckpt-{checkpoint_number}.index").write_bytes(b"\0" * 7)
        raise tf.errors.ResourceExhaustedError(None, None, "ckpt-4: No space left on device")

    monkeypatch.setattr(manager, "save", torn_checkpoint)
    trainer.step = 4
    with pytest.raises(DiskFullError, match=r"ckpt-3 \(step 3\)"):
        trainer.save_checkpoint()
    fresh = TRAINERS["gan"](str(tmp_path), seed=1)
    assert fresh.restore_checkpoint() and fresh.step == 3
    np.testing.assert_array_equal(fresh.generator.weights[0].numpy(), before[first.path] + 1.0)
