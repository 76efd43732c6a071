"""ISIC metadata: which diagnosis each image has, from an isic-cli export, HAM10000, a plain CSV or
class sub-folders (the layouts :mod:`data_loaders.isic` documents), mapped to ``melanoma``,
``nevus`` or ``other``. :func:`data_loaders.isic.load_isic` decodes the images these name.
"""

import csv
import logging
import os

from data_loaders.images import IMAGE_EXTENSIONS, NoImagesError
from keras_gans.errors import ConfigError

log = logging.getLogger(__name__)

CLASSES = ("melanoma", "nevus")
ALL_CLASSES = (*CLASSES, "other")  # ``classes="all"``: every diagnosis, as the report's GANs

# Diagnosis strings of ISIC (archive v2 ``diagnosis_1..5``, older ``diagnosis``), HAM10000 / ISIC
# 2018 (``dx``) and ISIC 2019 (one-hot columns), lower-cased; anything else goes by keywords.
# fmt: off
MELANOMA_NAMES = (
    "mel", "melanoma", "melanoma invasive", "melanoma in situ", "melanoma, nos",
    "melanoma metastasis", "malignant melanocytic proliferations (melanoma)",
)
NEVUS_NAMES = ("nv", "nevus", "naevus", "melanocytic nevus", "nevi")
OTHER_NAMES = (
    "bcc", "basal cell carcinoma", "bkl", "pigmented benign keratosis", "seborrheic keratosis",
    "solar lentigo", "lichenoid keratosis", "akiec", "ak", "actinic keratosis", "scc",
    "squamous cell carcinoma", "df", "dermatofibroma", "vasc", "vascular lesion", "benign",
    "malignant",
)
# fmt: on
DIAGNOSIS_MAP = {
    **dict.fromkeys(MELANOMA_NAMES, "melanoma"),
    **dict.fromkeys(NEVUS_NAMES, "nevus"),
    **dict.fromkeys(OTHER_NAMES, "other"),
}
UNKNOWN = {"", "unk", "unknown", "nan", "none", "na", "n/a", "indeterminate", "0", "0.0"}
ID_COLUMNS = ("isic_id", "image_id", "image", "image_name", "id", "filename", "file")
# From the most to the least specific; "label" / "class" cover hand-made CSVs.
# fmt: off
DIAGNOSIS_COLUMNS = (
    "dx", "diagnosis", "diagnosis_5", "diagnosis_4", "diagnosis_3", "diagnosis_2", "diagnosis_1",
    "label", "class",
)
# fmt: on
METADATA_FILES = ("HAM10000_metadata.csv", "HAM10000_metadata", "metadata.csv", "labels.csv")


def map_diagnosis(value):
    """``"melanoma"``, ``"nevus"``, ``"other"``, or ``None`` for an empty or unknown diagnosis."""
    key = " ".join(str(value).strip().lower().split())
    if key in UNKNOWN:
        return None
    if key in DIAGNOSIS_MAP:
        return DIAGNOSIS_MAP[key]
    if "melanoma" in key:
        return "melanoma"
    if "nevus" in key or "naevus" in key or "nevi" in key:
        return "nevus"
    return "other"


def parse_classes(value):
    """``"all"`` -> :data:`ALL_CLASSES`; ``"melanoma,nevus"`` (or a sequence) -> that tuple."""
    if isinstance(value, str):
        value = ALL_CLASSES if value.strip() == "all" else value.split(",")
    classes = tuple(c.strip() for c in value if c.strip())
    unknown = [c for c in classes if c not in ALL_CLASSES]
    if unknown or not classes or len(set(classes)) != len(classes):
        raise ConfigError(f"--classes {value!r}: 'all' or distinct names from {ALL_CLASSES}")
    return classes


def _strip_ext(name):
    stem, ext = os.path.splitext(name.strip())
    return stem if ext.lower() in IMAGE_EXTENSIONS else name.strip()


def _read_csv(path):
    """``(layout, [(image_id, diagnosis, lesion_id or None)])`` or ``None`` if not a label CSV."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        header = {(h or "").strip().lower(): h for h in reader.fieldnames or []}
        rows = list(reader)
    id_col = next((header[c] for c in ID_COLUMNS if c in header), None)
    dx_cols = [header[c] for c in DIAGNOSIS_COLUMNS if c in header]
    onehot = [header[c] for c in header if c in DIAGNOSIS_MAP and c not in DIAGNOSIS_COLUMNS]
    if id_col is None or not (dx_cols or onehot):
        return None
    lesion_col = header.get("lesion_id")
    records = []
    for row in rows:
        if dx_cols:
            values = [row.get(c) or "" for c in dx_cols]
        else:  # one-hot ground truth: the column holding a 1
            values = [c for c in onehot if (row.get(c) or "").strip() in ("1", "1.0")]
        labels = [map_diagnosis(v) for v in values]
        named = [v for v, lab in zip(values, labels) if lab in CLASSES]
        known = [v for v, lab in zip(values, labels) if lab is not None]
        diagnosis = (named or known or [""])[0].strip()
        lesion = (row.get(lesion_col) or "").strip() if lesion_col else ""
        records.append((_strip_ext(row[id_col]), diagnosis, lesion or None))
    if "isic_id" in header:
        layout = "isic-cli"
    elif "dx" in header:
        layout = "ham10000"
    else:
        layout = "csv"
    return layout, records


def read_metadata(root):
    """``(layout, records)`` from the folder's metadata CSV, or its class sub-folders."""
    candidates = [os.path.join(root, n) for n in METADATA_FILES]
    candidates += sorted(
        os.path.join(root, n) for n in os.listdir(root) if n.lower().endswith(".csv")
    )
    for path in dict.fromkeys(candidates):
        if os.path.isfile(path):
            parsed = _read_csv(path)
            if parsed is not None:
                log.info("ISIC metadata: %s (%s layout, %d rows)", path, parsed[0], len(parsed[1]))
                return (*parsed, path)
            log.debug("%s has no image id and diagnosis columns; ignored", path)
    folders = [d for d in sorted(os.listdir(root)) if os.path.isdir(os.path.join(root, d))]
    class_dirs = [d for d in folders if map_diagnosis(d) is not None and d.lower() != "images"]
    if class_dirs:
        records = [
            (os.path.join(d, os.path.splitext(f)[0]), d, None)
            for d in class_dirs
            for f in sorted(os.listdir(os.path.join(root, d)))
            if f.lower().endswith(IMAGE_EXTENSIONS)
        ]
        return "folders", records, None
    raise NoImagesError(
        f"{root}: no metadata found. Expected an isic-cli export (metadata.csv with isic_id and "
        "diagnosis_3 / diagnosis), HAM10000 (HAM10000_metadata.csv with image_id, dx), a CSV with "
        "image_id,diagnosis columns, or one sub-folder per class (melanoma/, nevus/)"
    )
