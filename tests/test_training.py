"""The shared core without a model: the loss log on resume, atomic report files, the CLI runner."""

import csv
import json
import os
import subprocess
import sys

import pytest

from keras_gans import cli, reports
from keras_gans.errors import ConfigError, KerasGansError
from keras_gans.training import LossLog

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_loss_log_grows_columns_and_truncates_after_the_resumed_step(tmp_path):
    log = LossLog(str(tmp_path / "losses.csv"))
    for step in (1, 2, 3):
        log.append({"step": step, "epoch": 0, "D_loss": 0.5 * step})
    log.append({"step": 4, "epoch": 0, "D_loss": 2.0, "fid": 12.5})  # a new column appears
    log.truncate_after(2)
    with open(log.path) as f:
        rows = list(csv.DictReader(f))
    assert [r["step"] for r in rows] == ["1", "2"] and rows[1]["D_loss"] == "1"
    assert LossLog(log.path).columns == ["step", "epoch", "D_loss", "fid"]


def test_report_writers_replace_files_whole(tmp_path, monkeypatch):
    path = tmp_path / "report.json"
    reports.write_json(str(path), {"a": 1})

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="No space"):
        reports.write_json(str(path), {"a": 2})
    monkeypatch.undo()
    assert json.loads(path.read_text()) == {"a": 1}
    assert os.listdir(tmp_path) == ["report.json"]  # the temporary file was removed
    reports.write_csv(
        str(tmp_path / "runs.csv"), [{"seed": 0, "acc": 0.5}, {"seed": 1, "auc": 0.7}]
    )
    assert (tmp_path / "runs.csv").read_text().splitlines() == ["seed,acc,auc", "0,0.5,", "1,,0.7"]


def test_seeds_mean_a_list_everywhere():
    assert cli.seeds("0,1,2") == [0, 1, 2] and cli.seeds("2") == [2] and cli.seeds("3 4") == [3, 4]
    for bad in ("", "a,b"):
        with pytest.raises(Exception, match="seed"):
            cli.seeds(bad)


def _commands(ran):
    def fail(args):
        raise ConfigError(f"--size {args.size} is not a multiple of\n16")

    return [
        cli.Command("train", "train it", lambda p: p.add_argument("--size", type=int), fail),
        cli.Command("other", "another", lambda p: None, lambda args: ran.append("other")),
    ]


def test_runner_defaults_to_the_first_command_and_prints_known_errors_in_one_line(capsys):
    ran = []
    assert cli.main("prog", "test", _commands(ran), ["other"]) is None and ran == ["other"]
    with pytest.raises(SystemExit) as exit_info:
        cli.main("prog", "test", _commands(ran), ["--size", "40"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert err == "error: --size 40 is not a multiple of 16\n"
    with pytest.raises(KerasGansError):
        cli.main("prog", "test", _commands(ran), ["train", "--size", "40", "--debug"])
    with pytest.raises(SystemExit) as exit_info:
        cli.main("prog", "test", _commands(ran), ["train", "--size", "forty"])
    assert exit_info.value.code == 2 and "invalid int value" in capsys.readouterr().err


def test_training_options_refuse_zero_and_negative_numbers(capsys):
    import argparse

    from keras_gans.cyclegan import CycleGAN

    parser = cli.add_training_args(argparse.ArgumentParser(), CycleGAN)
    for argv in (
        ["--batch-size", "0"],
        ["--epochs", "-1"],
        ["--max-steps", "-2"],
        ["--accumulate", "0"],
    ):
        with pytest.raises(SystemExit):
            parser.parse_args(argv)
        assert "must be" in capsys.readouterr().err
    args = parser.parse_args([])
    assert args.batch_size == CycleGAN.default_batch_size and args.resume


def test_python_m_keras_gans_lists_every_entry_point_and_each_has_a_main():
    import importlib

    from keras_gans.__main__ import REPORTS

    out = subprocess.run(
        [sys.executable, "-m", "keras_gans"], capture_output=True, text=True, cwd=ROOT, check=True
    ).stdout
    for _, module, _ in REPORTS:
        assert f"python -m {module}" in out
        assert callable(importlib.import_module(module).main), module
