"""The known failures: errors a user can fix, which the command line prints as one line.

Every error class a user can meet through a bad option, file or folder derives from
:class:`KerasGansError`; ``keras_gans.cli`` prints ``error: <message>`` and exits with code 2 for
them, and shows a traceback only for anything else (or with ``--debug``).
"""


class KerasGansError(Exception):
    """A known failure whose message names the bad file or option."""


class ConfigError(KerasGansError, ValueError):
    """An option or argument that cannot work (a size, a count, a class name)."""


class CheckpointError(KerasGansError, RuntimeError):
    """A checkpoint that cannot be restored into this run (other hyper-parameters, unreadable)."""


class DivergenceError(KerasGansError, RuntimeError):
    """A loss became NaN or Inf."""
