"""Downloads with a progress bar, verification, a cache, and a clear offline message."""

import hashlib
import os
import urllib.error
import urllib.request
import zipfile

from tqdm.auto import tqdm

from keras_gans.errors import KerasGansError


class DownloadError(KerasGansError, RuntimeError):
    """A dataset could not be fetched; the message says how to place the files by hand."""


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
    """Fetch ``url`` to ``dest`` once (kept if present and valid); returns ``dest``.

    The file is written to ``dest.part`` and renamed only when complete (and, given ``sha256``,
    verified), so an interrupted download is never mistaken for a finished one.
    """
    if os.path.exists(dest) and (sha256 is None or sha256sum(dest) == sha256):
        return dest
    os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
    part = f"{dest}.part"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(part, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=os.path.basename(dest)) as bar:
                for block in iter(lambda: response.read(1 << 16), b""):
                    out.write(block)
                    bar.update(len(block))
    except (urllib.error.URLError, OSError, TimeoutError) as err:
        if os.path.exists(part):
            os.remove(part)
        raise DownloadError(f"could not download {url} ({err}). {manual_hint}".strip()) from err
    if sha256 is not None and sha256sum(part) != sha256:
        os.remove(part)
        raise DownloadError(f"{url}: checksum mismatch (expected sha256 {sha256}). {manual_hint}")
    os.replace(part, dest)
    return dest


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
