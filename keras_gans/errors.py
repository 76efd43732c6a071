"""The known failures: errors a user can fix, which the command line prints as one line.

Every error class a user can meet through a bad option, file or folder derives from
:class:`KerasGansError`; ``keras_gans.cli`` prints ``error: <message>`` and exits with code 2 for
them, and shows a traceback only for anything else (or with ``--debug``).
:class:`TrainingInterrupted` is not a failure: a run stopped by a signal, resumable.
"""

import errno


class KerasGansError(Exception):
    """A known failure whose message names the bad file or option."""


class ConfigError(KerasGansError, ValueError):
    """An option or argument that cannot work (a size, a count, a class name)."""


class CheckpointError(KerasGansError, RuntimeError):
    """A checkpoint that cannot be restored into this run (other hyper-parameters, unreadable)."""


class DivergenceError(KerasGansError, RuntimeError):
    """A loss became NaN or Inf."""


class DiskFullError(KerasGansError, OSError):
    """No space left on the device (or quota) while writing a checkpoint, model or report."""


def is_disk_full(err):
    """True if ``err`` is a full disk or quota: an ``OSError`` with ENOSPC / EDQUOT, or TensorFlow's
    ``ResourceExhaustedError``, which carries only the message for this."""
    if getattr(err, "errno", None) in (errno.ENOSPC, errno.EDQUOT):
        return True
    return any(text in str(err) for text in ("No space left on device", "Disk quota exceeded"))


class TrainingInterrupted(KeyboardInterrupt):
    """SIGTERM / SIGINT (Ctrl-C, a notebook's interrupt) stopped a run after a finished step and a
    checkpoint; calling ``run()`` again, or the same command, resumes. It is a ``KeyboardInterrupt``
    so that ``except Exception`` blocks do not swallow it; the command line exits with
    :attr:`exit_code` (128 + the signal number: 143 for SIGTERM, 130 for SIGINT)."""

    def __init__(self, message, signum):
        super().__init__(message)
        self.signum = signum
        self.exit_code = 128 + int(signum)
