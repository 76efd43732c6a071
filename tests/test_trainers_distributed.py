"""The trainer contract under tf.distribute (tests/test_trainers.py has the rest): for every trainer
of tests/trainers.py, MirroredStrategy on two logical CPUs trains and resumes, and two
MultiWorkerMirroredStrategy workers on 127.0.0.1 started through the real command line both finish.
A file of its own, so that pytest-xdist runs it beside the in-process contract."""

import glob
import json
import os
import subprocess
import sys

import pytest

from keras_gans import distribute
from tests.trainers import CLI, TRAINERS

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
    for name in NAMES:
        r = result[name]
        assert r["replicas"] == 2 and r["steps"] == 2 and r["finite"] and r["moved"] > 0, (name, r)


@pytest.mark.slow
@pytest.mark.multiprocess
@pytest.mark.parametrize("name", NAMES)
def test_two_workers_through_the_cli_both_finish(name, tmp_path):
    command = [
        sys.executable,
        "-m",
        *CLI[name],
        "--strategy",
        "multiworker",
        "--output-dir",
        str(tmp_path / "run"),
    ]
    codes = distribute.launch_local(
        command, n_workers=2, timeout=600, log_dir=str(tmp_path / "logs")
    )
    logs = {
        os.path.basename(p): open(p).read()[-1500:] for p in glob.glob(str(tmp_path / "logs" / "*"))
    }
    assert codes == [0, 0], logs
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["steps"] == 2
