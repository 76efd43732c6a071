"""Report files written atomically: JSON, CSV, markdown, NumPy archives and figures' bytes.

Each writer fills a temporary file in the target's folder, flushes it to the disk and renames it
over the target (``os.replace`` is atomic on one file system), so a crash or a full disk mid-write
leaves the previous file whole (a killed process may leave a ``.NAME.*.tmp`` file beside it).
"""

import csv
import io
import json
import os
import tempfile

import numpy as np


def _default(value):
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (set, tuple)):
        return list(value)
    return str(value)


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _atomic(path, mode, write):
    """Call ``write(file)`` on a temporary file in ``path``'s folder, then rename it to ``path``."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, mode, **({"newline": ""} if "b" not in mode else {})) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())  # or a power cut after the rename could leave an empty file
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; reports are for sharing
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def write_text(path, text):
    """Write ``text`` to ``path`` atomically; returns ``path``."""
    return _atomic(path, "w", lambda f: f.write(text))


def write_bytes(path, data):
    """Write ``data`` (bytes, e.g. an encoded image) to ``path`` atomically; returns ``path``."""
    return _atomic(path, "wb", lambda f: f.write(data))


def write_npz(path, **arrays):
    """``np.savez`` of ``arrays`` to ``path`` atomically."""
    return _atomic(path, "wb", lambda f: np.savez(f, **arrays))


def write_json(path, data):
    """``data`` as indented JSON (NumPy scalars and arrays become numbers and lists)."""
    return write_text(path, json.dumps(data, indent=2, default=_default) + "\n")


def write_csv(path, rows, columns=None):
    """``rows`` (dicts) as CSV with a header; ``columns`` default to the keys in first-seen order."""
    if columns is None:
        columns = list(dict.fromkeys(k for row in rows for k in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, restval="", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return write_text(path, buffer.getvalue())


def write_markdown(path, text):
    """A markdown report (``text`` ends with one newline)."""
    return write_text(path, text.rstrip("\n") + "\n")


def jsonable(data):
    """``data`` as it reads back from JSON (tuples become lists, NumPy scalars numbers)."""
    return json.loads(json.dumps(data, default=_default))


def read_json(path):
    with open(path) as f:
        return json.load(f)


class LossLog:
    """``losses.csv``: one row per step; columns grow as new values (e.g. FID) appear."""

    def __init__(self, path):
        self.path = path
        self.columns = []
        if os.path.exists(path):
            with open(path, newline="") as f:
                self.columns = next(csv.reader(f), [])

    def rows(self):
        if not os.path.exists(self.path):
            return []
        with open(self.path, newline="") as f:
            return list(csv.DictReader(f))

    def truncate_after(self, step):
        """Drop rows past ``step`` (written after the checkpoint a run resumes from)."""
        if os.path.exists(self.path):
            kept = [r for r in self.rows() if int(float(r["step"])) <= step]
            write_csv(self.path, kept, self.columns)

    def append(self, row):
        new = [k for k in row if k not in self.columns]
        if new or not os.path.exists(self.path):
            rows = self.rows()
            self.columns += new
            write_csv(self.path, rows, self.columns)
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, self.columns, restval="").writerow(
                {k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()}
            )
