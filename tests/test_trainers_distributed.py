"""The trainer contract under tf.distribute (tests/test_trainers.py has the rest): for every trainer
of tests/trainers.py, MirroredStrategy on two logical CPUs trains and resumes, and two
MultiWorkerMirroredStrategy workers on 127.0.0.1 started through the real command line both finish,
and MirroredStrategy trains the CycleGAN exactly as the default strategy does.
A file of its own, so that pytest-xdist runs it beside the in-process contract."""

import glob
import json
import os
import subprocess
import sys

import pytest

from keras_gans import distribute
from tests.trainers import TRAINERS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAMES = sorted(TRAINERS)


@pytest.mark.slow
def test_mirrored_strategy_trains_and_resumes(tmp_path):
    script = os.path.join(ROOT, "tests", "contract_run.py")
    subprocess.run(
        [sys.executable, script, "mirrored", str(tmp_path), *NAMES],
        check=True,
        cwd=ROOT,
        timeout=900,
    )
    result = json.loads((tmp_path / "mirrored.json").read_text())
    for name in (n for n in NAMES if n != "cyclegan"):
        r = result[name]
        assert r["replicas"] == 2 and r["steps"] == 2 and r["finite"] and r["moved"] > 0, (name, r)
        assert r["logged_steps"] == [2], (name, r)  # resumed at step 1, trained step 2 only
    equal = result["equals_default"]  # the same batches and weights: the same training
    assert equal["replicas"] == [1, 2] and equal["restored_step"] == 1, equal
    assert equal["steps"] == 3 and equal["moved"] > 1e-4, equal
    assert equal["loss_diff"] < 1e-4 and equal["weight_diff"] < 1e-4, equal


@pytest.mark.slow
@pytest.mark.multiprocess
def test_two_workers_through_the_cli_both_finish(tmp_path):
    """Each trainer's real command line, ``--strategy multiworker``, on two workers; one process
    pair serves every trainer (tests/multiworker_cli.py)."""
    command = [sys.executable, os.path.join(ROOT, "tests", "multiworker_cli.py"), str(tmp_path)]
    codes = distribute.launch_local(
        command + NAMES, n_workers=2, timeout=900, log_dir=str(tmp_path / "logs")
    )
    logs = {
        os.path.basename(p): open(p).read()[-1500:] for p in glob.glob(str(tmp_path / "logs" / "*"))
    }
    assert codes == [0, 0], logs
    for name in NAMES:
        summary = json.loads((tmp_path / name / "summary.json").read_text())
        assert summary["steps"] == 2, (name, summary)
