"""Subprocess entry for tests/test_trainers_distributed.py: one MultiWorkerMirroredStrategy worker
(from ``TF_CONFIG``) that trains every named trainer of tests/trainers.py through its real command
line, ``main(argv)`` of its module, one after the other.

``python tests/multiworker_cli.py OUT NAME [NAME ...]``: each trainer writes to ``OUT/<name>``.
One process per worker serves all trainers, since starting TensorFlow costs more than a tiny run.
"""

import importlib
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.trainers import CLI  # noqa: E402


def run(out, names):
    for name in names:
        start = time.time()
        module, *argv = CLI[name]
        argv += ["--strategy", "multiworker", "--output-dir", os.path.join(out, name)]
        importlib.import_module(module).main(argv)
        print(f"{name}: done in {time.time() - start:.1f} s", flush=True)


if __name__ == "__main__":
    run(sys.argv[1], sys.argv[2:])
