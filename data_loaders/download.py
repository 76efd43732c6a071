"""Downloads through ``keras.utils.get_file`` (progress bar, sha256 verification), cached,
with a clear offline message."""

import hashlib
import os
import socket
import urllib.error
import zipfile

import keras

from keras_gans.errors import KerasGansError


class DownloadError(KerasGansError, RuntimeError):
    """A dataset could not be fetched; the message says how to place the files by hand."""


def is_network_error(err):
    """True for what a failed download raises: urllib, socket, SSL and timeout errors, and Keras'
    ``get_file``, which re-raises those as a bare ``Exception("URL fetch failure on ...")``."""
    if isinstance(err, (urllib.error.URLError, OSError, TimeoutError)):
        return True
    return type(err) is Exception and str(err).startswith("URL fetch failure")


def cache_root():
    """Where datasets are cached: ``$KERAS_GANS_HOME`` or ``~/.keras_gans``."""
    return os.path.abspath(os.environ.get("KERAS_GANS_HOME", os.path.expanduser("~/.keras_gans")))


def sha256sum(path, chunk=1 << 20):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def download(url, dest, sha256=None, manual_hint="", timeout=30):
    """Fetch ``url`` to ``dest`` once (kept if present and, given ``sha256``, matching); returns it.

    ``keras.utils.get_file`` fetches (with its progress bar) and, given ``sha256``, verifies. It
    writes to ``dest.part``, renamed only when complete and verified, so a download killed part-way
    is never mistaken for a finished one (``get_file`` itself would keep such a file as cached).
    """
    sha256 = sha256.lower() if sha256 else None  # get_file compares hex digests as strings
    if os.path.exists(dest) and (sha256 is None or sha256sum(dest) == sha256):
        return dest
    folder = os.path.dirname(os.path.abspath(dest))
    os.makedirs(folder, exist_ok=True)
    part = f"{dest}.part"
    options = {"file_hash": sha256, "hash_algorithm": "sha256"} if sha256 else {}
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)  # get_file takes no timeout; a stalled server must not hang
    try:
        keras.utils.get_file(
            os.path.basename(part),
            url,
            cache_dir=folder,
            cache_subdir="",
            force_download=True,
            **options,
        )
    except ValueError as err:  # get_file's verdict on the hash; it leaves the file behind
        got = sha256sum(part) if sha256 and os.path.exists(part) else None
        _remove(part)
        if got is None or got == sha256:
            raise
        message = f"{url}: checksum mismatch: sha256 {got}, expected {sha256}. {manual_hint}"
        raise DownloadError(message.strip()) from err
    except Exception as err:
        _remove(part)
        if not is_network_error(err):
            raise
        raise DownloadError(f"could not download {url} ({err}). {manual_hint}".strip()) from err
    finally:
        socket.setdefaulttimeout(previous)
    os.replace(part, dest)
    return dest


def _remove(path):
    if os.path.exists(path):
        os.remove(path)


def extract_zip(path, dest_dir):
    """Verify and extract a zip archive; a corrupt archive is removed and reported."""
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
            if bad is not None:
                raise zipfile.BadZipFile(f"corrupt member {bad}")
            archive.extractall(dest_dir)
    except zipfile.BadZipFile as err:
        os.remove(path)
        raise DownloadError(f"{path} is not a valid zip archive ({err}); it was removed") from err
    return dest_dir
