"""Image reading, the unpaired (Berkeley) pipeline, downloads and the built-in fruit sample."""

import hashlib
import io
import logging
import os
import zipfile

import numpy as np
import pytest
from PIL import Image

from data_loaders import download as dl
from data_loaders.images import BadImageError, NoImagesError, SkipReport, list_images, load_image
from data_loaders.sample import make_fruit_sample
from data_loaders.unpaired import DataLoader, UnpairedImages, resolve_dataset


def _berkeley(root, n=4, size=24):
    for split in ("trainA", "trainB", "testA", "testB"):
        os.makedirs(root / split)
        for i in range(n):
            color = (200, 30, 30) if split.endswith("A") else (250, 150, 0)
            arr = np.full((size, size + 8, 3), color, np.uint8)
            arr[:, : size // 2] //= 2  # a left/right asymmetry makes flips visible
            Image.fromarray(arr).save(root / split / f"{i}.jpg")
    return root


def test_modes_become_upright_rgb_in_range(tmp_path):
    Image.new("L", (10, 6), 255).save(tmp_path / "gray.png")
    Image.new("RGBA", (10, 6), (0, 0, 0, 0)).save(tmp_path / "clear.png")
    Image.new("CMYK", (10, 6), (0, 0, 0, 0)).save(tmp_path / "cmyk.jpg")
    Image.new("I;16", (10, 6), 300).save(tmp_path / "deep.png")
    for name in ("gray.png", "clear.png", "cmyk.jpg", "deep.png"):
        img = load_image(tmp_path / name, (8, 8))
        assert img.shape == (8, 8, 3) and img.dtype == np.float32
        assert img.min() >= -1.0 and img.max() <= 1.0
    assert load_image(tmp_path / "clear.png").mean() == pytest.approx(1.0)  # alpha on white


def test_exif_rotation_is_applied(tmp_path):
    img = Image.new("RGB", (20, 10), (255, 0, 0))
    exif = img.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to view"
    img.save(tmp_path / "rot.jpg", exif=exif.tobytes())
    assert load_image(tmp_path / "rot.jpg").shape == (20, 10, 3)  # upright: portrait


def test_bad_files_are_named(tmp_path, caplog):
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.png").write_text("not an image")
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (1, 2, 3)).save(buf, "JPEG")
    (tmp_path / "cut.jpg").write_bytes(buf.getvalue()[:200])
    for name in ("empty.jpg", "text.png", "cut.jpg"):
        with pytest.raises(BadImageError, match=name):
            load_image(tmp_path / name)
    with pytest.raises(NoImagesError, match="no image files"):
        list_images(_empty(tmp_path))
    with pytest.raises(NoImagesError, match="not found"):
        list_images(tmp_path / "missing")


def _empty(tmp_path):
    path = tmp_path / "empty_dir"
    path.mkdir()
    return path


def test_unpaired_pipeline_is_seeded_scaled_and_skips_bad_files(tmp_path, caplog):
    root = _berkeley(tmp_path / "data")
    (root / "trainA" / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    report = SkipReport()
    data = UnpairedImages(str(root), (16, 16), report=report)
    assert data.n_batches(2) == 2
    with caplog.at_level(logging.WARNING):
        batches = [list(data.dataset(2, seed=3, epoch=e).as_numpy_iterator()) for e in (0, 0, 1)]
    a0 = np.concatenate([b[0] for b in batches[0]])
    assert a0.shape[1:] == (16, 16, 3) and a0.min() >= -1 and a0.max() <= 1
    assert all(np.array_equal(x[0], y[0]) for x, y in zip(batches[0], batches[1]))  # same seed
    if any(p.endswith("broken.jpg") for p in data.epoch_order(2, 3, 0)[0]):
        assert "broken.jpg" in caplog.text and len(report) >= 1
    with pytest.raises(BadImageError, match="broken.jpg"):
        UnpairedImages(str(root), (16, 16), strict=True)


def test_flips_happen_and_follow_the_seed(tmp_path):
    root = _berkeley(tmp_path / "data", n=8)
    data = UnpairedImages(str(root), (16, 16))
    _, _, flips_a, _ = data.epoch_order(1, seed=0, epoch=0)
    assert 0 < flips_a.sum() < len(flips_a)
    batches = list(data.dataset(1, seed=0, epoch=0).as_numpy_iterator())
    for (a, _), flipped in zip(batches, flips_a):
        left_darker = a[0, :, :4].mean() < a[0, :, -4:].mean()
        assert left_darker != bool(flipped)


def test_keras_gan_dataloader_methods(tmp_path):
    root = _berkeley(tmp_path / "data")
    loader = DataLoader(data_dir=str(root), img_res=(16, 16), seed=0)
    assert loader.load_data("A", batch_size=3, is_testing=True).shape == (3, 16, 16, 3)
    pairs = list(loader.load_batch(batch_size=2))
    assert len(pairs) == loader.n_batches == 2 and pairs[0][1].shape == (2, 16, 16, 3)
    assert loader.load_img(str(root / "testB" / "0.jpg")).shape == (1, 16, 16, 3)


def test_missing_layout_and_unknown_dataset_are_clear_errors(tmp_path):
    with pytest.raises(NoImagesError, match="trainA"):
        resolve_dataset(data_dir=str(tmp_path))
    with pytest.raises(ValueError, match="unknown dataset"):
        resolve_dataset("apples_and_pears")


def test_berkeley_download_from_a_local_archive_once(tmp_path, monkeypatch):
    src = _berkeley(tmp_path / "src" / "apple2orange")
    archive = tmp_path / "apple2orange.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for path in src.rglob("*.jpg"):
            z.write(path, path.relative_to(tmp_path / "src"))
    monkeypatch.setenv("KERAS_GANS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KERAS_GANS_BERKELEY_URL", f"file://{tmp_path}/{{name}}.zip")
    root = resolve_dataset("apple2orange")
    assert len(os.listdir(os.path.join(root, "trainB"))) == 4
    archive.unlink()  # a second call must not download again
    assert resolve_dataset("apple2orange") == root


def test_offline_download_says_how_to_place_files(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_GANS_HOME", str(tmp_path / "home"))
    with pytest.raises(dl.DownloadError, match="by hand"):
        resolve_dataset("horse2zebra")
    assert not list((tmp_path / "home").rglob("*.part"))


def test_corrupt_archive_and_checksum_are_reported(tmp_path):
    (tmp_path / "bad.zip").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(dl.DownloadError, match="not a valid zip"):
        dl.extract_zip(str(tmp_path / "bad.zip"), str(tmp_path / "x"))
    (tmp_path / "f.bin").write_bytes(b"abc")
    with pytest.raises(dl.DownloadError, match="checksum mismatch: sha256 ba7816bf") as err:
        dl.download((tmp_path / "f.bin").as_uri(), str(tmp_path / "copy.bin"), sha256="0" * 64)
    assert "\n" not in str(err.value) and os.listdir(tmp_path) == ["f.bin"]  # no .part left
    right = hashlib.sha256(b"abc").hexdigest().upper()
    assert dl.download((tmp_path / "f.bin").as_uri(), str(tmp_path / "copy.bin"), sha256=right)
    assert (tmp_path / "copy.bin").read_bytes() == b"abc"


def test_downloads_go_through_keras_get_file(tmp_path, monkeypatch):
    calls = []

    def get_file(fname, origin, **kwargs):
        calls.append((fname, origin, kwargs))
        path = os.path.join(kwargs["cache_dir"], kwargs["cache_subdir"], fname)
        open(path, "wb").write(b"abc")
        return path

    monkeypatch.setattr(dl.keras.utils, "get_file", get_file)
    sha = hashlib.sha256(b"abc").hexdigest()
    dest = str(tmp_path / "a.zip")
    assert dl.download("https://example.org/a.zip", dest, sha256=sha) == dest
    assert dl.download("https://example.org/a.zip", dest, sha256=sha) == dest  # cached
    ((fname, origin, kwargs),) = calls
    assert (fname, origin, kwargs["file_hash"]) == ("a.zip.part", "https://example.org/a.zip", sha)
    assert kwargs["hash_algorithm"] == "sha256" and os.listdir(tmp_path) == ["a.zip"]


def test_cyclegan_cli_refuses_an_archive_with_another_sha256(tmp_path, monkeypatch, capsys):
    from keras_gans import cyclegan

    with zipfile.ZipFile(tmp_path / "apple2orange.zip", "w") as z:
        z.writestr("apple2orange/trainA/0.txt", "not an image")
    monkeypatch.setenv("KERAS_GANS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KERAS_GANS_BERKELEY_URL", f"file://{tmp_path}/{{name}}.zip")
    for sha, expected in (("0" * 64, "checksum mismatch"), ("xyz", "64 hexadecimal digits")):
        with pytest.raises(SystemExit) as exit_:
            cyclegan.main(["--dataset", "apple2orange", "--sha256", sha])
        lines = capsys.readouterr().err.strip().splitlines()
        assert exit_.value.code == 2 and len(lines) == 1 and expected in lines[0], lines
    assert not (tmp_path / "home").exists() or not list((tmp_path / "home").rglob("*.zip*"))


def test_fruit_sample_is_deterministic_and_two_colours(tmp_path):
    a = make_fruit_sample(str(tmp_path / "a"), n_train=3, n_test=1, size=32)
    b = make_fruit_sample(str(tmp_path / "b"), n_train=3, n_test=1, size=32)
    for split in ("trainA", "trainB", "testA"):
        for name in os.listdir(os.path.join(a, split)):
            assert np.array_equal(
                np.asarray(Image.open(os.path.join(a, split, name))),
                np.asarray(Image.open(os.path.join(b, split, name))),
            )
    apples = np.stack(
        [load_image(os.path.join(a, "trainA", f)) for f in os.listdir(os.path.join(a, "trainA"))]
    )
    oranges = np.stack(
        [load_image(os.path.join(a, "trainB", f)) for f in os.listdir(os.path.join(a, "trainB"))]
    )
    # Oranges carry much more green than red apples: the domains differ visibly in colour.
    assert oranges[..., 1].mean() > apples[..., 1].mean() + 0.1
