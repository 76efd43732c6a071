"""data_loaders.mnist: every source format, the hold-out split and the imbalance sampler."""

import gzip
import os

import numpy as np
import pytest
from PIL import Image

from data_loaders import mnist
from data_loaders.download import DownloadError
from data_loaders.images import BadImageError, SkipReport
from data_loaders.mnist import MNISTFormatError, imbalanced_subset, load_mnist, read_idx


def _digits(n, seed=0, size=28):
    """``n`` uint8 images whose pixel (0, 0) encodes the index, and labels 0..9 in turn."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, size, size), dtype=np.uint8)
    x[:, 0, 0] = np.arange(n)
    return x, (np.arange(n) % 10).astype(np.uint8)


def _write_idx(path, array):
    ndim = array.ndim
    header = bytes([0, 0, 0x08, ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def _write_idx_set(folder, prefix, x, y, gz):
    suffix = ".gz" if gz else ""
    _write_idx(os.path.join(folder, f"{prefix}-images-idx3-ubyte{suffix}"), x)
    _write_idx(os.path.join(folder, f"{prefix}-labels-idx1-ubyte{suffix}"), y)


def _scaled(x):
    return x.astype(np.float32)[..., None] / 255.0 * 2.0 - 1.0


@pytest.mark.parametrize("gz", [True, False])
def test_idx_train_and_test_files(tmp_path, gz):
    x_train, y_train = _digits(30, seed=1)
    x_test, y_test = _digits(20, seed=2)
    _write_idx_set(str(tmp_path), "train", x_train, y_train, gz)
    _write_idx_set(str(tmp_path), "t10k", x_test, y_test, gz)
    x, y = load_mnist(tmp_path, "train")
    assert x.dtype == np.float32 and y.dtype == np.int64 and x.shape == (30, 28, 28, 1)
    np.testing.assert_allclose(x, _scaled(x_train), atol=1e-6)
    np.testing.assert_array_equal(y, y_train)
    x, y = load_mnist(tmp_path, "test", value_range=(0.0, 1.0))
    np.testing.assert_allclose(x[..., 0], x_test / 255.0, atol=1e-6)
    np.testing.assert_array_equal(y, y_test)


def test_idx_test_files_only_gives_a_disjoint_deterministic_split(tmp_path):
    x_all, y_all = _digits(100)
    _write_idx_set(str(tmp_path), "t10k", x_all, y_all, gz=True)
    x_tr, y_tr = load_mnist(tmp_path, "train", value_range=(0, 255))
    x_te, y_te = load_mnist(tmp_path, "test", value_range=(0, 255))
    ids_tr, ids_te = x_tr[:, 0, 0, 0].astype(int), x_te[:, 0, 0, 0].astype(int)
    assert set(ids_tr).isdisjoint(ids_te) and len(ids_tr) + len(ids_te) == 100
    assert len(ids_te) == 30 and np.all(np.bincount(y_te) == 3)  # 30% of each digit
    np.testing.assert_array_equal(y_tr, y_all[ids_tr])
    again, _ = load_mnist(tmp_path, "test", value_range=(0, 255))
    np.testing.assert_array_equal(again, x_te)


def test_read_idx_rejects_bad_files(tmp_path):
    path = str(tmp_path / "t10k-images-idx3-ubyte")
    _write_idx(path, np.zeros((4, 28, 28), np.uint8))
    with open(path, "r+b") as f:
        f.truncate(100)
    with pytest.raises(MNISTFormatError, match="t10k-images"):
        read_idx(path)
    junk = tmp_path / "junk-images-idx3-ubyte"
    junk.write_bytes(b"\x89PNG not idx")
    with pytest.raises(MNISTFormatError, match="not an IDX file"):
        read_idx(str(junk))


def test_idx_missing_labels_is_named(tmp_path):
    _write_idx(str(tmp_path / "train-images-idx3-ubyte"), np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(MNISTFormatError, match="labels IDX file is missing"):
        load_mnist(tmp_path)


def test_keras_npz_file_and_folder(tmp_path):
    x_train, y_train = _digits(20, seed=3)
    x_test, y_test = _digits(10, seed=4)
    path = tmp_path / "mnist.npz"
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    for source in (path, tmp_path):
        x, y = load_mnist(source, "test")
        np.testing.assert_allclose(x, _scaled(x_test), atol=1e-6)
        np.testing.assert_array_equal(y, y_test)
    x, _ = load_mnist(path, "train", size=14)
    assert x.shape == (20, 14, 14, 1)


def _write_png_tree(root, per_digit=3, digits=(0, 1, 7)):
    for d in digits:
        os.makedirs(root / str(d), exist_ok=True)
        for i in range(per_digit):
            img = np.full((28, 28), (40 * i + d) % 256, np.uint8)
            mode = "RGB" if i == 1 else "L"  # any mode becomes gray
            Image.fromarray(img).convert(mode).save(root / str(d) / f"{i}.png")


def test_png_digit_folders(tmp_path):
    _write_png_tree(tmp_path / "train")
    _write_png_tree(tmp_path / "test", per_digit=2)
    (tmp_path / "test" / "7" / "broken.png").write_bytes(b"not a png")
    report = SkipReport()
    x, y = load_mnist(tmp_path, "test", value_range=(0, 255), report=report)
    assert sorted(y.tolist()) == [0, 0, 1, 1, 7, 7]
    assert len(report) == 1 and "broken.png" in report.skipped[0][0]
    np.testing.assert_allclose(sorted(x[y == 7, 0, 0, 0]), [7, 47], atol=0.5)
    with pytest.raises(BadImageError):
        load_mnist(tmp_path, "test", strict=True)
    x, y = load_mnist(tmp_path, "train", size=16)
    assert x.shape == (9, 16, 16, 1) and np.bincount(y).tolist()[:2] == [3, 3]


def test_png_folder_without_splits_uses_the_holdout(tmp_path):
    _write_png_tree(tmp_path, per_digit=10, digits=(2, 3))
    _, y_tr = load_mnist(tmp_path, "train")
    _, y_te = load_mnist(tmp_path, "test")
    assert np.bincount(y_te)[2:].tolist() == [3, 3] and np.bincount(y_tr)[2:].tolist() == [7, 7]


def test_default_is_the_scikit_learn_digits_split():
    x_tr, y_tr = load_mnist()
    x_te, y_te = load_mnist(split="test")
    assert x_tr.shape[1:] == (28, 28, 1) and len(x_tr) + len(x_te) == 1797
    assert 0.28 < len(x_te) / 1797 < 0.32 and set(y_te.tolist()) == set(range(10))
    assert x_tr.min() == -1.0 and x_tr.max() == 1.0
    assert np.all(x_tr[:, :3] == -1.0) and np.all(x_tr[:, :, -3:] == -1.0)  # MNIST-like padding


def test_keras_offline_error_says_what_to_do(monkeypatch):
    import keras

    def offline():
        raise OSError("network is unreachable")

    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    with pytest.raises(DownloadError, match="Offline, pass a folder"):
        load_mnist("keras")


def test_missing_or_empty_source_is_explained(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_mnist(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="holds no MNIST data"):
        load_mnist(tmp_path)
    with pytest.raises(ValueError, match="split"):
        load_mnist(split="validation")


def test_imbalanced_subset_counts_and_seeding():
    x = np.arange(600)[:, None]
    y = np.repeat(np.arange(6), 100)
    xs, ys = imbalanced_subset(x, y, {1: 1, 2: 30, 3: 30}, seed=5)
    assert np.bincount(ys, minlength=6).tolist() == [0, 1, 30, 30, 0, 0]
    assert np.all(y[xs[:, 0]] == ys) and len(set(xs[:, 0])) == 61  # no repeats
    again, _ = imbalanced_subset(x, y, {1: 1, 2: 30, 3: 30}, seed=5)
    other, _ = imbalanced_subset(x, y, {1: 1, 2: 30, 3: 30}, seed=6)
    np.testing.assert_array_equal(xs, again)
    assert not np.array_equal(np.sort(xs[:, 0]), np.sort(other[:, 0]))
    with pytest.raises(ValueError, match="digit 4: 101 examples asked for, 100 available"):
        imbalanced_subset(x, y, {4: 101})
    _, ys = imbalanced_subset(x, y, {4: 101, 5: 2}, strict=False)
    assert np.bincount(ys).tolist()[4:] == [100, 2]


def test_holdout_fraction_is_documented():
    assert mnist.HOLDOUT_FRACTION == 0.3 and "30%" in mnist.__doc__
