"""One run per output folder, and a clean stop on SIGTERM / SIGINT.

* :class:`RunLock`: ``OUTPUT/run.lock`` holds the pid, host and command of the run writing there.
  A second run on the folder is refused at once (:func:`refuse_if_locked`, called before any model
  is built); a lock left by a dead process of this host is taken over with a warning. The lock goes
  on any exit that Python sees (an exception, ``SystemExit``, Ctrl-C); after SIGKILL it stays and is
  taken over by the next run.
* :class:`RunGuard`: :meth:`keras_gans.training.GANTrainer.run` holds the lock through it and, in the
  main thread, turns SIGTERM and SIGINT into a request that the loop honours after the current step:
  a checkpoint is written and :class:`~keras_gans.errors.TrainingInterrupted` raised (exit code
  143 / 130 on the command line). A second signal stops at once, without a checkpoint.
"""

import contextlib
import datetime
import json
import logging
import os
import signal
import socket
import sys
import threading

from keras_gans.errors import KerasGansError, TrainingInterrupted

log = logging.getLogger(__name__)

LOCK_NAME = "run.lock"
SIGNALS = (signal.SIGTERM, signal.SIGINT)


class RunLockedError(KerasGansError, RuntimeError):
    """Another live run holds the output folder."""


def _start_time(pid):
    """The process's start time (clock ticks since boot, Linux), to tell a reused pid; else None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rpartition(")")[2].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid, started=None):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    now = _start_time(pid)
    return started is None or now is None or now == started


def _read(path):
    """The lock's content, ``{}`` if it is unreadable (a crash between creating and writing it),
    ``None`` if there is none."""
    try:
        with open(path) as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}


def _in_use(path, holder):
    return (
        f"{os.path.dirname(path)} is in use by another run (pid {holder.get('pid')} on "
        f"{holder.get('host')} since {holder.get('started')}: {holder.get('command')!r}); wait for "
        f"it to end or use another --output-dir (if that run is gone, delete {path})"
    )


def _is_stale(holder):
    """A lock of this host whose process is gone (or unreadable); another host's is never stale."""
    if not holder:
        return True
    if holder.get("host") != socket.gethostname():
        return False
    pid = holder.get("pid")
    return not isinstance(pid, int) or not _alive(pid, holder.get("start_time"))


def refuse_if_locked(output_dir):
    """Raise :class:`RunLockedError` if a live run (not a stale lock) holds ``output_dir``."""
    path = os.path.join(output_dir, LOCK_NAME)
    holder = _read(path)
    if holder is not None and not _is_stale(holder):
        raise RunLockedError(_in_use(path, holder))


class RunLock:
    """``OUTPUT/run.lock`` for the life of a run (a context manager)."""

    def __init__(self, output_dir):
        self.path = os.path.join(output_dir, LOCK_NAME)
        self.held = False

    def acquire(self):
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        pid = os.getpid()
        content = {
            "pid": pid,
            "host": socket.gethostname(),
            "start_time": _start_time(pid),
            "started": datetime.datetime.now().isoformat(timespec="seconds"),
            "command": " ".join(sys.argv)[:300],
        }
        for _ in range(2):  # a second try after removing a stale lock
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = _read(self.path)
                if not _is_stale(holder):
                    raise RunLockedError(_in_use(self.path, holder)) from None
                log.warning(
                    "taking over %s, left by a process that is gone (%s)", self.path, holder
                )
                with contextlib.suppress(FileNotFoundError):
                    os.remove(self.path)
                continue
            with os.fdopen(fd, "w") as f:
                json.dump(content, f)
            self.held = True
            return self
        raise RunLockedError(_in_use(self.path, _read(self.path) or {}))  # another run won a race

    def release(self):
        """Remove the lock if it is still ours."""
        if self.held and (_read(self.path) or {}).get("pid") == os.getpid():
            with contextlib.suppress(FileNotFoundError):
                os.remove(self.path)
        self.held = False

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


class RunGuard:
    """The lock (on the chief) and the SIGTERM / SIGINT handlers of one ``run()`` call."""

    def __init__(self, trainer):
        self.trainer = trainer
        self.signum = None
        self._previous = {}
        self._lock = RunLock(trainer.output_dir) if trainer.is_chief else None

    def _handle(self, signum, frame):
        if self.signum is not None:  # asked twice: stop now, without a checkpoint
            self._restore_handlers()
            raise KeyboardInterrupt(f"{signal.Signals(signum).name} again: stopped at once")
        self.signum = signum
        log.warning(
            "%s: stopping after this step and writing a checkpoint (send it again to stop at once)",
            signal.Signals(signum).name,
        )

    def _restore_handlers(self):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def __enter__(self):
        if self._lock is not None:
            self._lock.acquire()
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.getsignal(s) for s in SIGNALS}
            for s in SIGNALS:
                signal.signal(s, self._handle)
        return self

    def stop_if_asked(self):
        """After a finished step: if a signal came, write a checkpoint and raise
        :class:`TrainingInterrupted` naming it."""
        if self.signum is None:
            return
        trainer = self.trainer
        if trainer._saved_step() == trainer.step:
            path = trainer._saved_checkpoint[0]
        else:
            path = trainer.save_checkpoint()
        name = signal.Signals(self.signum).name
        message = (
            f"{name} at step {trainer.step}: checkpoint written to {path}; run the same command "
            "again (or call run() again) to resume"
        )
        log.warning(message)
        raise TrainingInterrupted(message, self.signum)

    def __exit__(self, exc_type, exc, tb):
        self._restore_handlers()
        if self._lock is not None:
            self._lock.release()
        if exc_type is None and self.signum is not None:  # came while the final files were written
            name = signal.Signals(self.signum).name
            message = f"{name} during the final writes; the run had finished at step "
            raise TrainingInterrupted(message + f"{self.trainer.step}", self.signum)
