"""data_loaders.isic, isic_metadata and isic_sources: layouts, diagnoses, duplicates, cache, bad
files, the drawn sample, download, pipeline."""

import csv
import logging
import os
import stat

import numpy as np
import pytest
from PIL import Image

from data_loaders import isic, isic_metadata, isic_sources
from data_loaders.download import DownloadError
from data_loaders.images import BadImageError, NoImagesError, SkipReport
from keras_gans.errors import ConfigError


def _write_image(path, seed, size=(24, 20)):
    """A random RGB picture (distinct pixels per seed) in the format of the suffix."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return pixels


def _write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([header, *rows])


@pytest.fixture
def plain_dir(tmp_path):
    """The isic_dev layout: ``labels.csv`` + ``images/<id>.jpg``, with a pixel duplicate (PNG)."""
    root = tmp_path / "plain"
    rows = [("ISIC_0000001", "melanoma"), ("ISIC_0000002", "nevus"), ("ISIC_0000003", "nevus")]
    rows += [("ISIC_0000004", "seborrheic keratosis"), ("ISIC_0000005", "melanoma")]
    for i, _ in enumerate(rows[:4]):
        _write_image(str(root / "images" / f"ISIC_000000{i + 1}.png"), seed=i)
    _write_image(str(root / "images" / "ISIC_0000005.png"), seed=0)  # same pixels as 0000001
    _write_csv(root / "labels.csv", ("image_id", "diagnosis"), rows)
    return root


def test_map_diagnosis_covers_isic_and_ham_vocabularies():
    assert isic.CLASSES == ("melanoma", "nevus")
    for value in (
        "mel",
        "MEL",
        "melanoma",
        "Melanoma Invasive",
        "Melanoma in situ",
        "melanoma, NOS",
    ):
        assert isic_metadata.map_diagnosis(value) == "melanoma", value
    for value in ("nv", "NV", "nevus", "Nevus", "Blue nevus", "Nevus, Spitz", "melanocytic naevus"):
        assert isic_metadata.map_diagnosis(value) == "nevus", value
    for value in ("bcc", "bkl", "akiec", "df", "vasc", "seborrheic keratosis", "Benign"):
        assert isic_metadata.map_diagnosis(value) == "other", value
    for value in ("", " ", "unknown", "UNK", "nan"):
        assert isic_metadata.map_diagnosis(value) is None
    assert {isic_metadata.DIAGNOSIS_MAP[k] for k in ("mel", "melanoma", "nv", "nevus", "bcc")} == {
        "melanoma",
        "nevus",
        "other",
    }


def test_lesion_sample_is_deterministic_and_the_classes_differ(tmp_path):
    a = isic_sources.make_lesion_sample(
        str(tmp_path / "a"), n_per_class=6, size=48, seed=3, n_other=2
    )
    b = isic_sources.make_lesion_sample(
        str(tmp_path / "b"), n_per_class=6, size=48, seed=3, n_other=2
    )
    names = sorted(os.listdir(os.path.join(a, "images")))
    assert len(names) == 14
    for name in names:
        pa = np.asarray(Image.open(os.path.join(a, "images", name)))
        pb = np.asarray(Image.open(os.path.join(b, "images", name)))
        np.testing.assert_array_equal(pa, pb)
    data = isic.load_isic(a, img_size=48, cache=False)
    assert data.counts() == {"melanoma": 6, "nevus": 6}
    # Melanomas are larger and darker than nevi: more dark pixels, and darker ones, in the field.
    yy, xx = np.mgrid[0:48, 0:48] / 48
    lum = data.images.mean(-1)
    lesion = (lum < -0.1) & (np.hypot(yy - 0.5, xx - 0.5) < 0.4)
    area = lesion.mean(axis=(1, 2))
    darkest = np.percentile(lum.reshape(len(lum), -1), 5, axis=1)
    mel, nev = data.labels == 0, data.labels == 1
    assert area[mel].min() > 2 * area[nev].max()
    assert darkest[mel].mean() < darkest[nev].mean()


def test_default_is_the_builtin_sample():
    data = isic.load_isic(img_size=16)
    assert data.images.shape == (2 * isic_sources.SAMPLE_N_PER_CLASS, 16, 16, 3)
    assert data.images.dtype == np.float32 and data.labels.dtype == np.int64
    assert -1.0 <= data.images.min() and data.images.max() <= 1.0
    assert data.class_names == isic.CLASSES and data.lesion_ids is None
    assert data.root == isic_sources.sample_root() and data.layout == "csv"
    assert len(data.ids) == len(data.labels) == len(data)


def test_plain_csv_in_images_subfolder_drops_pixel_duplicates(plain_dir):
    data = isic.load_isic(str(plain_dir), img_size=8, cache=False)
    assert data.ids == ["ISIC_0000001", "ISIC_0000002", "ISIC_0000003"]
    assert data.labels.tolist() == [0, 1, 1]
    assert ("ISIC_0000005", "ISIC_0000001", "pixels") in data.duplicates
    assert data.images.shape == (3, 8, 8, 3)
    # ``classes`` picks and orders; "other" may be asked for.
    data = isic.load_isic(str(plain_dir), img_size=8, classes=("nevus", "other"), cache=False)
    assert data.ids == ["ISIC_0000002", "ISIC_0000003", "ISIC_0000004"]
    assert data.labels.tolist() == [0, 0, 1]
    with pytest.raises(ValueError, match="unknown class"):
        isic.load_isic(str(plain_dir), classes=("bcc",))


def test_isic_cli_export_uses_the_most_specific_diagnosis_and_lesion_ids(tmp_path):
    root = tmp_path / "export"
    header = ("isic_id", "attribution", "copyright_license", "diagnosis_1", "diagnosis_2")
    header += ("diagnosis_3", "lesion_id")
    mel2 = "Malignant melanocytic proliferations (Melanoma)"
    rows = [
        ("ISIC_0000010", "x", "CC-0", "Malignant", mel2, "Melanoma Invasive", "IL_1"),
        ("ISIC_0000011", "x", "CC-0", "Malignant", mel2, "Melanoma in situ", "IL_1"),  # same lesion
        ("ISIC_0000012", "x", "CC-0", "Benign", "Benign melanocytic proliferations", "Nevus", ""),
        ("ISIC_0000013", "x", "CC-BY", "Benign", "Benign epidermal proliferations", "", "IL_3"),
        (
            "ISIC_0000014",
            "x",
            "CC-BY",
            "Benign",
            "Benign melanocytic proliferations",
            "Nevus",
            "IL_4",
        ),
        ("ISIC_0000099", "x", "CC-BY", "Benign", "", "Nevus", ""),  # no image file
    ]
    for i, row in enumerate(rows[:5]):
        _write_image(str(root / f"{row[0]}.JPG"), seed=10 + i)
    _write_csv(root / "metadata.csv", header, rows)
    (root / "attribution.txt").write_text("x")
    data = isic.load_isic(str(root), img_size=8, cache=False)
    assert data.layout == "isic-cli"
    assert data.ids == ["ISIC_0000010", "ISIC_0000012", "ISIC_0000014"]
    assert data.labels.tolist() == [0, 1, 1]
    assert data.lesion_ids == ["IL_1", None, "IL_4"]
    assert ("ISIC_0000011", "ISIC_0000010", "lesion") in data.duplicates
    # An older export with ``diagnosis`` and ``benign_malignant`` only.
    _write_csv(
        root / "metadata.csv",
        ("isic_id", "benign_malignant", "diagnosis"),
        [("ISIC_0000010", "malignant", "melanoma"), ("ISIC_0000012", "benign", "nevus")],
    )
    assert isic.load_isic(str(root), img_size=8, cache=False).labels.tolist() == [0, 1]


def test_ham10000_layout_with_part_folders(tmp_path):
    root = tmp_path / "ham"
    rows = [
        ("HAM_0000001", "ISIC_0024306", "nv"),
        ("HAM_0000001", "ISIC_0024307", "nv"),  # second photo of the same lesion
        ("HAM_0000002", "ISIC_0024308", "mel"),
        ("HAM_0000003", "ISIC_0024309", "bkl"),
        ("HAM_0000004", "ISIC_0024310", "mel"),
    ]
    for i, (_, image_id, _) in enumerate(rows):
        part = "HAM10000_images_part_1" if i < 3 else "HAM10000_images_part_2"
        _write_image(str(root / part / f"{image_id}.jpg"), seed=20 + i)
    header = ("lesion_id", "image_id", "dx", "dx_type", "age", "sex", "localization")
    _write_csv(
        root / "HAM10000_metadata.csv", header, [(*r, "histo", 50, "male", "back") for r in rows]
    )
    data = isic.load_isic(str(root), img_size=8, cache=False)
    assert data.layout == "ham10000"
    assert data.ids == ["ISIC_0024306", "ISIC_0024308", "ISIC_0024310"]
    assert data.labels.tolist() == [1, 0, 0]
    assert data.lesion_ids == ["HAM_0000001", "HAM_0000002", "HAM_0000004"]
    assert [d[2] for d in data.duplicates] == ["lesion"]


def test_class_folders_and_one_hot_ground_truth(tmp_path):
    root = tmp_path / "folders"
    for i in range(2):
        _write_image(str(root / "melanoma" / f"m{i}.png"), seed=30 + i)
        _write_image(str(root / "nevus" / f"n{i}.png"), seed=40 + i)
    data = isic.load_isic(str(root), img_size=8, cache=False)
    assert data.layout == "folders" and data.counts() == {"melanoma": 2, "nevus": 2}
    root = tmp_path / "onehot"
    for i in range(3):
        _write_image(str(root / f"ISIC_00{i}.jpg"), seed=50 + i)
    _write_csv(
        root / "ISIC_2019_Training_GroundTruth.csv",
        ("image", "MEL", "NV", "BCC", "UNK"),
        [("ISIC_000", "1.0", "0.0", "0.0", "0.0"), ("ISIC_001", "0.0", "1.0", "0.0", "0.0")]
        + [("ISIC_002", "0.0", "0.0", "1.0", "0.0")],
    )
    assert isic.load_isic(str(root), img_size=8, cache=False).labels.tolist() == [0, 1]


def test_dedup_modes_and_all_diagnoses(tmp_path):
    """--dedup lesion drops a second photo of a lesion and identical pixels, pixels only the
    latter, none neither; --classes all keeps every diagnosis; the cache keys on both."""
    root = tmp_path / "ham"
    rows = [("ISIC_1", "mel", "L1"), ("ISIC_2", "mel", "L1"), ("ISIC_3", "nv", "L2")]
    rows += [("ISIC_4", "nv", "L3"), ("ISIC_5", "bcc", "L4")]
    for image_id, seed in (("ISIC_1", 1), ("ISIC_2", 2), ("ISIC_3", 3), ("ISIC_4", 3)):
        _write_image(str(root / f"{image_id}.jpg"), seed=seed, size=(8, 8))
    _write_image(str(root / "ISIC_5.png"), seed=5, size=(8, 8))
    _write_csv(root / "HAM10000_metadata.csv", ("image_id", "dx", "lesion_id"), rows)
    kept = {m: isic.load_isic(str(root), img_size=8, dedup=m).ids for m in isic.DEDUP}
    assert kept == {
        "lesion": ["ISIC_1", "ISIC_3"],
        "pixels": ["ISIC_1", "ISIC_2", "ISIC_3"],
        "none": ["ISIC_1", "ISIC_2", "ISIC_3", "ISIC_4"],
    }
    every = isic.load_isic(str(root), img_size=8, classes="all", dedup="none")
    assert every.class_names == isic.ALL_CLASSES == ("melanoma", "nevus", "other")
    assert every.counts() == {"melanoma": 2, "nevus": 2, "other": 1}
    assert isic.load_isic(str(root), img_size=8, classes="all", dedup="none").from_cache
    assert isic_metadata.parse_classes("all") == isic.ALL_CLASSES
    assert isic_metadata.parse_classes(" nevus,melanoma ") == ("nevus", "melanoma")
    for bad in ("bcc", "nevus,nevus", ""):
        with pytest.raises(ConfigError, match="--classes"):
            isic_metadata.parse_classes(bad)
    with pytest.raises(ConfigError, match="--dedup"):
        isic.load_isic(str(root), dedup="lesions")


def test_missing_metadata_and_folder_are_explained(tmp_path):
    _write_image(str(tmp_path / "lonely" / "a.png"), seed=1)
    with pytest.raises(NoImagesError, match="HAM10000_metadata.csv"):
        isic.load_isic(str(tmp_path / "lonely"))
    with pytest.raises(NoImagesError, match="not found"):
        isic.load_isic(str(tmp_path / "nowhere"))


def test_second_load_hits_the_cache_and_edits_invalidate_it(plain_dir):
    first = isic.load_isic(str(plain_dir), img_size=8)
    second = isic.load_isic(str(plain_dir), img_size=8, value_range=(0.0, 1.0))
    assert not first.from_cache and second.from_cache
    np.testing.assert_allclose(second.images, (first.images + 1) / 2, atol=1e-6)
    assert second.ids == first.ids and second.duplicates == first.duplicates
    assert isic.load_isic(str(plain_dir), img_size=16).from_cache is False  # another size
    path = plain_dir / "images" / "ISIC_0000002.png"
    _write_image(str(path), seed=99)
    os.utime(path, ns=(1, 1))
    third = isic.load_isic(str(plain_dir), img_size=8)
    assert not third.from_cache
    assert not np.array_equal(third.images[1], first.images[1])


def test_bad_files_are_skipped_with_a_warning_naming_them(plain_dir, caplog):
    empty = plain_dir / "images" / "ISIC_0000002.png"
    empty.write_bytes(b"")
    garbage = plain_dir / "images" / "ISIC_0000003.png"
    garbage.write_bytes(b"not an image at all")
    report = SkipReport()
    with caplog.at_level(logging.WARNING):
        data = isic.load_isic(str(plain_dir), img_size=8, report=report)
    assert data.ids == ["ISIC_0000001"]
    assert {os.path.basename(p) for p, _ in report.skipped} == {empty.name, garbage.name}
    assert empty.name in caplog.text and garbage.name in caplog.text
    # From the cache the skipped files are reported again, and strict still refuses them.
    report = SkipReport()
    assert isic.load_isic(str(plain_dir), img_size=8, report=report).from_cache
    assert len(report) == 2
    with pytest.raises(BadImageError):
        isic.load_isic(str(plain_dir), img_size=8, strict=True)
    with pytest.raises(BadImageError, match="ISIC_000000"):
        isic.load_isic(str(plain_dir), img_size=8, strict=True, cache=False)


def test_download_without_isic_cli_says_how_to_get_the_data(tmp_path):
    with pytest.raises(DownloadError, match="pip install isic-cli") as err:
        isic_sources.download_isic(str(tmp_path / "dl"), executable="isic-not-installed-here")
    assert "--data-dir" in str(err.value)


def _fake_isic(tmp_path, body):
    exe = tmp_path / "bin" / "isic"
    exe.parent.mkdir()
    exe.write_text("#!/bin/sh\n" + body)
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    return str(exe)


@pytest.mark.skipif(os.name == "nt", reason="a POSIX shell script stands in for isic-cli")
def test_download_runs_isic_image_download(tmp_path):
    # A stand-in that records its arguments and writes an export, as `isic image download` does.
    body = 'for last; do :; done\necho "$@" > "$last/args.txt"\n'
    body += 'echo "isic_id,diagnosis_3" > "$last/metadata.csv"\n'
    exe = _fake_isic(tmp_path, body)
    dest = isic_sources.download_isic(
        str(tmp_path / "dl"), search='diagnosis_3:"Nevus"', limit=5, executable=exe
    )
    args = (tmp_path / "dl" / "args.txt").read_text()
    assert args.startswith('image download --search diagnosis_3:"Nevus" --limit 5')
    assert dest == str(tmp_path / "dl")


@pytest.mark.skipif(os.name == "nt", reason="a POSIX shell script stands in for isic-cli")
def test_download_failure_is_a_download_error(tmp_path):
    exe = _fake_isic(tmp_path, 'echo "ConnectionError: no network" >&2\nexit 1\n')
    with pytest.raises(DownloadError, match="no network"):
        isic_sources.download_isic(str(tmp_path / "dl"), executable=exe)


def test_resolve_isic_downloads_into_the_cache_once(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_GANS_HOME", str(tmp_path))
    assert isic.resolve_isic("sample") is None
    assert isic.resolve_isic("isic", "/some/dir") == "/some/dir"
    with pytest.raises(ConfigError, match="unknown dataset"):
        isic.resolve_isic("imagenet")
    calls = []

    def download(dest):
        calls.append(dest)
        os.makedirs(dest, exist_ok=True)
        open(os.path.join(dest, "metadata.csv"), "w").close()

    monkeypatch.setattr(isic, "download_isic", download)
    root = isic.resolve_isic("isic")
    assert calls == [root] and root == str(tmp_path / "datasets" / "isic")
    assert isic.resolve_isic("isic") == root and len(calls) == 1  # the cached export is reused


def test_unconditional_dataset_is_seeded_per_epoch():
    images = np.arange(10 * 2 * 2 * 1, dtype=np.float32).reshape(10, 2, 2, 1)
    labels = np.arange(10, dtype=np.int64)

    def firsts(ds):
        return [b[:, 0, 0, 0].tolist() for b in ds.as_numpy_iterator()]

    epoch0 = firsts(isic.unconditional_dataset(images, 3, seed=1, epoch=0))
    assert len(epoch0) == 3 and all(len(b) == 3 for b in epoch0)  # the remainder is dropped
    assert epoch0 == firsts(isic.unconditional_dataset(images, 3, seed=1, epoch=0))
    assert epoch0 != firsts(isic.unconditional_dataset(images, 3, seed=1, epoch=1))
    assert (
        firsts(isic.unconditional_dataset(images, 3, seed=1, epoch=0, skip_batches=2)) == epoch0[2:]
    )
    x, y = next(iter(isic.unconditional_dataset(images, 3, seed=1, epoch=0, labels=labels)))
    assert x.shape == (3, 2, 2, 1) and y.dtype.name == "int64"
    np.testing.assert_array_equal(x.numpy()[:, 0, 0, 0] / 4, y.numpy())


def test_source_name_names_the_output_folder_of_a_training_source():
    """DCGAN and ProGAN name their default output folder after it."""
    assert isic.source_name(None, "/data/isic_dev/", "sample", "nevus") == "isic_dev_nevus"
    assert isic.source_name(None, None, "isic-2017") == "isic-2017"
    assert isic.source_name(np.zeros((1, 8, 8, 3)), "/ignored", "sample", "melanoma") == (
        "array_melanoma"
    )
